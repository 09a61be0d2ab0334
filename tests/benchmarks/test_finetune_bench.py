"""`obert bench finetune` at tiny size on the sample eprstmt data, with a vocab of the sample's own characters (no
shared data needed): the table's rows and columns and the last line (no timing limits)."""

import json
import re

from obert_lib.benchmarks import finetune as bench
from obert_lib.cli import main
from obert_lib.corpus.tokenizer import SPECIAL_TOKENS
from obert_lib.paths import sample_path


def _vocab(folder):
    chars = set()
    for split in ("train_0", "dev_0"):
        for line in (sample_path("fewclue") / "eprstmt" / f"{split}.json").read_text(encoding="utf-8").splitlines():
            if line.strip():
                chars |= set(json.loads(line)["sentence"].lower())
    path = folder / "vocab.txt"
    path.write_text("\n".join(SPECIAL_TOKENS + sorted(c for c in chars if not c.isspace())) + "\n", encoding="utf-8")
    return path


def test_bench_finetune_prints_one_table_and_ends_with_ratio(tmp_path, capsys):
    rows = bench.run(
        _vocab(tmp_path), preset="tiny", max_length=64, batch_size=8, epochs=1, repeats=1, tricks=("fgm", "msd"),
        data_dir="sample:fewclue", train_split="train_0",
    )  # fmt: skip
    printed = capsys.readouterr().out.strip().splitlines()
    assert [r.name for r in rows] == [bench.TRAINER, "none", "fgm", "msd"]
    for r in rows:
        assert r.steps == 2  # 16 sample rows in batches of 8, one epoch, on both sides
        assert len(r.step_seconds) == 1 and r.step_seconds[0] > 0
        assert 0 < r.padded_len <= 64
    assert not any(line.startswith("{") for line in printed)  # no Trainer metrics line beside the table
    header = next(i for i, line in enumerate(printed) if line.startswith("run "))
    assert printed[header].split() == ["run", "padded", "len", "ms/step", "steps/s", "cost", "expected", "runs", "ms"]
    table = printed[header + 1 : header + 5]
    assert [line[:16].strip() for line in table] == ["Trainer", "ours, no trick", "ours, fgm", "ours, msd"]
    assert table[1][16:].split()[3] == "1.00"  # cost is relative to ours without a trick
    assert printed[header + 5] == ""
    assert re.fullmatch(r"ratio: \d+\.\d\d", printed[-1])
    trainer, ours = rows[0], rows[1]
    assert printed[-1] == f"ratio: {ours.steps_per_s / trainer.steps_per_s:.2f}"


def test_cli_bench_finetune_passes_its_options(monkeypatch):
    calls = []
    monkeypatch.setattr(bench, "run", lambda *a, **k: calls.append((a, k)))
    main(["bench", "finetune", "--preset", "tiny", "--epochs", "2", "--micro-batch", "8", "--seq-len", "64"])
    main(["bench", "finetune", "--repeats", "1", "--threads", "1", "--set", "epochs=1"])
    common = {"seed": 0}
    assert calls == [
        ((None, "tiny"), {"max_length": 64, "batch_size": 8, "epochs": 2, "threads": None, **common}),
        ((None, "small"), {"max_length": 128, "batch_size": 16, "epochs": 1, "threads": 1, "repeats": 1, **common}),
    ]
