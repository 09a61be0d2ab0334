"""The embedded sample data holds what the README promises."""

import ast
import json

import pytest

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


# --- FewCLUE sample: the nine tasks in the real FewCLUE file formats ---------------------------

FEWCLUE = SAMPLE_DIR / "fewclue"
TNEWS = {
    100: ("news_story", "故事"),
    101: ("news_culture", "文化"),
    102: ("news_entertainment", "娱乐"),
    103: ("news_sports", "体育"),
    104: ("news_finance", "财经"),
    106: ("news_house", "房产"),
    107: ("news_car", "汽车"),
    108: ("news_edu", "教育"),
    109: ("news_tech", "科技"),
    110: ("news_military", "军事"),
    112: ("news_travel", "旅游"),
    113: ("news_world", "国际"),
    114: ("news_stock", "股票"),
    115: ("news_agriculture", "农业"),
    116: ("news_game", "电竞"),
}
OCNLI_LABELS = {"entailment", "neutral", "contradiction"}
# task -> (fields of a dev row with their types, fields of a test row with their types)
FIELDS = {
    "eprstmt": ({"id": int, "sentence": str, "label": str}, {"id": int, "sentence": str}),
    "bustm": (
        {"id": int, "sentence1": str, "sentence2": str, "label": str},
        {"id": int, "sentence1": str, "sentence2": str},
    ),
    "tnews": (
        {"label": int, "label_desc": str, "sentence": str, "keywords": str, "id": int},
        {"id": str, "sentence": str},
    ),
    "iflytek": ({"label": int, "label_des": str, "sentence": str, "id": int}, {"id": int, "sentence": str}),
    "csldcp": ({"content": str, "label": str, "id": int}, {"id": int, "content": str}),
    "ocnli": (
        {
            "level": str,
            "sentence1": str,
            "sentence2": str,
            "label": str,
            **{f"label{i}": (str, type(None)) for i in range(5)},
            "genre": str,
            "prem_id": str,
            "id": int,
        },
        {"sentence1": str, "sentence2": str, "id": int},
    ),
    "chid": (
        {"id": int, "candidates": list, "content": str, "answer": int},
        {"id": int, "candidates": list, "content": str},
    ),
    "csl": ({"id": int, "abst": str, "keyword": list, "label": str}, {"id": int, "abst": str, "keyword": list}),
    "cluewsc": ({"target": dict, "idx": int, "label": str, "text": str}, {"target": dict, "id": int, "text": str}),
}


def _rows(task, name):
    """Parse a FewCLUE file the way the evaluator does: split on "\\n", one JSON object a line."""
    lines = (FEWCLUE / task / name).read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "", f"{task}/{name} must end with a newline"
    assert all(line.strip() for line in lines[:-1]), f"{task}/{name} has an empty line"
    return [json.loads(line) for line in lines[:-1]]


def _assignment(path, name):
    """The literal value assigned to `name` in a label file (read, never executed)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path.name} does not assign {name}")


def _iflytek_maps():
    path = FEWCLUE / "iflytek" / "label_id2des_desc2short.py"
    return _assignment(path, "iflytek_labels"), _assignment(path, "label_des2tag")


def _csldcp_tags():
    return _assignment(FEWCLUE / "csldcp" / "labelDesc2label.py", "label_des2tag")


def _check_types(row, fields, where):
    assert list(row) == list(fields), f"{where}: fields {list(row)} != {list(fields)}"
    for key, typ in fields.items():
        value = row[key]
        ok = isinstance(value, typ) and not isinstance(value, bool)
        assert ok, f"{where}: {key}={value!r} is not {typ}"


@pytest.mark.parametrize("task", sorted(FIELDS))
def test_fewclue_sample_files_parse_with_real_fields(task):
    dev_fields, test_fields = FIELDS[task]
    dev, test = _rows(task, "dev_0.json"), _rows(task, "test.json")
    assert len(dev) >= 14 and len(test) >= 8
    for i, row in enumerate(dev):
        _check_types(row, dev_fields, f"{task}/dev_0.json:{i}")
    for i, row in enumerate(test):
        _check_types(row, test_fields, f"{task}/test.json:{i}")
    id_key = "idx" if task == "cluewsc" else "id"
    assert len({r[id_key] for r in dev}) == len(dev) and len({r["id"] for r in test}) == len(test)
    if "label" in dev_fields:
        assert len({r["label"] for r in dev}) >= 2, f"{task}: dev labels are not balanced"


def test_fewclue_sample_label_sets():
    assert {r["label"] for r in _rows("eprstmt", "dev_0.json")} <= {"Positive", "Negative"}
    assert {r["label"] for r in _rows("bustm", "dev_0.json")} <= {"0", "1"}
    assert {r["label"] for r in _rows("csl", "dev_0.json")} <= {"0", "1"}
    assert {r["label"] for r in _rows("cluewsc", "dev_0.json")} <= {"true", "false"}

    tnews = _rows("tnews", "dev_0.json")
    assert all(r["label"] in TNEWS and r["label_desc"] == TNEWS[r["label"]][0] for r in tnews)
    assert len({r["label"] for r in tnews}) >= 6
    label_file = (FEWCLUE / "tnews" / "label_index2en2zh.json").read_text(encoding="utf-8")
    entries = [json.loads(line) for line in label_file.split("\n") if line.strip()]
    assert {int(e["label"]): (e["label_desc"], e["label_zh"]) for e in entries} == TNEWS and len(entries) == 15

    ids, tags = _iflytek_maps()
    assert set(ids) == set(tags) and 6 <= len(ids) <= 8
    assert len(set(tags.values())) == len(tags) and all(len(t) == 2 for t in tags.values())
    for r in _rows("iflytek", "dev_0.json"):
        assert ids.get(r["label_des"]) == r["label"], r

    tags = _csldcp_tags()
    assert 6 <= len(tags) <= 8 and len(set(tags.values())) == len(tags)
    assert all(len(t) == 2 for t in tags.values())
    names = (FEWCLUE / "csldcp" / "labels_all.txt").read_text(encoding="utf-8").splitlines()
    assert names == list(tags)
    assert {r["label"] for r in _rows("csldcp", "dev_0.json")} <= set(tags)


def test_fewclue_sample_ocnli_has_one_no_consensus_row():
    dev = _rows("ocnli", "dev_0.json")
    assert {r["label"] for r in dev} <= OCNLI_LABELS | {"-"}
    assert sum(r["label"] == "-" for r in dev) == 1
    assert {r["label"] for r in dev if r["label"] != "-"} == OCNLI_LABELS
    for r in dev:
        votes = [r[f"label{i}"] for i in range(5)]
        assert all(v is None or v in OCNLI_LABELS for v in votes)


def test_fewclue_sample_chid_candidates_and_blank():
    dev, test = _rows("chid", "dev_0.json"), _rows("chid", "test.json")
    for r in dev + test:
        cands = r["candidates"]
        assert len(cands) == 7 and len(set(cands)) == 7, r
        assert all(isinstance(c, str) and len(c) == 4 for c in cands), r
        assert r["content"].count("#idiom#") == 1, r
    assert all(0 <= r["answer"] < 7 for r in dev)
    assert any(" " in r["content"] for r in dev), "some passages should hold spaces (the protocol removes them)"


def test_fewclue_sample_csl_keywords():
    for r in _rows("csl", "dev_0.json") + _rows("csl", "test.json"):
        assert r["keyword"] and all(isinstance(k, str) and k for k in r["keyword"]), r


def test_fewclue_sample_cluewsc_span_offsets():
    dev, test = _rows("cluewsc", "dev_0.json"), _rows("cluewsc", "test.json")
    span2_first = 0
    for r in dev + test:
        t, text = r["target"], r["text"]
        assert set(t) == {"span1_index", "span1_text", "span2_index", "span2_text"}
        for k in ("1", "2"):
            start, span = t[f"span{k}_index"], t[f"span{k}_text"]
            assert text[start : start + len(span)] == span, (r, k)
        span2_first += t["span2_index"] < t["span1_index"]
    assert span2_first >= 2


def test_fewclue_label_words_are_in_sample_corpus():
    docs = [json.loads(line) for line in open(SAMPLE_DIR / "corpus.jsonl", encoding="utf-8")]
    chars = set("".join(d["text"] for d in docs))
    words = [zh for _, zh in TNEWS.values()]
    words += ["是的", "并且", "不是", "不能", "可以", "正确", "错误"]
    words += list(_iflytek_maps()[1].values()) + list(_csldcp_tags().values())
    missing = {w: [c for c in w if c not in chars] for w in words if not set(w) <= chars}
    assert not missing, f"label-word characters missing from corpus.jsonl: {missing}"
