"""`obert bench`: the benchmarks' subcommand, its settings and the paths it checks before any work."""

from __future__ import annotations

import argparse

from .cli_options import _idiom, _option_settings


def _check_bench_paths(args) -> None:
    """Input and vocab files a benchmark reads, checked before any work (each benchmark checks its --corpus)."""
    from pathlib import Path

    from .config import ConfigError

    for flag, paths in (("--input", args.input or []), ("--vocab", [args.vocab] if args.vocab else [])):
        for path in paths:
            if not Path(path).is_file():
                raise ConfigError(f"{flag}: {path} is not a file; pass an existing file")


BENCH_SET = ("input", "vocab", "corpus", "batches", "seed", "preset", "seq_len", "micro_batch", "warmup", "steps")
BENCH_SET += ("split", "tasks", "max_rows")  # zeroshot
BENCH_SET += ("epochs",)  # finetune
BENCH_RUNTIME = ("repeats", "threads", "precision", "zero_stage")


def cmd_bench(args) -> None:
    _option_settings(args, "--set", BENCH_SET)
    _option_settings(args, "--runtime", BENCH_RUNTIME)
    _check_bench_paths(args)
    repeats = {} if args.repeats is None else {"repeats": args.repeats}  # each benchmark has its own default
    if args.what == "preprocess":
        from .benchmarks import preprocess as bench

        full = {} if args.full_repeats is None else {"full_repeats": args.full_repeats}
        bench.run(args.input, args.vocab, **repeats, **full)
    elif args.what == "collate":
        from .benchmarks import collate as bench

        bench.run(args.corpus, args.batches, seed=args.seed, **repeats)
    elif args.what == "train":
        from .benchmarks import train

        train.run(
            args.corpus,
            args.preset,
            args.seq_len,
            args.micro_batch,
            args.warmup,
            args.steps,
            args.threads,
            args.precision,
            args.zero_stage,
            args.seed,
        )
    elif args.what == "zeroshot":
        from .benchmarks import zeroshot

        zeroshot.run(
            args.vocab,
            args.preset,
            args.split,
            args.tasks,
            args.max_rows,
            args.micro_batch,
            args.threads,
            args.seed,
            **repeats,
        )
    elif args.what == "finetune":
        from .benchmarks import finetune

        finetune.run(
            args.vocab,
            args.preset,
            max_length=args.seq_len,
            batch_size=args.micro_batch,
            epochs=args.epochs,
            threads=args.threads,
            seed=args.seed,
            **repeats,
        )
    elif args.what == "unified":
        from .benchmarks import unified

        unified.run(seq_len=args.seq_len, threads=args.threads, seed=args.seed, **repeats)


def add_bench_parser(add) -> argparse.ArgumentParser:
    """Register `obert bench` through the main parser's `add(name, func, help)`."""
    p = add("bench", cmd_bench, "Benchmarks that print a side-by-side comparison and a last line `ratio: X`.")
    _idiom(
        p,
        "YAML mapping of benchmark settings",
        f"benchmark setting, one of {list(BENCH_SET)}",
        f"speed-only setting, one of {list(BENCH_RUNTIME)}",
    )
    p.add_argument(
        "what",
        choices=["preprocess", "collate", "train", "zeroshot", "finetune", "unified"],
        help="preprocess: MB/s per worker, ours vs jieba.posseg; collate: sequences/s per mask strategy "
        "at length 128 and 512, ours vs transformers' token-level MLM collator; train: real tokens/s "
        "of OBertForMaskedLM (packed rows) vs transformers' BertForMaskedLM (padded paragraphs), "
        "same size, batch and DeepSpeed setup; zeroshot: rows/s of `obert zeroshot` vs transformers' "
        "fill-mask pipeline with targets= on the same filled templates (random BERT, shared FewCLUE), "
        "with the share of rows where both predict the same label; finetune: optimiser steps/s of `obert finetune` "
        "vs transformers' Trainer (BertForSequenceClassification) on the same random BERT and FewCLUE eprstmt, "
        "and each trick's cost per step relative to no trick; unified: FLOPs and wall time of one shared backbone "
        "(UnifiedModel) vs T separate task models, T in 1/3/10, top N in 1/3/6, 12 and 24 layers, random weights, "
        "batch 1 x --seq-len tokens, --repeats interleaved runs (default 3), the theory (L + T·N) / (T·L) beside",
    )
    p.add_argument(
        "--input", nargs="+", help="preprocess: JSONL files with a 'text' field (default: the shared FewCLUE texts)"
    )
    p.add_argument(
        "--vocab", help="preprocess, zeroshot, finetune: BERT vocab.txt (default: the shared Chinese BERT vocab)"
    )
    p.add_argument(
        "--corpus",
        help="collate: a corpus output directory (default: build one from the shared FewCLUE "
        "texts); train: one (default: build one from the embedded sample corpus)",
    )
    p.add_argument("--batches", type=int, default=20, help="collate: batches of 64 per timed round (default 20)")
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="preprocess: interleaved pairs of 1- and 2-worker runs, medians count (default 9); "
        "collate: timed rounds, each batch counts with its best (default 5); zeroshot: interleaved runs "
        "per side and task, medians count (default 3); finetune: interleaved runs per row, medians count (default 3)",
    )
    p.add_argument(
        "--full-repeats",
        type=int,
        default=None,
        help="preprocess: rounds of the full pipelines (ours and datatrove's stock, 1 and 2 workers), "
        "medians count (default 3)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="collate: seed of both collators; train: of data order, masks and weights; zeroshot, finetune: of the "
        "random weights (finetune: and of training) (default 0)",
    )
    p.add_argument(
        "--preset",
        default="small",
        help="train, zeroshot, finetune: model preset (shape) of both models (default small)",
    )
    p.add_argument(
        "--seq-len", type=int, default=128, help="train: sequence length cap; finetune: max_length (default 128)"
    )
    p.add_argument(
        "--micro-batch",
        type=int,
        default=16,
        help="train, finetune: sequences per step; zeroshot: rows per forward pass, both sides (default 16)",
    )
    p.add_argument("--warmup", type=int, default=3, help="train: untimed steps per model (default 3)")
    p.add_argument("--steps", type=int, default=20, help="train: timed steps per model (default 20)")
    p.add_argument(
        "--threads", type=int, default=None, help="train, zeroshot, finetune: torch.set_num_threads (default: torch's)"
    )
    p.add_argument("--epochs", type=int, default=3, help="finetune: epochs per timed run (default 3)")
    p.add_argument("--split", default="dev_few_all", help="zeroshot: FewCLUE split file (default dev_few_all)")
    p.add_argument(
        "--tasks",
        default=None,
        help="zeroshot: comma-separated tasks (default: the eight with fixed label words; chid is not compared)",
    )
    p.add_argument("--max-rows", type=int, default=None, help="zeroshot: first N rows per task (default all)")
    p.add_argument(
        "--precision",
        choices=["fp32", "fp16", "bf16"],
        default=None,
        help="train: fp32 on CPU; fp16 or bf16 on a GPU (default bf16 where supported)",
    )
    p.add_argument(
        "--zero-stage", type=int, default=2, choices=[0, 1, 2, 3], help="train: DeepSpeed ZeRO stage (default 2)"
    )
    return p
