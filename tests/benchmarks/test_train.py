"""`obert bench train` on the sample corpus with the tiny preset: both models, a table, a final ratio line
(no timing limits)."""

import re

from obert_lib.benchmarks import train as bench
from obert_lib.cli import build_parser


def test_bench_train_runs_both_models_and_ends_with_ratio(sample_corpus, capsys):
    rows = bench.run(sample_corpus.output_dir, preset="tiny", seq_len=128, micro_batch=16, warmup=1, steps=2)
    printed = capsys.readouterr().out.strip().splitlines()
    assert [r.model for r in rows] == [bench.OURS, bench.HF]
    for r in rows:
        assert len(r.step_seconds) == 2 and all(s > 0 for s in r.step_seconds)
        assert 0 < r.real_tokens <= r.padded_tokens
        assert r.padded_tokens % 16 == 0 and r.padded_tokens <= 2 * 16 * 128  # 2 steps of 16 rows, width <= seq_len
    ours, hf = rows
    # packed rows are filled first-fit up to seq_len - 2 tokens, so a batch is as wide as seq_len and barely padded
    assert ours.padded_tokens == 2 * 16 * 128 and ours.padding_share < 0.05
    # The inputs are deterministic (seed 0): packing leaves less padding than one paragraph per sequence.
    assert ours.padding_share < hf.padding_share
    assert any("attn_implementation=" in line for line in printed)  # the header names HF's attention
    table = [line for line in printed if line.startswith((bench.OURS, bench.HF))]
    assert len(table) == 2
    assert re.fullmatch(r"ratio: \d+\.\d\d", printed[-1])
    assert printed[-1] == f"ratio: {ours.real_per_s / hf.real_per_s:.2f}"


def test_cli_registers_bench_train():
    args = build_parser().parse_args(
        ["bench", "train", "--preset", "tiny", "--steps", "2", "--warmup", "1", "--micro-batch", "8", "--seq-len", "64"]
    )
    assert (args.what, args.preset, args.steps, args.warmup, args.micro_batch, args.seq_len) == (
        "train",
        "tiny",
        2,
        1,
        8,
        64,
    )
    assert args.precision is None and args.zero_stage == 2
