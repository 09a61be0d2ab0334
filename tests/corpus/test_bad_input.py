"""Bad input, table-driven: `obert preprocess` ends 0 or 2 (never a traceback), in = kept + dropped, and every
dropped document is findable under removed/<reason>/ with its file (issue 13: keep it found).

Cases that leave documents are batched into one run per input format; each run that keeps nothing is its own.
"""

import gzip
import json
import random
import socket
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from obert_lib.corpus.kept_paragraphs import kept_documents
from obert_lib.corpus.readers import DROP_KEY, ObertJsonlReader, ObertTextReader
from tests.corpus.sentences import DISTINCT_SENTENCES
from tests.corpus.small_runs import preprocess_cli

pytestmark = pytest.mark.bad_input

GOOD = DISTINCT_SENTENCES
BOM = b"\xef\xbb\xbf"


def _line(i: int, **extra) -> bytes:
    return (json.dumps({"id": f"g{i}", "text": GOOD[i], **extra}, ensure_ascii=False) + "\n").encode()


# file name -> (bytes, documents kept, {reason: documents dropped}); every good text appears once in the run
JSONL_CASES = {
    "bom.jsonl": (BOM + _line(0) + _line(1), 2, {}),  # a BOM costs no document
    "bom_crlf.jsonl": (BOM + _line(2).replace(b"\n", b"\r\n"), 1, {}),  # Windows: BOM and CRLF
    "blank_lines.jsonl": (b"\n  \n" + _line(3) + b"\n\t\n", 1, {}),
    "no_final_newline.jsonl": (_line(4).rstrip(b"\n"), 1, {}),
    "garbage.jsonl": (b"this is not json\n{'single': 'quotes'}\n", 0, {"unreadable_line": 2}),
    "non_object.jsonl": (b'[1,2]\n"junk"\n3\nnull\ntrue\n', 0, {"missing_text": 5}),
    "wrong_type.jsonl": (
        b'{"text": 3}\n{"text": ["a"]}\n{"text": {"a": 1}}\n{"text": false}\n',
        0,
        {"missing_text": 4},
    ),
    "null_text.jsonl": (b'{"id": "n", "text": null}\n' + _line(5), 1, {"missing_text": 1}),
    "other_key.jsonl": ('{"sentence": "一句话"}\n'.encode(), 0, {"missing_text": 1}),
    "binary.jsonl": (bytes(b for b in range(256) if b != 10) + b"\n", 0, {"invalid_utf8": 1}),
    "nul_bytes.jsonl": (b"\x00\x00\x00\n", 0, {"unreadable_line": 1}),
    "truncated_line.jsonl": (_line(6) + b'{"id": "t", "text": "cut', 1, {"unreadable_line": 1}),
    "pretty.jsonl": (b'[\n  {\n    "text": "x"\n  }\n]\n', 0, {"unreadable_line": 5}),
    "empty.jsonl": (b"", 0, {}),
    "only_bom.jsonl": (BOM, 0, {}),
    "good.jsonl.gz": (gzip.compress(BOM + _line(7)), 1, {}),  # a BOM inside gzip too
    "corrupt.jsonl.gz": (gzip.compress(_line(11) * 3)[:25], 0, {"unreadable_file": 1}),
    "plain_named_gz.jsonl.gz": (_line(11), 0, {"unreadable_file": 1}),
    "good.jsonl.zst": (zstandard.ZstdCompressor().compress(_line(8)), 1, {}),
    "corrupt.jsonl.zst": (b"\x28\xb5\x2f\xfd garbage that is not zstd", 0, {"unreadable_file": 1}),
    "latin1.jsonl": ('{"text": "caf\xe9"}\n'.encode("latin-1"), 0, {"invalid_utf8": 1}),
    "too_short.jsonl": ('{"text": "顶"}\n{"text": ""}\n'.encode(), 0, {"too_short": 1, "empty_after_cleaning": 1}),
}


def _preprocess(tmp_path, inputs, *args):
    """`obert preprocess` in process: (exit code, stderr lines, output folder)."""
    out = tmp_path / "out"
    code = preprocess_cli(inputs, out, *args)
    return code, out


def _removed_by_file(out):
    """{file name: Counter(reason)} over removed/<reason>/*.jsonl."""
    found: dict[str, Counter] = {}
    for f in sorted((out / "removed").glob("*/*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            found.setdefault(row["file"].rsplit("/", 1)[-1], Counter())[f.parent.name] += 1
    return found


def _check_balance(out):
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    dropped = stats["documents_dropped"]
    assert stats["documents_in"] == stats["documents_kept"] + sum(dropped.values())
    assert {reason: sum(c[reason] for c in _removed_by_file(out).values()) for reason in dropped} == dropped
    return stats


@pytest.fixture
def no_network(monkeypatch):
    """Any connection off this machine (not the local sockets of worker pools) fails the test."""
    connect = socket.socket.connect

    def local_only(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"the corpus stage tried to reach {address}")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", local_only)


def test_bad_jsonl_files_in_one_folder(tmp_path, capsys, no_network):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, (data, _, _) in JSONL_CASES.items():
        (folder / name).write_bytes(data)
    code, out = _preprocess(tmp_path, [folder], "--set", "dedup.near=false")
    assert code == 0, capsys.readouterr().err
    stats = _check_balance(out)
    assert _removed_by_file(out) == {name: Counter(drops) for name, (_, _, drops) in JSONL_CASES.items() if drops}
    assert stats["documents_kept"] == sum(kept for _, kept, _ in JSONL_CASES.values())
    kept_texts = [doc["text"] for doc in kept_documents(out / "_work")]
    assert sorted(kept_texts) == sorted(GOOD[:9])  # the BOM files' first documents included, without a BOM


def test_bad_parquet_rows_and_files_are_counted(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(
        pa.table({"id": ["a", "b", "c", "d"], "text": [GOOD[0], None, GOOD[1], ""]}), folder / "nulls.parquet"
    )
    pq.write_table(pa.table({"id": ["x", "y"], "content": [GOOD[2], GOOD[3]]}), folder / "no_text_column.parquet")
    pq.write_table(pa.table({"text": [1, 2, 3]}), folder / "int_text.parquet")
    pq.write_table(pa.table({"text": [GOOD[4], GOOD[5]]}), folder / "no_id.parquet")
    (folder / "corrupt.parquet").write_bytes(b"PAR1 this is not parquet PAR1")
    whole = (folder / "no_id.parquet").read_bytes()
    (folder / "truncated.parquet").write_bytes(whole[: len(whole) // 2])
    code, out = _preprocess(tmp_path, [folder])
    assert code == 0, capsys.readouterr().err
    stats = _check_balance(out)
    assert _removed_by_file(out) == {
        "nulls.parquet": Counter(missing_text=1, empty_after_cleaning=1),
        "no_text_column.parquet": Counter(missing_text=2),
        "int_text.parquet": Counter(missing_text=3),
        "corrupt.parquet": Counter(unreadable_file=1),
        "truncated.parquet": Counter(unreadable_file=1),
    }
    assert stats["documents_in"] == 13 and stats["documents_kept"] == 4
    rows = [json.loads(line) for f in (out / "removed" / "missing_text").glob("*.jsonl") for line in f.open()]
    null = [r for r in rows if r["file"].endswith("nulls.parquet")]
    assert [(r["line"], r["detail"]) for r in null] == [(2, "field 'text' is null, not a string (keys: 'id', 'text')")]


def test_text_inputs_with_bom_and_bad_files(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bom.txt").write_bytes(BOM + f"{GOOD[0]}\n\n{GOOD[1]}\n".encode())
    (folder / "binary.txt").write_bytes(b"\xff\xfe\xfd\n" + GOOD[2].encode() + b"\n")
    (folder / "corrupt.txt.gz").write_bytes(gzip.compress(GOOD[3].encode())[:20])
    code, out = _preprocess(tmp_path, [folder])
    assert code == 0, capsys.readouterr().err
    stats = _check_balance(out)
    assert _removed_by_file(out) == {
        "binary.txt": Counter(invalid_utf8=1),
        "corrupt.txt.gz": Counter(unreadable_file=1),
    }
    kept = list(kept_documents(out / "_work"))
    assert sorted(r["text"] for r in kept) == sorted(GOOD[:3]) and stats["documents_kept"] == 3


FEWCLUE_ROWS = b"".join(
    (json.dumps({"id": i, "sentence": GOOD[i % 12], "label": "Positive"}, ensure_ascii=False) + "\n").encode()
    for i in range(32)
)
PRETTY = json.dumps([{"text": t} for t in GOOD[:3]], ensure_ascii=False, indent=2).encode()

# runs that keep nothing: file name, bytes, extra arguments, what the one error line must say
ALL_DROPPED = [
    ("empty.jsonl", b"", [], ["no documents in the inputs", "empty.jsonl"]),
    (
        "fewclue.json",
        FEWCLUE_ROWS,
        [],
        [
            "all 32 documents dropped: missing_text (32)",
            "the text field is `text`",
            "these rows have `sentence`",
            "text_key=sentence",
        ],
    ),
    ("pretty.json", PRETTY, [], ["documents dropped: unreadable_line", "JSON lines"]),
    (
        "plain.jsonl.gz",
        b"".join(_line(i) for i in range(3)),
        [],
        ["all 1 document dropped: unreadable_file (1)", "plain.jsonl.gz", "compressed"],
    ),
    (
        "short.jsonl",
        '{"text": "顶"}\n{"text": "同问"}\n'.encode(),
        [],
        ["all 2 documents dropped: too_short (2)", "quality.min_cjk_chars"],
    ),
    ("null.jsonl", b'{"text": null}\n', ["--set", "keep_removed=false"], ["missing_text (1)", "null"]),
    (
        "short_lines.jsonl",
        json.dumps(
            {"text": "今天天气很好。\n我们去公园吧。\n湖边有很多人。\n孩子放风筝。"}, ensure_ascii=False
        ).encode(),
        [],
        ["no paragraph written", "min_paragraph_chars"],
    ),
]


@pytest.mark.parametrize("name,data,args,says", ALL_DROPPED, ids=[c[0] for c in ALL_DROPPED])
def test_a_run_that_keeps_nothing_says_why_in_one_line(tmp_path, capsys, name, data, args, says):
    (tmp_path / name).write_bytes(data)
    code, out = _preprocess(tmp_path, [tmp_path / name], *args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("obert preprocess: error: ") and "\n" not in err, err
    for fragment in says:
        assert fragment in err
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["paragraphs_out"] == 0
    assert stats["documents_in"] == stats["documents_kept"] + sum(stats["documents_dropped"].values())
    if "keep_removed=false" not in args:
        _check_balance(out)


def _mixed(folder):
    folder.mkdir()
    (folder / "a.jsonl").write_bytes(_line(0))
    (folder / "b.parquet").write_bytes(b"PAR1")
    return folder


def _empty_folder(folder):
    (folder / "sub").mkdir(parents=True)
    return folder


REFUSED_INPUTS = [
    (_mixed, "input_format: inputs mix formats"),
    (_empty_folder, "hold no files"),
    (lambda p: p / "missing.jsonl", "does not exist"),
]


@pytest.mark.parametrize("make,says", REFUSED_INPUTS, ids=["mixed formats", "empty folder", "missing file"])
def test_inputs_that_cannot_be_run_are_refused_before_work(tmp_path, capsys, make, says):
    code, out = _preprocess(tmp_path, [make(tmp_path / "in")])
    err = capsys.readouterr().err
    assert code == 2 and says in err and not out.exists(), err


PIECES = [
    b'{"text": "',
    b'"}',
    b'{"id": 1, "text": ',
    b"null",
    b"[",
    b"]",
    b"\xff",
    BOM,
    b"\x00",
    b'"',
    b"\\",
    "北京".encode(),
    "长".encode()[:2],
    b"{",
    b"}",
    b",",
    b":",
    b"\r",
    b" ",
    b"\t",
    b"1e999",
    b'"text"',
    b"true",
]


@pytest.mark.parametrize("seed", range(3))
def test_readers_give_one_document_or_drop_per_generated_line(tmp_path, seed):
    """Generated lines of JSON fragments, bad UTF-8, BOMs and control bytes: each non-blank line is exactly one
    document or one drop naming its line (a BOM only at the start of the file is no content), and nothing raises."""
    from datatrove.io import get_datafolder

    rng = random.Random(seed)
    lines = [b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 8))) for _ in range(400)]
    lines[0] = BOM + lines[0]  # as a Windows editor saves it
    (tmp_path / "gen.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "gen.txt").write_bytes(b"\n".join(lines) + b"\n")
    first = lines[0].removeprefix(BOM)
    content = [first, *lines[1:]]
    folder = get_datafolder(str(tmp_path))
    docs = list(ObertJsonlReader(folder).read_file("gen.jsonl"))
    assert [d.metadata["line"] for d in docs] == [i for i, raw in enumerate(content, 1) if raw.strip()]
    assert all(isinstance(d.text, str) and (DROP_KEY in d.metadata or d.metadata["file"]) for d in docs)
    docs = list(ObertTextReader(folder).read_file("gen.txt"))
    assert [d.metadata["line"] for d in docs] == [
        i for i, raw in enumerate(content, 1) if raw.decode("utf-8", "replace").strip()
    ]
