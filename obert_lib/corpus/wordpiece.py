"""BERT WordPiece tokenisation (Devlin et al. 2019) in C, with the ids and offsets of the `tokenizers` backend.

`WordPieceEncoder` runs obert_lib.corpus._wordpiece (native/wordpiece.c): huggingface tokenizers'
BertNormalizer + BertPreTokenizer + WordPiece for the tokenizer.json that load_vocab_tokenizer /
train_tokenizer save. The per-character rules (which characters are dropped, whitespace, punctuation,
CJK, and their lower case) are probed once from the backend's own normalizer and pre-tokenizer for every
BMP code point, not re-derived from `unicodedata`: Rust's std (whitespace, lower case) and the
unicode_categories crate (control, punctuation) follow other Unicode versions than Python does.
Texts the C path cannot reproduce exactly (code points outside the BMP, characters whose lower case is
not one character) and tokenizer settings it does not support go to the backend, so the output is
always the backend's.
"""

from __future__ import annotations

import json
from array import array
from pathlib import Path
from typing import Callable

from tokenizers import Tokenizer

from . import _wordpiece
from .char_class_cache import cached_table

# Character classes of native/wordpiece.c (CLASS_*).
WORD, SPACE, DROP, ISOLATE, COMPLEX = range(5)
BMP = 0x10000
SURROGATES = range(0xD800, 0xE000)
INT32 = "i"  # array typecode of a native int32 (C int) on the supported platforms
PASSIVE_POST_PROCESSORS = (None, "TemplateProcessing", "BertProcessing")  # add nothing without special tokens

_tables: dict[str, tuple[bytes, bytes]] = {}
TABLES_FILE = (
    "wordpiece_tables.bin"  # beside tokenizer.json: header line (JSON), classes [BMP] uint8, lower [BMP] uint16
)


def _char_tables(backend: Tokenizer, key: str) -> tuple[bytes, bytes]:
    """(class byte, normalised char as uint16) of every BMP code point, from the backend's normalizer and
    pre-tokenizer; cached per normalizer config `key`."""
    if key in _tables:
        return _tables[key]
    normalizer, pre_tokenizer = backend.normalizer, backend.pre_tokenizer
    classes = bytearray([COMPLEX]) * BMP
    lower = array("H", bytes(2 * BMP))
    for code in range(BMP):
        if code in SURROGATES:
            continue
        out = normalizer.normalize_str(chr(code))
        if not out:
            classes[code] = DROP
            continue
        if len(out) == 1:  # "a?a" stays one word, splits on whitespace, or isolates punctuation
            char = out
            pieces = [p for p, _ in pre_tokenizer.pre_tokenize_str(f"a{out}a")]
            cls = {1: WORD, 2: SPACE}.get(len(pieces), ISOLATE if pieces == ["a", out, "a"] else COMPLEX)
        elif len(out) == 3 and [p for p, _ in pre_tokenizer.pre_tokenize_str(out)] == [out[1]]:  # CJK padded
            char, cls = out[1], ISOLATE
        else:
            continue
        if ord(char) < BMP and ord(char) not in SURROGATES:
            classes[code], lower[code] = cls, ord(char)
    _tables[key] = (bytes(classes), lower.tobytes())
    return _tables[key]


def _native_settings(config: dict) -> str | None:
    """Why the C path cannot reproduce this tokenizer.json, or None when it can."""
    norm, model = config.get("normalizer") or {}, config.get("model") or {}
    if norm.get("type") != "BertNormalizer" or norm.get("strip_accents") is not False:
        return f"normalizer {norm}"  # strip_accents (NFD with reordering) is not per character
    if config.get("pre_tokenizer") != {"type": "BertPreTokenizer"}:
        return f"pre_tokenizer {config.get('pre_tokenizer')}"
    if model.get("type") != "WordPiece":
        return f"model {model.get('type')}"
    if (config.get("post_processor") or {}).get("type") not in PASSIVE_POST_PROCESSORS:
        return f"post_processor {config['post_processor'].get('type')}"
    for token in config.get("added_tokens") or []:
        if any(token.get(k, True) for k in ("normalized", "single_word", "lstrip", "rstrip")) or not token.get(
            "content"
        ):
            return f"added token {token}"
    return None


class WordPieceEncoder:
    """BERT WordPiece (basic + wordpiece) in C; same ids/offsets as the tokenizers backend.

    The reference is `backend.encode(text, add_special_tokens=False)` without padding or truncation, as
    paragraphs.Annotate uses it. `fallbacks` counts the texts that went to the backend; `unsupported` says why
    this tokenizer.json never uses the C path (None when it does).
    """

    def __init__(self, config: dict, backend: Tokenizer | Callable[[], Tokenizer]):
        # backend: the Tokenizer, or a function that builds it when first needed (from_tokenizer_dir: parsing
        # tokenizer.json into a Rust Tokenizer takes 15 ms of a corpus task's start, and most tasks never fall back)
        self._backend_value: Tokenizer | None = None
        self._make_backend = (lambda: backend) if isinstance(backend, Tokenizer) else backend
        self.fallbacks = 0
        self.unsupported = _native_settings(config)
        self._native = None
        if self.unsupported is None:
            norm, model = config["normalizer"], config["model"]
            key = json.dumps(norm, sort_keys=True)
            classes, lower = _tables[key] if key in _tables else _char_tables(self._backend, key)
            vocab = model["vocab"]
            added = [(t["content"], t["id"]) for t in config.get("added_tokens") or []]
            self._native = _wordpiece.Encoder(
                classes,
                lower,
                vocab,
                model["continuing_subword_prefix"],
                vocab.get(model["unk_token"], -1),
                model["max_input_chars_per_word"],
                added,
            )

    @property
    def _backend(self) -> Tokenizer:
        """The tokenizers backend (built on first use), without padding or truncation."""
        if self._backend_value is None:
            backend = self._make_backend()
            backend.no_padding()
            backend.no_truncation()
            self._backend_value = backend
        return self._backend_value

    @classmethod
    def from_tokenizer_dir(cls, path: str | Path) -> "WordPieceEncoder":
        """The encoder of `path`/tokenizer.json (as written by save_pretrained); reads save_char_tables' file if any."""
        text = (Path(path) / "tokenizer.json").read_text(encoding="utf-8")
        config = json.loads(text)
        _load_char_tables(Path(path), config)
        return cls(config, lambda: Tokenizer.from_str(text))

    def encode_packed(self, text: str) -> tuple[bytes, bytes]:
        """(ids: packed int32 [n], offsets: packed int32 [2n] of code-point start, end), without special tokens."""
        if self._native is not None:
            out = self._native.encode(text)
            if out is not None:
                return out
        self.fallbacks += 1
        enc = self._backend.encode(text, add_special_tokens=False)
        return array(INT32, enc.ids).tobytes(), array(INT32, [x for pair in enc.offsets for x in pair]).tobytes()

    def encode(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """(ids, [(start, end)]) as lists, like the backend's Encoding.ids / .offsets."""
        ids, offsets = self.encode_packed(text)
        flat = array(INT32, offsets).tolist()
        return array(INT32, ids).tolist(), list(zip(flat[0::2], flat[1::2]))


def _tables_header(config: dict) -> str:
    """What the character tables depend on: the tokenizers version and the normalizer/pre-tokenizer config."""
    import tokenizers

    return json.dumps(
        {
            "tokenizers": tokenizers.__version__,
            "normalizer": config.get("normalizer"),
            "pre_tokenizer": config.get("pre_tokenizer"),
        },
        sort_keys=True,
    )


def save_char_tables(tokenizer_dir: str | Path) -> None:
    """Probe the character tables once and store them beside tokenizer.json, so that corpus workers load them
    (a few ms) instead of probing 65,536 code points each (about 0.3 s per process). The probe depends only on
    the tokenizers version and the normalizer and pre-tokenizer, not the vocab: char_class_cache keeps it for
    the next run."""
    path = Path(tokenizer_dir)
    text = (path / "tokenizer.json").read_text(encoding="utf-8")
    config = json.loads(text)
    if _native_settings(config) is not None:
        return
    header = _tables_header(config)

    def probe() -> bytes:
        classes, lower = _char_tables(Tokenizer.from_str(text), json.dumps(config["normalizer"], sort_keys=True))
        return classes + lower

    body = cached_table("wordpiece-tables", header, probe)  # the same for every vocab of one tokenizers config
    if len(body) != 3 * BMP:  # a damaged cache file
        body = probe()
    tmp = path / (TABLES_FILE + ".tmp")
    tmp.write_bytes(header.encode() + b"\n" + body)
    tmp.replace(path / TABLES_FILE)  # atomic: a reader sees the old file or the whole new one


def _load_char_tables(path: Path, config: dict) -> None:
    """Fill the in-process table cache from save_char_tables' file when it matches this tokenizer and version."""
    try:
        blob = (path / TABLES_FILE).read_bytes()
    except OSError:
        return
    header, _, body = blob.partition(b"\n")
    if header.decode() != _tables_header(config) or len(body) != 3 * BMP:
        return  # another tokenizers version or config: probe again
    _tables[json.dumps(config["normalizer"], sort_keys=True)] = (body[:BMP], body[BMP:])
