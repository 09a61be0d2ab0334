"""Exact resume: a run killed with SIGKILL and resumed matches an uninterrupted run step for step."""

import json
import sys

import pandas as pd
import pytest

from obert_lib import pretraining
from obert_lib.config import ConfigError
from tests.pretraining.kill import run_and_kill

STEPS = {"stages.0.steps": 6, "stages.1.steps": 4, "stages.0.warmup_steps": 1, "stages.1.warmup_steps": 1}


def _plan(corpus_dir, out):
    return pretraining.load_plan("tiny", corpus_dir=str(corpus_dir), output_dir=str(out), **STEPS)


def test_killed_run_resumes_at_the_same_step_with_the_same_losses(sample_corpus, tmp_path):
    corpus_dir = sample_corpus.output_dir
    reference = pretraining.run(_plan(corpus_dir, tmp_path / "reference"), {"checkpoint_every": 2}, progress=False)
    assert list(reference.metrics["global_step"]) == list(range(1, 11))
    with pytest.raises(ConfigError, match="finished every stage; nothing to resume"):
        pretraining.run(_plan(corpus_dir, tmp_path / "reference"), {"checkpoint_every": 2}, progress=False, resume=True)

    out = tmp_path / "killed"
    args = [
        sys.executable,
        "-m",
        "obert_lib.cli",
        "pretrain",
        "--plan",
        "tiny",
        "--output",
        str(out),
        "--set",
        f"corpus_dir={corpus_dir}",
        "--speed",
        "checkpoint_every=2",
    ]
    args += [a for k, v in STEPS.items() for a in ("--set", f"{k}={v}")]
    run_and_kill(args, out, global_step=4)  # kill mid-way through stage 1, after its step-4 point
    point = pretraining.resume_point(out)
    assert point["global_step"] >= 4 and (point["stage"], point["stage_step"]) in ((0, 4), (1, 0), (1, 2))

    with pytest.raises(ConfigError, match="speed.data_parallel_size: the run was started with 1, now 2"):
        pretraining.run(_plan(corpus_dir, out), {"data_parallel_size": 2}, progress=False, resume=True)
    resumed = pretraining.run(_plan(corpus_dir, out), {"checkpoint_every": 2}, progress=False, resume=True)
    assert resumed.status == "finished"
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics["global_step"]) == list(range(1, 11))  # every step exactly once
    diff = (metrics["loss"] - reference.metrics["loss"]).abs().max()
    assert diff < 1e-5, metrics[["global_step", "loss"]].assign(reference=reference.metrics["loss"])
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
