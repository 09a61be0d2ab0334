"""One CLI idiom: every subcommand takes --config, --set (results) and --runtime (speed), merged the same way."""

from __future__ import annotations

import pytest

from obert_lib import cli
from obert_lib.cli import build_parser, main

COMMANDS = {
    "preprocess": [],
    "bench": ["train"],
    "mask": ["--corpus", "c", "--text", "t"],
    "pretrain": [],
    "zeroshot": [],
    "finetune": [],
    "demo": [],
    "serve": ["--task", "tnews=runs/ft/tnews/best"],
    "kbqa": ["train"],
    "distill": [],
    "experiment": ["run"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_subcommand_takes_config_set_and_runtime(command):
    args = build_parser().parse_args(
        [command, *COMMANDS[command], "--config", "x.yaml", "--set", "a=1", "--runtime", "b=2"]
    )
    config = args.profile if command == "demo" else args.config
    assert (config, args.set, args.runtime) == ("x.yaml", ["a=1"], ["b=2"])


def test_older_spellings_are_the_same_flags():
    args = build_parser().parse_args(
        ["pretrain", "--plan", "p.yaml", "--speed", "zero_stage=3", "--runtime", "precision=fp32"]
    )
    assert (args.config, args.runtime) == ("p.yaml", ["zero_stage=3", "precision=fp32"])
    assert build_parser().parse_args(["pretrain"]).config == "tiny"
    assert build_parser().parse_args(["demo", "--profile", "tiny"]).profile == "tiny"


def test_bench_settings_by_set_and_runtime_reach_the_benchmark(monkeypatch):
    from obert_lib.benchmarks import train as train_bench

    calls = []
    monkeypatch.setattr(train_bench, "run", lambda *a, **k: calls.append(a))
    assert (
        main(
            [
                "bench",
                "train",
                "--set",
                "seq_len=64",
                "--set",
                "steps=2",
                "--runtime",
                "threads=1",
                "--runtime",
                "zero_stage=0",
            ]
        )
        == 0
    )
    corpus, preset, seq_len, micro_batch, warmup, steps, threads, precision, zero_stage, seed = calls[0]
    assert (seq_len, steps, threads, zero_stage, preset, micro_batch) == (64, 2, 1, 0, "small", 16)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["bench", "train", "--set", "threads=1"], "--set threads: not a setting of `obert bench` here"),
        (["bench", "train", "--runtime", "seq_len=64"], "--runtime seq_len: not a setting of `obert bench` here"),
        (
            ["zeroshot", "--runtime", "workers=2"],
            "--runtime workers: not a setting of `obert zeroshot` here; valid keys are ['progress']",
        ),
        (["zeroshot", "--runtime", "progress=maybe"], "--runtime progress: expected true/false, got 'maybe'"),
        (["demo", "--runtime", "x=1"], "`obert demo` has none"),
    ],
)
def test_a_setting_in_the_wrong_group_is_one_line(capsys, argv, needle):
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_mask_config_file_then_set_then_flags(tmp_path, monkeypatch):
    seen = {}

    class Previewer:
        @classmethod
        def from_corpus(cls, corpus):
            return cls()

        def mask(self, text, cfg, seed):
            seen["cfg"] = cfg
            raise SystemExit(0)

    monkeypatch.setattr("obert_lib.masking.MaskPreviewer", Previewer)
    config = tmp_path / "mask.yaml"
    config.write_text("strategy: phrase\nmask_rate: 0.3\nsynonym: {rate: 0.25}\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        cli.main(["mask", "--corpus", "c", "--text", "北京", "--config", str(config), "--set", "mask_rate=0.4"])
    assert (seen["cfg"].strategy, seen["cfg"].mask_rate, seen["cfg"].synonym.rate) == ("phrase", 0.4, 0.25)
    with pytest.raises(SystemExit):
        cli.main(
            [
                "mask",
                "--corpus",
                "c",
                "--text",
                "北京",
                "--config",
                str(config),
                "--set",
                "mask_rate=0.4",
                "--mask-rate",
                "0.2",
                "--strategy",
                "word",
            ]
        )
    assert (seen["cfg"].strategy, seen["cfg"].mask_rate) == ("word", 0.2)
