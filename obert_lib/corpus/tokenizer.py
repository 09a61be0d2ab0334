"""WordPiece tokenizer (given vocab or trained on the corpus) and character-span -> token-span mapping."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from tokenizers import BertWordPieceTokenizer

if TYPE_CHECKING:  # transformers takes about a second to import: corpus workers that never wrap a tokenizer skip it
    from transformers import BertTokenizer

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _wrap(backend: BertWordPieceTokenizer) -> "BertTokenizer":
    from transformers import BertTokenizer

    return BertTokenizer(tokenizer_object=backend._tokenizer)


def load_vocab_tokenizer(vocab_file: str | Path) -> BertTokenizer:
    """A BERT WordPiece tokenizer over an existing vocab.txt (e.g. the 21,128-token Chinese BERT one)."""
    path = Path(vocab_file)
    if not path.is_file():
        raise FileNotFoundError(
            f"tokenizer.vocab_file: {path} does not exist; give a BERT vocab.txt or null to train one"
        )
    return _wrap(BertWordPieceTokenizer(str(path), handle_chinese_chars=True, strip_accents=False, lowercase=True))


# tokenizer_config.json of a BERT tokenizer as transformers' save_pretrained writes it (int(1e30) is transformers'
# VERY_LARGE_INTEGER, "no limit"); tests/corpus/test_tokenizer.py checks the files against save_pretrained's
SAVED_CONFIG = {
    "backend": "tokenizers",
    "cls_token": "[CLS]",
    "do_lower_case": True,
    "mask_token": "[MASK]",
    "model_max_length": int(1e30),
    "pad_token": "[PAD]",
    "sep_token": "[SEP]",
    "strip_accents": None,
    "tokenize_chinese_chars": True,
    "tokenizer_class": "BertTokenizer",
    "unk_token": "[UNK]",
}


def save_vocab_tokenizer(vocab_file: str | Path, folder: str | Path) -> None:
    """Write load_vocab_tokenizer(vocab_file).save_pretrained(folder)'s files without importing transformers
    (one to two seconds of a corpus run): tokenizer.json with BERT's [CLS] A [SEP] B [SEP] template, and
    tokenizer_config.json. Any transformers tokenizer loader reads them back."""
    import json

    from tokenizers.processors import TemplateProcessing

    path = Path(vocab_file)
    if not path.is_file():
        raise FileNotFoundError(
            f"tokenizer.vocab_file: {path} does not exist; give a BERT vocab.txt or null to train one"
        )
    backend = BertWordPieceTokenizer(str(path), handle_chinese_chars=True, strip_accents=False, lowercase=True)
    backend.post_processor = TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[(t, backend.token_to_id(t)) for t in ("[CLS]", "[SEP]")],
    )
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    backend.save(str(out / "tokenizer.json"), pretty=True)
    (out / "tokenizer_config.json").write_text(json.dumps(SAVED_CONFIG, indent=2, sort_keys=True) + "\n")


# Either file holds the vocabulary, so either makes a loadable tokenizer; tokenizer_config.json alone does not.
SAVED_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")


def holds_tokenizer(folder: str | Path) -> bool:
    """Whether `folder` holds a saved tokenizer (one of SAVED_TOKENIZER_FILES)."""
    return any((Path(folder) / name).is_file() for name in SAVED_TOKENIZER_FILES)


def load_saved_tokenizer(folder: str | Path):
    """The tokenizer saved in `folder` (a corpus run's tokenizer/, a checkpoint), from local files only (never the Hub).

    Callers that can name the fix better check `holds_tokenizer` first; this raises FileNotFoundError.
    """
    from transformers import AutoTokenizer

    path = Path(folder)
    if not holds_tokenizer(path):
        raise FileNotFoundError(
            f"{path} holds no tokenizer (tokenizer.json); give a corpus output folder that "
            "`obert preprocess` finished, or run it first"
        )
    return AutoTokenizer.from_pretrained(path, local_files_only=True)


def saved_vocab_size(folder: str | Path) -> int:
    """len() of the tokenizer saved in `folder` (added tokens included), read from its tokenizer.json with the
    `tokenizers` library: a few ms, where load_saved_tokenizer imports transformers (one to two seconds)."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(Path(folder) / "tokenizer.json")).get_vocab_size(with_added_tokens=True)


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int = 1) -> BertTokenizer:
    """Build a Chinese-BERT-style WordPiece vocab from `texts`, deterministically.

    As in the Chinese BERT vocab: every character seen at least `min_frequency` times (CJK characters are
    always single tokens), its '##' continuation form for non-CJK characters, then the most frequent
    non-CJK words (Latin words, numbers) until `vocab_size`. Ties break by the token itself, so the same
    texts always give the same ids (the `tokenizers` trainer does not: its merges depend on hash order).
    """
    from collections import Counter

    probe = BertWordPieceTokenizer(handle_chinese_chars=True, strip_accents=False, lowercase=True)._tokenizer
    normalizer, pre_tokenizer = probe.normalizer, probe.pre_tokenizer
    words: Counter = Counter()
    for text in texts:
        words.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    chars: Counter = Counter()
    for w, n in words.items():
        for c in w:
            chars[c] += n
    by_count = lambda item: (-item[1], item[0])  # noqa: E731
    vocab = list(SPECIAL_TOKENS)
    singles = [c for c, n in sorted(chars.items(), key=by_count) if n >= min_frequency]
    vocab += singles
    vocab += ["##" + c for c in singles if not _is_cjk(c)]
    multi = [w for w, n in sorted(words.items(), key=by_count) if len(w) > 1 and n >= max(2, min_frequency)]
    vocab += multi[: max(0, vocab_size - len(vocab))]
    backend = BertWordPieceTokenizer(
        {tok: i for i, tok in enumerate(vocab)}, handle_chinese_chars=True, strip_accents=False, lowercase=True
    )
    return _wrap(backend)


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return 0x3400 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x2FA1F


def char_spans_to_token_spans(offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Map [start, end) character spans to [start, end) token spans covering every token they touch.

    offsets: per-token (char_start, char_end) without special tokens. A span touching no token
    (e.g. only spaces) is dropped; adjacent duplicates are merged away.
    """
    return spans_by_type_to_tokens(offsets, {"_": spans})["_"]


def spans_by_type_to_tokens(
    offsets: list[tuple[int, int]], spans: dict[str, list[tuple[int, int]]]
) -> dict[str, list[tuple[int, int]]]:
    """char_spans_to_token_spans for several span lists at once, through two char -> token tables.

    first[c]: index of the first token ending after char c; before[c]: number of tokens starting before c.
    A span [s, e) covers tokens first[s] .. before[e]-1. Both tables are built per token, not per char.
    """
    out: dict[str, list[tuple[int, int]]] = {k: [] for k in spans}
    if not offsets:
        return out
    n_tok = len(offsets)
    n = max(offsets[-1][1], max((e for v in spans.values() for _, e in v), default=0))
    first: list[int] = []
    before: list[int] = []
    prev_end = prev_start = 0
    for t, (s, e) in enumerate(offsets):
        first.extend([t] * (e - prev_end))
        before.extend([t] * (s + 1 - prev_start))
        prev_end, prev_start = e, s + 1
    first.extend([n_tok] * (n + 1 - prev_end))
    before.extend([n_tok] * (n + 1 - prev_start))
    for key, items in spans.items():
        kept = out[key]
        for s, e in items:
            lo, hi = first[s], before[e]
            if lo < hi and (not kept or kept[-1] != (lo, hi)):
                kept.append((lo, hi))
    return out
