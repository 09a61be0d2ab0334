"""Resume of a distillation run, both stages: what a rerun of a config finds in its output folder.

A rerun of the same config continues an unfinished run from its latest resume point and returns a finished
run's result without training again (as `obert finetune` does); a run of another config in the folder is
refused unless `overwrite: true`, which starts afresh. Resume points share pretraining's layout:
`<output_dir>/checkpoints/resume/step-<N>/` and `latest.json` naming the newest (pretraining.resume reads and
checks it, so a pointer out of the run folder is refused). The pretrain stage writes them with
pretraining.resume.save_resume (DeepSpeed's engine state, the RNG states as JSON); the task stage with
finetuning.resume_state.save_resume (the engine's weights and optimiser, the progress, torch's RNG state).
Each run's per-step log (metrics.csv, steps.csv) is cut back to the resume point's step, so every step
appears once. DeepSpeed's and torch's loads read pickled files: resume only runs you trust.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

from .. import config as cfgmod
from ..config import ConfigError
from ..finetuning.resume_state import ResumeState, load_resume, save_resume
from ..pretraining.resume import resume_point
from ..pretraining.run_dir import RunDir, write_json_atomic

FINISHED = "metrics.json"  # written last by both stages: its presence marks a finished run
# settings a resumed run may change: they do not change what is trained
MAY_CHANGE = ("overwrite", "results_table", "pretrain.checkpoint_every", "train.resume_every")


def _comparable(cfg: dict) -> dict:
    flat = cfgmod.flatten(cfg)
    return {k: v for k, v in flat.items() if k not in MAY_CHANGE}


def prior_run(out: Path, cfg) -> str:
    """ "finished" (a finished run of this config: return its result), "resume" (an unfinished one with a resume
    point: continue it) or "fresh" (nothing to continue, or overwrite: start afresh); a run of another config
    is a ConfigError naming the settings that differ. Reads only; writes nothing."""
    if cfg.overwrite:
        return "fresh"
    finished = (out / FINISHED).is_file()
    point = None if finished else resume_point(out)
    if not finished and (point is None or point.get("finished")):
        return "fresh"
    saved = out / "config.json"
    before = _comparable(json.loads(saved.read_text(encoding="utf-8"))) if saved.is_file() else {}
    now = _comparable(cfgmod.to_dict(cfg))
    if before == now:
        return "finished" if finished else "resume"
    differ = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    shown = ", ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in differ[:3])
    more = f" and {len(differ) - 3} more" if len(differ) > 3 else ""
    if finished:
        raise ConfigError(
            f"output_dir: {out} holds a finished distillation run of another config ({shown}{more}); give another "
            "folder or set overwrite=true"
        )
    raise ConfigError(
        f"output_dir: {out} holds an unfinished distillation run of another config ({shown}{more}); rerun that "
        f"config ({saved}) to resume it, give another folder, or set overwrite=true to start again"
    )


def latest(out: Path) -> dict:
    """The latest resume point of `out` ({global_step, path, ...}); prior_run said there is one."""
    point = resume_point(out)
    if point is None:  # removed between the check and now
        raise FileNotFoundError(f"resume: no resume point under {RunDir(out).resume}; rerun to start afresh")
    return point


def remove_points(out: Path) -> None:
    """A finished run needs no resume points (metrics.json, written first, already marks it finished)."""
    shutil.rmtree(RunDir(out).checkpoints, ignore_errors=True)


def save_task_point(out: Path, engine, state: ResumeState) -> Path:
    """The task stage's resume point after optimiser step `state.step`: finetuning's resume point (engine state,
    progress, torch RNG) in checkpoints/resume/step-<N>, then latest.json pointing at it; older points go."""
    root = RunDir(out).resume
    final = save_resume(root / f"step-{state.step}", engine, state)
    write_json_atomic(
        root / "latest.json",
        {"path": final.name, "stage": 0, "stage_step": state.step, "global_step": state.step},
    )
    for old in root.glob("step-*"):
        if old != final and not old.name.endswith(".tmp"):
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_task_point(out: Path, engine) -> ResumeState:
    """Weights, optimiser and torch RNG from the latest task-stage resume point; the progress to continue from."""
    return load_resume(Path(latest(out)["path"]), engine)


class StepLog:
    """A per-step CSV (metrics.csv, steps.csv): rows kept up to a resume point, then one appended and flushed
    per step. Values are written with repr and read back with float(), so a kept row equals the logged one."""

    def __init__(self, path: Path, columns: tuple[str, ...], keep_until: int | None, step_key: str = "step"):
        self.path, self.columns = path, columns
        self.rows: list[dict] = []
        if keep_until is not None and path.is_file():
            with open(path, newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    parsed = {k: _number(row.get(k, "")) for k in columns}
                    if parsed[step_key] is not None and parsed[step_key] <= keep_until:
                        self.rows.append(parsed)
        tmp = path.with_name(path.name + ".tmp")  # the kept rows replace the file at once: a kill loses none
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, columns)
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, path)
        self.fh = open(path, "a", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.fh, columns)

    def append(self, row: dict) -> None:
        self.rows.append(row)
        self.writer.writerow(row)
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()

    def __enter__(self) -> "StepLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _number(text: str):
    if text is None or text == "":
        return None
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def read_step_log(path: Path, columns: tuple[str, ...]) -> list[dict]:
    """Every row of a finished run's per-step CSV, as StepLog keeps them."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: _number(row.get(k, "")) for k in columns} for row in csv.DictReader(fh)]
