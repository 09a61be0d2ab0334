"""Each dedup stage pairs its documents with the right task's duplicate index, whatever each task kept (issue 13.1)."""

import json

import pytest

from obert_lib import corpus
from tests.corpus.sentences import DISTINCT_SENTENCES

pytestmark = pytest.mark.bad_input

TEXTS = DISTINCT_SENTENCES[:10]


def _jsonl(path, rows):
    path.write_text(
        "".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )


def _run(tmp_path, folder, **cfg):
    return corpus.run(
        {
            "inputs": [str(folder)],
            "output_dir": str(tmp_path / "out"),
            "knowledge_base": None,
            "tokenizer": {"vocab_size": 200},
            **cfg,
        },
        {"progress": False},
    )


def test_exact_duplicate_removed_is_the_later_copy_after_a_task_that_kept_nothing(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    _jsonl(folder / "1_A.jsonl", [{"id": f"a{i}", "text": TEXTS[i]} for i in range(5)])
    _jsonl(folder / "2_B.jsonl", ["[1,2]\n", '"junk"\n'])  # no document: task 1 writes nothing
    _jsonl(
        folder / "3_C.jsonl",
        [{"id": "c0", "text": TEXTS[5]}, {"id": "c1", "text": TEXTS[0]}, {"id": "c2", "text": TEXTS[6]}],
    )
    _jsonl(folder / "4_D.jsonl", [{"id": f"d{i}", "text": TEXTS[7 + i]} for i in range(3)])
    result = _run(tmp_path, folder)
    dups = result.removed["exact_duplicate"]
    assert [(d["id"], d["file"].rsplit("/", 1)[-1], d["line"]) for d in dups] == [("c1", "3_C.jsonl", 2)]
    kept = set(corpus.load_shards(result.output_dir).column("doc_id").to_pylist())
    assert kept == {"a0", "a1", "a2", "a3", "a4", "c0", "c2", "d0", "d1", "d2"}
    s = result.stats
    assert s["documents_in"] == 13 and s["documents_kept"] == 10
    assert s["documents_dropped"] == {"exact_duplicate": 1, "missing_text": 2}


def test_the_first_copy_in_input_order_is_kept(tmp_path):
    """The copy in the earlier file stays even when the later file holds it at an earlier position."""
    folder = tmp_path / "in"
    folder.mkdir()
    _jsonl(folder / "1_A.jsonl", [{"id": f"a{i}", "text": TEXTS[i]} for i in range(4)])
    _jsonl(folder / "2_B.jsonl", [{"id": "b0", "text": TEXTS[3]}, {"id": "b1", "text": TEXTS[4]}])
    result = _run(tmp_path, folder, dedup={"near": False})
    assert [d["id"] for d in result.removed["exact_duplicate"]] == ["b0"]


def test_junk_file_first_does_not_crash_the_exact_filter(tmp_path):
    """A junk first file shifted every file by one task: 'Duplicates doc index not exhausted'."""
    folder = tmp_path / "in"
    folder.mkdir()
    _jsonl(folder / "0_junk.jsonl", ["[1,2]\n"])
    _jsonl(folder / "1_A.jsonl", [{"id": f"a{i}", "text": TEXTS[i]} for i in range(3)])
    _jsonl(
        folder / "2_B.jsonl",
        [{"id": "b0", "text": TEXTS[3]}, {"id": "b1", "text": TEXTS[4]}, {"id": "b2", "text": TEXTS[1]}],
    )
    near = TEXTS[8] + TEXTS[5]
    _jsonl(folder / "3_C.jsonl", [{"id": "c0", "text": TEXTS[6] + "\n" + TEXTS[9]}, {"id": "c1", "text": near}])
    _jsonl(
        folder / "4_D.jsonl",
        [
            {"id": "d0", "text": TEXTS[7] + "\n" + TEXTS[9]},  # repeats c0's paragraph
            {"id": "d1", "text": near.replace("代表", "典范")},
        ],
    )  # near-duplicate of c1
    result = _run(tmp_path, folder)
    assert [d["id"] for d in result.removed["exact_duplicate"]] == ["b2"]
    assert [d["id"] for d in result.removed["near_duplicate"]] == ["d1"]
    s = result.stats
    assert s["documents_in"] == 11 == s["documents_kept"] + sum(s["documents_dropped"].values())
    assert s["lines_removed"]["duplicate_paragraph"] == 1
    texts = corpus.load_shards(result.output_dir).column("text").to_pylist()
    assert texts.count(TEXTS[9]) == 1 and TEXTS[7] in texts and near in texts


def test_tasks_emptied_by_a_later_stage_keep_the_pairing(tmp_path):
    """A task that keeps documents in one stage and none in the next (all exact duplicates; no paragraph long
    enough) shifted every later task's near-duplicate and repeated-paragraph indexes."""
    folder = tmp_path / "in"
    folder.mkdir()
    near = TEXTS[3] + TEXTS[4]
    short_lines = "今天天气很好。\n我们去公园吧。\n湖边有很多人。\n孩子放风筝。"  # every line < min_paragraph_chars
    _jsonl(folder / "1_A.jsonl", [{"id": f"a{i}", "text": TEXTS[i]} for i in range(3)])
    _jsonl(folder / "2_B.jsonl", [{"id": "b0", "text": TEXTS[0]}, {"id": "b1", "text": TEXTS[1]}])
    _jsonl(folder / "3_E.jsonl", [{"id": "e0", "text": short_lines}])
    _jsonl(folder / "4_C.jsonl", [{"id": "c0", "text": near}, {"id": "c1", "text": TEXTS[6] + "\n" + TEXTS[9]}])
    _jsonl(
        folder / "5_D.jsonl",
        [{"id": "d0", "text": near.replace("五岳", "五座名山")}, {"id": "d1", "text": TEXTS[7] + "\n" + TEXTS[9]}],
    )
    result = _run(tmp_path, folder)
    assert [d["id"] for d in result.removed["exact_duplicate"]] == ["b0", "b1"]
    assert [d["id"] for d in result.removed["near_duplicate"]] == ["d0"]
    s = result.stats
    assert s["documents_in"] == 10 and s["documents_kept"] == 7 and s["lines_removed"]["duplicate_paragraph"] == 1
    table = corpus.load_shards(result.output_dir)
    assert sorted(zip(table.column("doc_id").to_pylist(), table.column("text").to_pylist())) == sorted(
        [
            ("a0", TEXTS[0]),
            ("a1", TEXTS[1]),
            ("a2", TEXTS[2]),
            ("c0", near),
            ("c1", TEXTS[6]),
            ("c1", TEXTS[9]),
            ("d1", TEXTS[7]),
        ]
    )
