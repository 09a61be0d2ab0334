"""obert_lib.corpus.wordpiece (C WordPiece) against the tokenizers backend: the same ids and offsets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import AddedToken, BertWordPieceTokenizer, Tokenizer

from obert_lib.corpus.tokenizer import load_vocab_tokenizer, train_tokenizer
from obert_lib.corpus.wordpiece import WordPieceEncoder, save_char_tables
from obert_lib.paths import sample_path
from tests.conftest import shared_file

HAND_VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "hello",
    "world",
    "café",
    "caf",
    "##é",
    "##s",
    "中",
    "文",
    "好",
    ",",
    "!",
    "20",
    "##20",
    "年",
    "a",
    "##b",
    "d",
    "##e",
    "x",
    "##x",
    "ok",
]
MIXED = [
    "Hello WORLD, this is BERT-base (Devlin et al. 2019)!",
    "北京Beijing 2022年冬奥会 Winter Olympics",
    "iPhone 14 Pro售价7999元，比iPhone13贵了￥500。",
    "Ça coûte 12,50 € — très cher…",
    "ÀÉÎÕÜ àéîõü ß ẞ ſ Σίσυφος ΣΑΣ",
    "e-mail: test@example.com; URL https://example.org/a_b?c=d#e",
    "tab\tnew\nline\r\x00nul\ufffdrep\x07bel\u200bzw",
    "全角ＡＢＣ１２３　ｄｅｆ，半角abc123 def,",
    "Ⅻ ⅻ ① ¼ ² µ Å K ﬁ",
    "supercalifragilisticexpialidocious " * 3,
    "日本語のテキスト、ひらがなとカタカナ。한국어 텍스트",
    "[MASK]是[UNK]，[CLS][SEP][PAD] [mask]",
    "x" * 99 + " " + "y" * 100 + " " + "z" * 101,
]


def tokenizer_dir(tk, path: Path) -> Path:
    """Save a transformers tokenizer the way the corpus pipeline does (save_pretrained -> tokenizer.json)."""
    tk.save_pretrained(path)
    return path


def assert_same(path: Path, texts: list[str]) -> WordPieceEncoder:
    """Every text encodes to the ids and offsets of path/tokenizer.json's backend; returns the encoder."""
    encoder = WordPieceEncoder.from_tokenizer_dir(path)
    reference = Tokenizer.from_file(str(path / "tokenizer.json"))
    for text, enc in zip(texts, reference.encode_batch(texts, add_special_tokens=False)):
        assert encoder.encode(text) == (enc.ids, enc.offsets), repr(text)
    return encoder


def bmp_contexts() -> list[str]:
    """Every BMP code point (no surrogates) inside, between, before and after words and CJK characters."""
    chars = (chr(c) for c in range(0x10000) if not 0xD800 <= c < 0xE000)
    return [f"ab{c}cd 中{c}文 x{c}1 {c} {c}{c}z{c}" for c in chars]


@pytest.fixture(scope="module")
def hand_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hand")
    (path / "vocab.txt").write_text("\n".join(HAND_VOCAB) + "\n", encoding="utf-8")
    return tokenizer_dir(load_vocab_tokenizer(path / "vocab.txt"), path / "tokenizer")


@pytest.fixture(scope="module")
def chinese_dir(tmp_path_factory) -> Path:
    vocab = shared_file("vocab/bert-base-chinese-vocab.txt")
    return tokenizer_dir(load_vocab_tokenizer(vocab), tmp_path_factory.mktemp("chinese"))


def test_hand_written_cases(hand_dir):
    enc = WordPieceEncoder.from_tokenizer_dir(hand_dir)
    assert enc.unsupported is None
    assert enc.encode("Hello WORLD!") == ([5, 6, 15], [(0, 5), (6, 11), (11, 12)])
    # é is kept, É lower-cases to é; "cafés" is the longest piece "café" then "##s"
    assert enc.encode("café CAFÉ Cafés") == ([7, 7, 7, 10], [(0, 4), (5, 9), (10, 14), (14, 15)])
    assert enc.encode("x" * 100) == ([23] + [24] * 99, [(i, i + 1) for i in range(100)])
    assert enc.encode("x" * 101) == ([1], [(0, 101)])  # longer than max_input_chars_per_word
    assert enc.encode("abz zebra") == ([1, 1], [(0, 3), (4, 9)])  # "##z" and "z..." match nothing
    assert enc.encode("2020年") == ([16, 17, 18], [(0, 2), (2, 4), (4, 5)])
    # \t \n \r split; NUL, U+FFFD and BEL are dropped without splitting ("d\ufffd\x07e" is the word "de")
    assert enc.encode("a\tab\nd\r\x00d\ufffd\x07e") == (
        [19, 19, 20, 21, 21, 22],
        [(0, 1), (2, 3), (3, 4), (5, 6), (8, 9), (11, 12)],
    )
    assert enc.encode("中文,好!") == ([11, 12, 14, 13, 15], [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)])
    # special tokens are matched case-sensitively in the original text; "[mask]" is three words
    assert enc.encode("[MASK]好[mask]") == ([4, 13, 1, 1, 1], [(0, 6), (6, 7), (7, 8), (8, 12), (12, 13)])
    assert enc.encode("") == ([], [])
    assert enc.encode(" \t\n\u3000\x00 ") == ([], [])
    assert enc.fallbacks == 0
    # outside the BMP: the backend answers, offsets still in code points
    assert enc.encode("好😀ok 好") == ([13, 1, 13], [(0, 1), (1, 4), (5, 6)])
    assert enc.encode("İ") == ([1], [(0, 1)])  # lower-cases to two chars: the backend answers
    assert enc.fallbacks == 2
    ids, offsets = enc.encode_packed("Hello")
    assert isinstance(ids, bytes) and len(ids) == 4 and len(offsets) == 8


@pytest.mark.parametrize("vocab", ["hand", "chinese"])
def test_every_bmp_code_point(vocab, request):
    enc = assert_same(request.getfixturevalue(f"{vocab}_dir"), bmp_contexts())
    assert enc.fallbacks == 1  # U+0130 İ, whose lower case is two chars


def test_fewclue_texts_exact(chinese_dir):
    root = shared_file("fewclue")
    texts: dict[str, None] = {}
    for path in sorted(root.glob("*/*.json")):
        for line in path.open(encoding="utf-8"):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # e.g. cluewsc/label_distribution.json is not JSON lines
                continue
            if isinstance(row, dict):
                texts.update((v, None) for v in row.values() if isinstance(v, str))
    assert len(texts) > 10_000
    enc = assert_same(chinese_dir, list(texts))
    assert enc.fallbacks <= len(texts) // 10_000  # only texts with code points outside the BMP


def test_trained_tokenizer(tmp_path):
    texts = [
        line
        for row in sample_path("corpus.jsonl").read_text(encoding="utf-8").splitlines()
        for line in json.loads(row)["text"].split("\n")
        if line.strip()
    ]
    texts += MIXED
    path = tokenizer_dir(train_tokenizer(texts, 3000), tmp_path)
    enc = assert_same(path, texts + [t.upper() for t in texts] + [t.replace(" ", "") for t in MIXED])
    assert enc.unsupported is None
    assert enc.fallbacks == 0


def test_cased_normalizer_runs_in_c(hand_dir, tmp_path):
    backend = BertWordPieceTokenizer(str(hand_dir.parent / "vocab.txt"), lowercase=False, strip_accents=False)
    backend.add_tokens([AddedToken("ab", normalized=False)])  # cuts words in the original text
    backend.save(str(tmp_path / "tokenizer.json"))
    enc = assert_same(tmp_path, MIXED + ["xaby ab", "Hello hello", "aab abab"])
    assert enc.unsupported is None
    assert enc.fallbacks == 0
    assert enc.encode("xaby") == ([23, 26, 1], [(0, 1), (1, 3), (3, 4)])


def test_unsupported_settings_always_fall_back(hand_dir, tmp_path):
    backend = BertWordPieceTokenizer(str(hand_dir.parent / "vocab.txt"), lowercase=True, strip_accents=True)
    backend.save(str(tmp_path / "tokenizer.json"))
    enc = assert_same(tmp_path, MIXED)
    assert "strip_accents" in enc.unsupported
    assert enc.fallbacks == len(MIXED)


def test_saved_char_tables_are_loaded_and_checked(tmp_path, monkeypatch):
    from obert_lib.corpus import wordpiece

    monkeypatch.setenv("OBERT_CACHE_DIR", str(tmp_path / "cache"))
    load_vocab_tokenizer(shared_file("vocab/bert-base-chinese-vocab.txt")).save_pretrained(tmp_path)
    wordpiece.save_char_tables(tmp_path)
    config = json.loads((tmp_path / "tokenizer.json").read_text(encoding="utf-8"))
    key = json.dumps(config["normalizer"], sort_keys=True)
    wordpiece._tables.pop(key, None)
    probed = wordpiece._char_tables(Tokenizer.from_file(str(tmp_path / "tokenizer.json")), key)
    wordpiece._tables.pop(key)
    wordpiece._load_char_tables(tmp_path, config)
    assert wordpiece._tables[key] == probed  # the file holds exactly the probed tables
    text = "Hello 世界！ÉCOLE ##x"
    reference = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert WordPieceEncoder.from_tokenizer_dir(tmp_path).encode(text) == (
        reference.encode(text, add_special_tokens=False).ids,
        reference.encode(text, add_special_tokens=False).offsets,
    )
    blob = (tmp_path / wordpiece.TABLES_FILE).read_bytes()
    (tmp_path / wordpiece.TABLES_FILE).write_bytes(blob.replace(b'"tokenizers": "', b'"tokenizers": "0.0.0-', 1))
    wordpiece._tables.pop(key)
    wordpiece._load_char_tables(tmp_path, config)
    assert key not in wordpiece._tables  # another tokenizers version: ignored, probed again on use
    wordpiece._tables[key] = probed


def test_backend_is_built_only_for_a_fallback(chinese_dir, monkeypatch):
    """With save_char_tables' file beside tokenizer.json, a corpus task never parses it into a Rust Tokenizer
    unless a text needs the backend (15 ms of every task's start)."""
    from obert_lib.corpus import wordpiece

    save_char_tables(chinese_dir)
    monkeypatch.setattr(wordpiece, "_tables", {})  # as in a fresh worker
    enc = WordPieceEncoder.from_tokenizer_dir(chinese_dir)
    assert enc.encode("北京欢迎你") == ([1266, 776, 3614, 6816, 872], [(i, i + 1) for i in range(5)])
    assert enc._backend_value is None and enc.fallbacks == 0
    reference = Tokenizer.from_file(str(chinese_dir / "tokenizer.json")).encode("好😀", add_special_tokens=False)
    assert enc.encode("好😀") == (reference.ids, reference.offsets)
    assert enc._backend_value is not None and enc.fallbacks == 1


def test_char_tables_are_probed_once_per_installation(hand_dir, tmp_path, monkeypatch):
    """A second tokenizer folder of the same tokenizers config (another vocab) gets the same tables file without a
    probe: char_class_cache kept it; a damaged cache file is probed again."""
    from obert_lib.corpus import wordpiece

    monkeypatch.setenv("OBERT_CACHE_DIR", str(tmp_path / "cache"))
    first, second = tmp_path / "first", tmp_path / "second"
    load_vocab_tokenizer(shared_file("vocab/bert-base-chinese-vocab.txt")).save_pretrained(first)
    load_vocab_tokenizer(hand_dir.parent / "vocab.txt").save_pretrained(second)
    wordpiece.save_char_tables(first)
    monkeypatch.setattr(wordpiece, "_char_tables", lambda *a: pytest.fail("probed again"))
    wordpiece.save_char_tables(second)
    assert (second / wordpiece.TABLES_FILE).read_bytes() == (first / wordpiece.TABLES_FILE).read_bytes()
    (cached,) = (tmp_path / "cache").iterdir()
    head = cached.read_bytes().partition(b"\n")[0]
    cached.write_bytes(head + b"\n" + b"\0" * 10)  # cut short
    probes = []
    monkeypatch.setattr(wordpiece, "_char_tables", lambda *a: probes.append(1) or (b"\1" * 0x10000, b"\0" * 0x20000))
    (second / wordpiece.TABLES_FILE).unlink()
    wordpiece.save_char_tables(second)
    assert probes == [1]
