"""The embedded sample data holds what the README promises."""

import json

from obert_lib.corpus.annotate import load_knowledge_base
from obert_lib.paths import SAMPLE_DIR


def test_sample_data_size_and_corpus():
    total = sum(p.stat().st_size for p in SAMPLE_DIR.rglob("*") if p.is_file())
    assert total <= 2 * 1024 * 1024
    docs = [json.loads(line) for line in open(SAMPLE_DIR / "corpus.jsonl", encoding="utf-8")]
    assert len(docs) >= 200 and len({d["id"] for d in docs}) == len(docs)
    assert {d["source"] for d in docs} == {"encyclopedia", "qa", "news"}


def test_knowledge_base_entities_occur_in_corpus():
    kb = load_knowledge_base(SAMPLE_DIR / "kb.jsonl")
    assert len(kb) >= 100 and all(e.name and e.description and e.summary for e in kb)
    text = (SAMPLE_DIR / "corpus.jsonl").read_text(encoding="utf-8")
    found = sum(any(n in text for n in [e.name, *e.aliases]) for e in kb)
    assert found / len(kb) >= 0.9


def test_synonym_lexicon_format():
    lines = (SAMPLE_DIR / "synonyms.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "word\tsynonym\tweight"
    for line in lines[1:]:
        word, syn, weight = line.split("\t")
        assert word != syn and 0 < float(weight) <= 1
    assert len(lines) > 300
