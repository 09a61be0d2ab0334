import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from obert_lib.cli import build_parser, main

STAGES = [
    "preprocess",
    "mask",
    "pretrain",
    "zeroshot",
    "finetune",
    "demo",
    "bench",
    "serve",
    "kbqa",
    "distill",
    "experiment",
]


def _obert() -> list[str]:
    exe = Path(sys.executable).with_name("obert")
    return [str(exe)] if exe.exists() else [shutil.which("obert") or "obert"]


def test_help_lists_every_stage_and_each_has_help():
    out = subprocess.run(_obert() + ["--help"], capture_output=True, text=True, check=True).stdout
    for stage in STAGES:
        assert stage in out
    for stage in STAGES:
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args([stage, "--help"])
        assert exc.value.code == 0


def test_bench_help_lists_collate(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["bench", "collate", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "collate" in out and "--corpus" in out and "--batches" in out


def test_bad_config_key_exits_2_with_message(capsys):
    assert main(["preprocess", "--set", "quality.min_cjk_char=3"]) == 2
    assert "quality.min_cjk_char: unknown key" in capsys.readouterr().err


def test_preprocess_and_mask_commands(tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["preprocess", "--output", str(out), "--set", "max_documents=40"]) == 0
    assert '"documents_in": 40' in capsys.readouterr().out
    assert (
        main(["mask", "--corpus", str(out), "--text", "李白与杜甫并称李杜。", "--strategy", "entity", "--seed", "1"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "with strategy entity" in printed and "[" in printed
    assert (
        main(
            [
                "mask",
                "--corpus",
                str(out),
                "--text",
                "北京的风景很美丽。",
                "--mixture",
                "entity:1,clause:0",
                "--mask-rate",
                "0.3",
                "--knowledge",
                "--synonym",
                "--seed",
                "0",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "K_w [北京 (E001)]" in printed and "with strategy entity" in printed


def test_preprocess_web_preset_and_workers(tmp_path, capsys):
    out = tmp_path / "w"
    assert (
        main(["preprocess", "--config", "web", "--output", str(out), "--workers", "2", "--set", "dedup.near=false"])
        == 0
    )
    printed = capsys.readouterr().out
    stats = json.loads(printed[printed.index("{") :])
    assert stats["documents_in"] == 220 and stats["documents_kept"] > 100
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["quality"]["min_cjk_chars"] == 50 and cfg["dedup"]["near"] is False


def test_bench_repeats_reach_each_benchmark_or_leave_its_default(monkeypatch):
    from obert_lib.benchmarks import collate as masking_bench
    from obert_lib.benchmarks import preprocess as corpus_bench

    calls = []
    monkeypatch.setattr(corpus_bench, "run", lambda *a, **k: calls.append(("preprocess", a, k)))
    monkeypatch.setattr(masking_bench, "run", lambda *a, **k: calls.append(("collate", a, k)))
    for argv in (
        ["bench", "preprocess", "--repeats", "3"],
        ["bench", "preprocess"],
        ["bench", "collate", "--repeats", "2", "--corpus", "c"],
        ["bench", "collate", "--corpus", "c"],
    ):
        args = build_parser().parse_args(argv)
        args.func(args)
    assert calls == [
        ("preprocess", (None, None), {"repeats": 3}),
        ("preprocess", (None, None), {}),
        ("collate", ("c", 20), {"seed": 0, "repeats": 2}),
        ("collate", ("c", 20), {"seed": 0}),
    ]


def test_bench_preprocess_rejects_repeats_below_one_before_any_work():
    from obert_lib.benchmarks import preprocess as bench

    with pytest.raises(ValueError, match=r"repeats: 0 must be >= 1"):
        bench.run(inputs=["/nonexistent/never-read.jsonl"], repeats=0)
