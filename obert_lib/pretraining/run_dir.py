"""The run-directory protocol: which file of a pretraining output folder says what, and how each is written and read.

The trainer writes the folder and the launcher and RunHandle read it (nothing else is shared between them):

    run.json            status (running/finished/interrupted/failed/diverged), pid, host, global_step,
                        total_steps, stage; rank 0 replaces it atomically after every step
    metrics.csv         one row per optimiser step (METRIC_COLUMNS, then a multi-task run's per-task
                        columns), appended and flushed at once
    plan.json, speed.json   the resolved plan and speed settings the run was started with
    run.lock            held by the training run for its life (run_lock.RunLock)
    tensorboard/        TensorBoard events (rank 0)
    checkpoints/stage-<i>-<name>/      a completed stage (HF weights, tokenizer, DeepSpeed state); built in
                                       `<name>.tmp` and renamed, so a folder without `.tmp` is complete
    checkpoints/resume/step-<N>/, checkpoints/resume/latest.json   resume points (see resume.py)
    train.log, launch.json, launch_plan.yaml   written by pretraining.launch (the subprocess's output, the
                                       launcher's pid and command, the plan it was started with)

Every JSON file is written to a temp file and renamed (os.replace), so a reader never sees half of one.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import socket
import time
from pathlib import Path

import pandas as pd

METRIC_COLUMNS = [
    "global_step",
    "stage",
    "stage_name",
    "stage_step",
    "seq_len",
    "global_batch",
    "strategy",
    "loss",
    "mlm_accuracy",
    "lr",
    "tokens",
    "tokens_per_s",
    "loss_scale",
    "mfu",
]
_PROGRESS_BAR = re.compile(r"\d+%\|.*\|\s*\d+/\d+")  # a tqdm bar redrawn with '\r' in the log


class RunDir:
    """The paths of one output folder, and the reads that several modules need."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.run_json = self.root / "run.json"
        self.metrics_csv = self.root / "metrics.csv"
        self.plan_json, self.speed_json = self.root / "plan.json", self.root / "speed.json"
        self.lock = self.root / "run.lock"
        self.tensorboard = self.root / "tensorboard"
        self.train_log, self.launch_json, self.launch_plan = (
            self.root / "train.log",
            self.root / "launch.json",
            self.root / "launch_plan.yaml",
        )
        self.checkpoints = self.root / "checkpoints"
        self.resume = self.checkpoints / "resume"
        self.latest_json = self.resume / "latest.json"

    def stage_checkpoint(self, index: int, name: str) -> Path:
        """The folder of stage `index` (0-based) named `name`: checkpoints/stage-<index + 1>-<name>."""
        return self.checkpoints / f"stage-{index + 1}-{name}"

    def stage_checkpoints(self) -> list[Path]:
        """Completed stage checkpoints (not a .tmp, with a config.json), in stage order."""
        stages = [
            p for p in self.checkpoints.glob("stage-*") if not p.name.endswith(".tmp") and (p / "config.json").is_file()
        ]
        return sorted(stages, key=lambda p: int(p.name.split("-")[1]))

    def resume_points(self) -> list[Path]:
        """Completed resume-point folders (step-N, not a .tmp)."""
        return [p for p in self.resume.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp")]

    def run_status(self) -> dict | None:
        """run.json, or None when it is missing or unreadable."""
        return read_json(self.run_json)

    def launch_info(self) -> dict:
        """launch.json ({} when the run was not started by pretraining.launch)."""
        return read_json(self.launch_json) or {}

    def log_tail(self, n: int = 15) -> tuple[str, ...]:
        """The last `n` lines of train.log (a tqdm bar: its last state)."""
        try:
            with open(self.train_log, "rb") as fh:
                fh.seek(max(0, fh.seek(0, os.SEEK_END) - 64_000))  # 64 kB hold far more than n lines
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ()
        return tuple(log_lines(text, keep_bars=True)[-n:])

    def reset(self, keep_until_step: int | None) -> list[dict]:
        """Rank 0, before training: keep the metrics up to a resume point's step, or clear an earlier run's files.

        Returns the metric rows kept (none for a fresh run).
        """
        if keep_until_step is not None and self.metrics_csv.exists():  # drop the rows after the resume point
            kept = pd.read_csv(self.metrics_csv)
            kept = kept[kept["global_step"] <= keep_until_step]
            tmp = self.metrics_csv.with_name(self.metrics_csv.name + ".tmp")
            kept.to_csv(tmp, index=False)
            os.replace(tmp, self.metrics_csv)  # a new file: live readers start over
            return kept.to_dict("records")
        if keep_until_step is None:  # a fresh run: nothing of an earlier run in this directory may mix into it
            if self.resume.exists() or self.metrics_csv.exists():
                logging.getLogger(__name__).warning(
                    "starting afresh in %s: removing the earlier run's metrics, resume points and TensorBoard events "
                    "(resume=True continues it instead)",
                    self.root,
                )
            self.metrics_csv.unlink(missing_ok=True)
            shutil.rmtree(self.resume, ignore_errors=True)
            shutil.rmtree(self.tensorboard, ignore_errors=True)
        return []

    def append_metrics(self, record: dict) -> None:
        """One row per optimiser step, flushed at once (a live view or a resumed run reads it): METRIC_COLUMNS,
        then a multi-task run's loss/<task>, weight/<task>, log_var/<task> and loss/total (pretraining.aux_tasks)."""
        new = not self.metrics_csv.exists()
        columns = METRIC_COLUMNS + [k for k in record if k not in METRIC_COLUMNS]
        with open(self.metrics_csv, "a", encoding="utf-8") as fh:
            pd.DataFrame([record], columns=columns).to_csv(fh, header=new, index=False)


def latest_checkpoint(output_dir: str | Path) -> Path:
    """The last completed stage checkpoint of a pretraining output directory."""
    stages = RunDir(output_dir).stage_checkpoints()
    if not stages:
        raise FileNotFoundError(f"no completed stage checkpoint under {output_dir}/checkpoints: run pretraining first")
    return stages[-1]


def now() -> str:
    """Local time as run.json and launch.json record it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def write_json_atomic(path: Path, data: dict) -> None:
    """`data` as JSON at `path`, through a temp file and os.replace (a reader sees the old or the new file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    """A JSON object from `path`; None when missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def file_id(path: Path) -> list[int] | None:
    """(inode, mtime in ns): changes whenever the trainer replaces the file (temp file + rename)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_ino, st.st_mtime_ns]


def log_lines(text: str, keep_bars: bool) -> list[str]:
    """Complete log lines; of a tqdm bar redrawn with '\\r' only its last state, or nothing unless keep_bars."""
    out = []
    for line in text.split("\n"):
        parts = [p for p in line.split("\r") if p.strip()]
        if not parts:
            continue
        last = parts[-1].rstrip()
        if keep_bars or not _PROGRESS_BAR.search(last):
            out.append(last)
    return out


class RunStatus:
    """run.json as the trainer keeps it: pid, status, progress; only rank 0 (`enabled`) writes the file."""

    def __init__(self, run_dir: RunDir, total_steps: int, enabled: bool):
        self.path, self.enabled = run_dir.run_json, enabled
        self.data = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "status": "running",
            "global_step": 0,
            "total_steps": total_steps,
            "stage": 0,
            "started": now(),
            "message": "",
        }

    def update(self, **fields) -> None:
        self.data.update(fields, updated=now())
        if self.enabled:
            write_json_atomic(self.path, self.data)


class MetricsReader:
    """metrics.csv read incrementally: only complete new lines are parsed on each call."""

    def __init__(self, path: Path):
        self.path = path
        self._reset()

    def _reset(self, inode: int | None = None) -> None:
        self.offset, self.header, self.frame, self.inode = 0, None, pd.DataFrame(), inode

    def read(self) -> pd.DataFrame:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._reset()
            return self.frame
        size = stat.st_size
        # replaced (a resume writes a new file without the rows after its resume point) or truncated: start over
        if stat.st_ino != self.inode or size < self.offset:
            self._reset(stat.st_ino)
        if size > self.offset:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read(size - self.offset)
            end = chunk.rfind(b"\n")
            if end >= 0:
                self.offset += end + 1
                lines = [line for line in chunk[: end + 1].decode("utf-8", "replace").splitlines() if line.strip()]
                if self.header is None and lines:
                    self.header = lines.pop(0)
                lines = [line for line in lines if line != self.header]
                if lines:
                    new = pd.read_csv(io.StringIO("\n".join([self.header, *lines])))
                    self.frame = new if self.frame.empty else pd.concat([self.frame, new], ignore_index=True)
        if self.frame.empty and self.header:
            return pd.DataFrame(columns=self.header.split(","))
        if "global_step" in self.frame:
            return self.frame.drop_duplicates("global_step", keep="last").reset_index(drop=True)
        return self.frame


class LogReader:
    """New complete lines of train.log since the last call, tqdm bars left out (the follow view's log lines)."""

    def __init__(self, path: Path, offset: int | None = None):
        self.path, self.offset = path, offset  # offset None: start at the end of the file as it is now

    def new_lines(self) -> list[str]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if self.offset is None or size < self.offset:
            self.offset = size
            return []
        if size == self.offset:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read(size - self.offset)
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        return log_lines(chunk[:end].decode("utf-8", "replace"), keep_bars=False)


class _NoBoard:
    def add_scalar(self, *args, **kwargs) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def board(run_dir: RunDir, rank: int, purge_step: int | None = None):
    """A TensorBoard writer on rank 0 (`tensorboard --logdir <output_dir>/tensorboard`); others write nothing.

    purge_step: on resume, TensorBoard hides what a killed run logged from that step on.
    """
    if rank != 0:
        return _NoBoard()
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(run_dir.tensorboard), flush_secs=10, purge_step=purge_step)
