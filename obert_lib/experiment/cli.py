"""`obert experiment run | report FILE`: the experiment file's runs and its report (experiment.runner, .reporting).

Both take the CLI idiom: FILE (or --config FILE), --set KEY=VALUE (dotted keys of the experiment: tokens=16384,
zeroshot.tasks=all), --runtime KEY=VALUE (speed only: workers=2, executor=ray, progress=false,
speed.precision=bf16), which override the file's `runtime:` section.
"""

from __future__ import annotations

import argparse

from ..cli_options import IDIOM, _idiom, _overrides, _runtime_pairs


def _file(args) -> str:
    from ..config import ConfigError

    if args.file and args.config and args.file != args.config:
        raise ConfigError(f"FILE {args.file} and --config {args.config} differ; give the experiment file once")
    path = args.file or args.config
    if not path:
        raise ConfigError("no experiment file; give one, e.g. `obert experiment run configs/experiments/tiny.yaml`")
    return path


def cmd_experiment(args) -> None:
    import pandas as pd

    from .config import load_experiment
    from .reporting import report
    from .runner import run

    cfg, file_runtime = load_experiment(_file(args), **_overrides(args.set or []))
    if args.action == "run":
        from .. import config as cfgmod
        from .config import ExperimentRuntime

        data = cfgmod.apply_overrides(cfgmod.to_dict(file_runtime), _runtime_pairs(args))
        rep = run(cfg, cfgmod.from_dict(ExperimentRuntime, data, prefix="runtime.")).report
    else:
        if args.runtime:
            from ..config import ConfigError

            raise ConfigError("--runtime: `obert experiment report` trains nothing and has no speed-only settings")
        rep = report(cfg)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(rep.table.to_string())
    folder = rep.files[0].parent if rep.files else cfg.output_dir
    print(f"report written to {folder} (results.md, results.csv, comparisons_*.csv, compute.csv, figures/)")
    if rep.missing:
        print(f"not on disk yet ({len(rep.missing)}): {rep.missing[0]}" + (" ..." if len(rep.missing) > 1 else ""))


def add_experiment_parser(add) -> argparse.ArgumentParser:
    """Register `obert experiment` through the main parser's `add(name, func, help)`."""
    p = add(
        "experiment",
        cmd_experiment,
        "Pretraining variants of one base plan, each scored on ZeroCLUE and by a fine-tuning ablation, "
        "compared with intervals and paired tests, from one YAML (configs/experiments/*.yaml).",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="{run,report}")
    helps = {
        "run": "Run what is not done yet (a finished pretraining, zero-shot task or fine-tuning run is never redone; "
        "an interrupted pretraining resumes), then write the report.",
        "report": "Rebuild the report (results.md/.csv, comparisons, compute, figures) from what is on disk.",
    }
    for name, text in helps.items():
        a = actions.add_parser(name, help=text, description=text, epilog=IDIOM)
        a.add_argument("file", nargs="?", help="the experiment YAML (= --config FILE)")
        _idiom(
            a,
            "the experiment YAML (or give it as FILE)",
            "override an experiment key (dotted: tokens=16384, zeroshot.tasks=all)",
            "speed-only setting: workers=2, executor=ray, progress=false, speed.precision=bf16",
        )
    return p
