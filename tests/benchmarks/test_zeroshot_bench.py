"""`obert bench zeroshot` on a few shared dev_few_all rows with the tiny preset: the table, the last line, and
that our scoring agrees with transformers' fill-mask pipeline on every row (no timing limits)."""

import re

from obert_lib.benchmarks import zeroshot as bench
from obert_lib.cli import main
from tests.conftest import shared_file

# bustm: two fields; csldcp: long abstracts, so rows cut to 128 tokens reach the pipeline as decoded text
TASKS = ("bustm", "csldcp")


def _shared_inputs():
    shared_file("vocab/bert-base-chinese-vocab.txt")
    for task in TASKS:
        shared_file(f"fewclue/{task}/dev_few_all.json")


def test_bench_zeroshot_agrees_with_the_fill_mask_pipeline_and_ends_with_ratio(capsys):
    _shared_inputs()
    rows = bench.run(preset="tiny", tasks=",".join(TASKS), max_rows=6, repeats=1)
    printed = capsys.readouterr().out.strip().splitlines()
    assert [r.task for r in rows] == list(TASKS) and all(r.rows == 6 for r in rows)
    for r in rows:
        assert len(r.ours_s) == len(r.hf_s) == 1 and min(r.ours_s + r.hf_s) > 0
        assert r.same_ids == 1.0  # the pipeline reads exactly our input ids, cut rows included
        assert r.agreement == 1.0  # ...and predicts the same label on every row
        assert r.max_diff < 1e-4  # with the same label-word log-probs up to float32 rounding
    header = next(i for i, line in enumerate(printed) if line.startswith("task "))
    assert printed[header].split() == [
        *("task", "rows", "ours", "rows/s", "pipeline", "rows/s", "agreement", "same", "ids", "max", "|dlogp|")
    ]
    table = printed[header + 1 : header + 2 + len(TASKS)]
    assert [line.split()[0] for line in table] == [*TASKS, "all"]
    assert [line.split()[4] for line in table] == ["1.0000"] * (len(TASKS) + 1)
    assert re.fullmatch(r"ratio: \d+\.\d\d", printed[-1])
    ours_s = sum(r.ours_s[0] for r in rows)
    hf_s = sum(r.hf_s[0] for r in rows)
    assert printed[-1] == f"ratio: {hf_s / ours_s:.2f}"


def test_cli_bench_zeroshot_passes_its_options(monkeypatch):
    calls = []
    monkeypatch.setattr(bench, "run", lambda *a, **k: calls.append((a, k)))
    main(["bench", "zeroshot", "--preset", "tiny", "--tasks", "eprstmt", "--max-rows", "4", "--split", "dev_0"])
    main(["bench", "zeroshot", "--repeats", "2", "--threads", "1", "--seed", "3", "--set", "max_rows=5"])
    assert calls == [
        ((None, "tiny", "dev_0", "eprstmt", 4, 16, None, 0), {}),
        ((None, "small", "dev_few_all", None, 5, 16, 1, 3), {"repeats": 2}),
    ]
