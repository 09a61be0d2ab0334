"""`obert` command line: one thin subcommand per stage over the library's run() functions."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from .cli_bench import add_bench_parser
from .cli_options import IDIOM, _idiom, _option_settings, _overrides, _print, _runtime_pairs, _source, _yaml_mapping
from .experiment.cli import add_experiment_parser
from .kbqa.cli import add_kbqa_parser
from .serving import add_serve_parser


def cmd_preprocess(args) -> None:
    from . import corpus

    cfg = corpus.load_config(args.config or "default", **_overrides(args.set or []))
    if args.input:
        cfg.inputs = args.input
    if args.output:
        cfg.output_dir = args.output
    runtime: dict[str, Any] = {}
    if args.runtime_config:
        runtime.update(_yaml_mapping(args.runtime_config, "runtime config"))
    runtime.update(_runtime_pairs(args))
    if args.executor:
        runtime["executor"] = args.executor
    if args.workers is not None:
        if args.workers < 1:
            from .config import ConfigError

            raise ConfigError(f"--workers {args.workers}: must be >= 1 (worker processes); e.g. --workers 2")
        runtime["workers"] = args.workers
    result = corpus.run(cfg, runtime)
    _print(
        result.stats if result.stats is not None else {"submitted": "slurm jobs", "output_dir": str(result.output_dir)}
    )


def cmd_mask(args) -> None:
    from .config import UserError, load
    from .masking import MaskConfig, MaskPreviewer, parse_mixture

    _option_settings(args, "--runtime", ())
    if not args.text.strip():
        raise UserError("--text is empty; give the paragraph to mask, e.g. --text '北京是中国的首都。'")
    flags = {
        "strategy": args.strategy,
        "mixture": parse_mixture(args.mixture) if args.mixture else {},
        "mask_rate": args.mask_rate,
        "synonym.enabled": args.synonym,
        "synonym.rate": args.synonym_rate,
        "knowledge.enabled": args.knowledge,
    }
    sets = _overrides(args.set or [])
    if args.synonym and args.synonym_rate is None and "synonym.rate" not in sets:
        flags["synonym.rate"] = 1.0  # --synonym alone shows every masked word that has a synonym as one
    given = {k: v for k, v in flags.items() if v not in (None, {})}  # flags left out keep --config's or the default
    cfg = load(MaskConfig, _yaml_mapping(args.config, "config") if args.config else None, **{**sets, **given})
    view = MaskPreviewer.from_corpus(args.corpus).mask(args.text, cfg, seed=args.seed)
    print(" ".join(f"[{s}]" if m else t for t, s, m in zip(view.tokens, view.shown, view.masked)))
    if view.knowledge_parts:
        names = ", ".join(f"{name} ({i})" for i, name in view.knowledge_entries)
        note = "  (…: summary cut at a sentence or word boundary to fit the budget)" if any(view.knowledge_cut) else ""
        print(f"K_w [{names}]: {view.knowledge_text()}{note}")
    print(
        f"masked {sum(view.masked)}/{len(view.masked)} tokens ({view.realised_rate:.1%}) "
        f"with strategy {view.strategy}; " + ", ".join(f"{k} {n}" for k, n in view.counts().items() if n)
    )


def cmd_pretrain(args) -> int:
    from . import pretraining
    from .config import apply_overrides

    cfg = pretraining.load_plan(args.config, **_overrides(args.set or []))
    if args.output:
        cfg.output_dir = args.output
    speed = apply_overrides({}, _runtime_pairs(args))
    try:
        result = pretraining.run(cfg, speed, resume=args.resume)
    except pretraining.TrainingDiverged as exc:  # a training outcome, not a bug: its message says the step and fixes
        print(f"obert pretrain: diverged: {exc}", file=sys.stderr)
        return pretraining.EXIT_DIVERGED
    metrics = result.metrics
    summary = {
        "status": result.status,
        "checkpoints": [str(p) for p in result.checkpoints],
        "parameters": result.parameters,
        "steps": int(metrics["global_step"].max()) if len(metrics) else 0,
        "final_loss": float(metrics["loss"].iloc[-1]) if len(metrics) else None,
    }
    if result.status != "interrupted":
        _print(summary)
        return 0
    point = pretraining.resume_point(result.output_dir)
    resumable = point is not None and not point.get("finished")
    summary["message"] = (
        f"interrupted, resume with --resume (from step {point['global_step']})"
        if resumable
        else "interrupted before the first resume point; start again without --resume"
    )
    _print(summary)
    print(f"obert pretrain: {summary['message']}", file=sys.stderr)
    return pretraining.EXIT_INTERRUPTED


def _progress(args) -> bool:
    """zeroshot/finetune's one speed-only setting: --runtime progress=false hides the progress bars."""
    from .config import require

    runtime = {"progress": True}
    _option_settings(args, "--runtime", tuple(runtime))
    progress = getattr(args, "progress", True)
    require(isinstance(progress, bool), "--runtime progress", f"expected true/false, got {progress!r}")
    return progress


ZEROSHOT_FLAGS = {
    "checkpoint": "checkpoint",
    "data_dir": "data_dir",
    "split": "split",
    "tasks": "tasks",
    "output": "output_dir",
}


def cmd_zeroshot(args) -> None:
    from . import evaluation

    progress = _progress(args)
    source = _source(args)
    source.update({key: getattr(args, flag) for flag, key in ZEROSHOT_FLAGS.items() if getattr(args, flag)})
    result = evaluation.run(source, progress=progress)
    with _pd_display():
        print(result.table().to_string(na_rep="-"))
    print(f"written to {result.output_dir} (metrics.json, <task>/predictions.csv)")


def _pd_display():
    import pandas as pd

    return pd.option_context("display.width", 200, "display.max_columns", 20)


def cmd_finetune(args) -> None:
    from . import finetuning

    progress = _progress(args)
    _print(finetuning.run(_source(args), progress=progress).metrics)


def cmd_distill(args) -> None:
    from . import distill

    progress = _progress(args)
    _print(distill.run(_source(args), progress=progress).metrics)


def cmd_demo(args) -> None:
    from . import demo

    _option_settings(args, "--set", ("output",))
    _option_settings(args, "--runtime", ())
    for path in demo.run(args.output, args.profile, args.only):
        print(path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="obert", description="OBERT research environment: one subcommand per stage.", epilog=IDIOM
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=IDIOM)
        p.set_defaults(func=func)
        return p

    p = add(
        "preprocess",
        cmd_preprocess,
        "Clean, deduplicate, annotate and tokenise a corpus into Parquet shards (datatrove).",
    )
    _idiom(
        p,
        "preset name ('default', 'web') or a YAML config file",
        "override a config key (dotted)",
        "speed-only setting (workers=2, tasks=8, executor=slurm, slurm_partition=cpu)",
    )
    p.add_argument(
        "--input",
        nargs="+",
        help=(
            "input files or folders: JSONL, Parquet or text (plain/gzip/zstd), WARC/WET files or folders of HTML "
            "pages (default: the embedded sample corpus)"
        ),
    )
    p.add_argument("--output", help="output directory")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="= --runtime workers=N: worker processes (local) or concurrent Ray tasks (default 1)",
    )
    p.add_argument(
        "--executor", choices=["local", "ray", "slurm"], default=None, help="= --runtime executor=...; default: local"
    )
    p.add_argument("--runtime-config", help="YAML of speed-only settings (e.g. env/cluster/preprocess_slurm.yaml)")
    add_bench_parser(add)
    add_kbqa_parser(add)
    p = add("mask", cmd_mask, "Show how a strategy masks a text, with a corpus stage's tokenizer and KB.")
    _idiom(
        p,
        "YAML file of MaskConfig keys (the `mask:` section of a plan stage)",
        "override a MaskConfig key (mask_rate=0.2, synonym.enabled=true, knowledge.max_entries=1)",
        "none: masking a text has no speed-only settings",
    )
    p.add_argument("--corpus", required=True, help="corpus output directory (from `obert preprocess`)")
    p.add_argument("--text", required=True)
    p.add_argument(
        "--strategy", default=None, help="= --set strategy=...: char, word (default), entity, keyword, phrase or clause"
    )
    p.add_argument("--mixture", help="weighted strategies instead, e.g. 'word:0.5,clause:0.5' (one drawn per text)")
    p.add_argument("--mask-rate", type=float, default=None, help="= --set mask_rate=... (default 0.15)")
    p.add_argument(
        "--synonym",
        action="store_true",
        default=None,
        help="show masked words with a lexicon synonym as it (= --set synonym.enabled=true)",
    )
    p.add_argument(
        "--synonym-rate",
        type=float,
        default=None,
        help="share of such words shown as a synonym (= --set synonym.rate=...; default 1.0 here)",
    )
    p.add_argument(
        "--knowledge",
        action="store_true",
        default=None,
        help="append the linked entities' summaries as K_w (= --set knowledge.enabled=true)",
    )
    p.add_argument("--seed", type=int, default=0, help="an integer >= 0; the same seed gives the same masks")
    p = add("pretrain", cmd_pretrain, "Run a staged pretraining plan through DeepSpeed.")
    p.epilog = (
        "exit status: 0 finished every stage; 2 a mistake in the plan, paths or flags (one line says which), "
        "or --output in use by a live run; 3 interrupted (SIGINT/SIGTERM): continue with --resume; "
        "4 diverged (NaN/inf loss or fp16 loss scale at its floor; the message names the step and the "
        "fixes, the last checkpoint is intact); 1 a failed run or a bug (traceback). " + IDIOM
    )
    _idiom(
        p,
        "plan preset name or plan YAML (--plan is the same flag; default tiny)",
        "override a plan key (stages.0.steps=5)",
        "speed-only setting (zero_stage=3, precision=fp16; --speed is the same flag)",
        config_aliases=("--plan",),
        config_default="tiny",
        runtime_aliases=("--speed",),
    )
    p.add_argument("--output", help="output directory")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the stopped or killed run in --output from its latest resume point",
    )
    p = add(
        "zeroshot",
        cmd_zeroshot,
        "Score a masked-LM checkpoint zero-shot on the nine FewCLUE tasks with the ZeroCLUE PET protocol; "
        "prints the accuracies beside the published anchors.",
    )
    _idiom(p, "YAML config file", "override a config key (dotted)", "speed-only setting: progress=false")
    p.add_argument("--checkpoint", help="= --set checkpoint=DIR: ours or a BertForMaskedLM (bert-base-chinese layout)")
    p.add_argument("--data-dir", help="= --set data_dir=DIR: folder of <task>/<split>.json (shared:fewclue)")
    p.add_argument("--split", help="= --set split=NAME: dev_0, dev_few_all, test_public, test (predictions only)")
    p.add_argument("--tasks", help="= --set tasks=...: 'all' (default) or names, e.g. eprstmt,bustm")
    p.add_argument("--output", help="= --set output_dir=DIR: writes metrics.json and <task>/predictions.csv")
    p = add(
        "finetune",
        cmd_finetune,
        "Fine-tune a checkpoint from one YAML (data, model, tricks, train) on FewCLUE, KgCLUE NER, CoNLL or own data.",
    )
    _idiom(p, "YAML config file", "override a config key (dotted)", "speed-only setting: progress=false")
    p = add(
        "distill",
        cmd_distill,
        "Distil a teacher into a smaller student (the teacher truncated to k layers, a preset or a smaller "
        "checkpoint): stage task, a fine-tuned teacher's logit KD mixed with the hard labels; stage pretrain, "
        "MLM-logit KD and hidden-state MSE on a corpus.",
    )
    _idiom(p, "YAML config file", "override a config key (dotted)", "speed-only setting: progress=false")
    p = add("demo", cmd_demo, "Execute every notebook in order on the sample data (the README's main job).")
    _idiom(
        p,
        "profile: demo (default) or tiny (--profile is the same flag)",
        "output=DIR",
        "none: the profile sets the notebooks' sizes",
        config_aliases=("--profile",),
        config_dest="profile",
        config_default="demo",
    )
    p.add_argument("--output", default="build/demo")
    p.add_argument("--only", nargs="*", help="run only notebooks whose name starts with these prefixes")
    add_serve_parser(add)
    add_experiment_parser(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .config import UserError

    try:
        status = args.func(args)
    except (UserError, FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        message = " ".join(str(exc).split())  # one line, whatever the message holds
        print(f"obert {args.command}: error: {message}", file=sys.stderr)
        return 2
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
