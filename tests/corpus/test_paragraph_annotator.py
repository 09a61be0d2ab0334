"""ParagraphAnnotator (C segmenter + WordPiece + span rules) equals ReferenceAnnotator (rjieba + tokenizers +
Python rules)."""

import json

import pytest

from obert_lib.corpus.annotate import SPAN_TYPES, EntityMatcher, load_knowledge_base
from obert_lib.corpus.paragraph_annotator import ParagraphAnnotator, ReferenceAnnotator, unpack_pairs
from obert_lib.corpus.tokenizer import load_vocab_tokenizer
from obert_lib.paths import sample_path
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def annotators(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    load_vocab_tokenizer(shared_file("vocab/bert-base-chinese-vocab.txt")).save_pretrained(d)
    matcher = EntityMatcher(load_knowledge_base(sample_path("kb.jsonl")))
    return ParagraphAnnotator(str(d), matcher, 3), ReferenceAnnotator(str(d), matcher, 3, "rjieba")


def _same(native, reference, text):
    a, b = native(text), reference(text)
    assert a.input_ids == b.input_ids, text
    assert a.knowledge_ids == b.knowledge_ids, text
    for t in SPAN_TYPES:
        assert unpack_pairs(a.spans[t]) == unpack_pairs(b.spans[t]), (t, text)


@pytest.mark.parametrize(
    "text",
    [
        "李白是唐代著名的浪漫主义诗人，他与杜甫并称李杜。",
        "",
        "   ",
        "😀北京大学🏮",
        "\u212aelvin与北京",
        "iPhone13售价5999元，增长3.5%。The quick brown fox",
        "他说：“好！”……",
    ],
)
def test_hand_written_paragraphs(annotators, text):
    _same(*annotators, text)


def test_sample_corpus_and_fewclue_paragraphs(annotators):
    texts = [json.loads(line)["text"] for line in open(sample_path("corpus.jsonl"), encoding="utf-8")]
    for f in sorted(shared_file("fewclue").glob("*/*.json")):
        for i, line in enumerate(open(f, encoding="utf-8")):
            if i % 7:  # every seventh row: the Python reference is the slow side of this comparison
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            texts += [v for v in row.values() if isinstance(v, str)]
    assert len(texts) > 10_000
    native, reference = annotators
    for text in texts:
        _same(native, reference, text)
