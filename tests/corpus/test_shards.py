"""shards.shard_batch: Arrow arrays made from their buffers equal what pa.array makes of the same rows, and making
them imports no pandas."""

import array
import json
import subprocess
import sys

import pyarrow as pa
import pytest

from obert_lib.corpus.shards import SHARD_COLUMNS, SPAN_KEYS, shard_batch, shard_schema, string_array


def packed(values: list[int]) -> bytes:
    return array.array("i", values).tobytes()


ROWS = [  # hand-written shard rows: Chinese and emoji text, an empty paragraph, a missing source, no spans
    {"doc_id": "d1", "source": "a.jsonl", "paragraph": 0, "text": "长江大桥", "input_ids": [101, 7270, 102]},
    {"doc_id": "d1", "source": "a.jsonl", "paragraph": 1, "text": "", "input_ids": []},
    {"doc_id": "d2", "source": None, "paragraph": 2**31 - 1, "text": "😀 e\u0301", "input_ids": [1]},
]
SPANS = [[[0, 2], [2, 4]], [], [[0, 1]]]
KNOWLEDGE = [["Q1", "长江"], [], ["Q2"]]


def columns() -> dict[str, list]:
    cols = {name: [] for name in SHARD_COLUMNS}
    for row, spans, knowledge in zip(ROWS, SPANS, KNOWLEDGE):
        for key in ("doc_id", "source", "paragraph", "text"):
            cols[key].append(row[key])
        cols["input_ids"].append(packed(row["input_ids"]))
        for key in SPAN_KEYS:
            cols[key].append(packed([v for pair in spans for v in pair]))
        cols["knowledge_ids"].append(knowledge)
    return cols


def test_shard_batch_equals_pa_array_of_the_same_rows():
    expected = {key: [row[key] for row in ROWS] for key in ("doc_id", "source", "paragraph", "text", "input_ids")}
    expected.update({key: SPANS for key in SPAN_KEYS})
    expected["knowledge_ids"] = KNOWLEDGE
    reference = pa.RecordBatch.from_pydict(expected, schema=shard_schema())
    got = shard_batch(columns(), shard_schema())
    got.validate(full=True)
    assert got.equals(reference)
    assert got.column(1).null_count == 1


def test_string_array_without_nulls_has_no_bitmap():
    got = string_array(["a", "中"])
    assert got.buffers()[0] is None and got.to_pylist() == ["a", "中"]
    assert string_array([]).to_pylist() == []


def test_a_lone_surrogate_is_refused_as_pa_array_refuses_it():
    with pytest.raises(UnicodeEncodeError):
        string_array(["\ud800"])


def test_making_a_batch_imports_no_pandas():
    code = (
        "import sys, json\n"
        "sys.path.insert(0, 'tests/corpus')\n"
        "from test_shards import columns\n"
        "from obert_lib.corpus.shards import shard_batch, shard_schema\n"
        "shard_batch(columns(), shard_schema())\n"
        "print(json.dumps('pandas' in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) is False
