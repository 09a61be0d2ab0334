"""The notebook layer of a followed run: a progress bar over global steps, the log lines, a live loss plot."""

from __future__ import annotations

import io
import json
import os
import re
import time
from pathlib import Path

import pandas as pd

from .plots import plot_losses


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (a display can show images), False in scripts and terminal IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class _LivePlot:
    """Loss and tokens/s in the cell's output, replaced in place (an IPython display handle) every `every_s` s."""

    def __init__(self, every_s: float = 3.0):
        from ..reports import setup_cjk_font

        setup_cjk_font()
        self.every_s, self.handle, self.last, self.rows = every_s, None, 0.0, -1

    def update(self, metrics: pd.DataFrame, force: bool = False) -> None:
        from IPython.display import Image, display

        if metrics.empty or "loss" not in metrics or len(metrics) == self.rows:
            return
        if not force and time.monotonic() - self.last < self.every_s:
            return
        buf = io.BytesIO()
        plot_losses(metrics, right="tokens_per_s", pyplot=False).savefig(buf, format="png", dpi=80)
        image = Image(data=buf.getvalue(), format="png")
        if self.handle is None:
            self.handle = display(image, display_id=True)
        else:
            self.handle.update(image)
        self.last, self.rows = time.monotonic(), len(metrics)


# DeepSpeed's own notes in the child's output ("[2026-...] [WARNING] [real_accelerator.py...] Setting accelerator to
# CPU", op builds): kept in train.log, left out of the cell
_DEEPSPEED_NOISE = re.compile(
    r"^\[\d{4}-\d\d-\d\d [\d:,]+\] \[(?:DEBUG|INFO|WARNING)\]|^DeepSpeed .* built successfully"
)
STARTING = (
    "the first step waits for the trainer to start (DeepSpeed initialises and builds its ops: about a minute on CPU)"
)


def summary_line(summary: dict) -> str:
    """`obert pretrain`'s JSON summary as one line: status, steps, final loss, parameters, checkpoint folders."""
    parts = [str(summary.get("status", "?")), f"{summary.get('steps', 0)} steps"]
    if summary.get("final_loss") is not None:
        parts.append(f"final loss {summary['final_loss']:.3f}")
    if summary.get("parameters"):
        parts.append(f"{summary['parameters']:,} parameters")
    checkpoints = [Path(p) for p in summary.get("checkpoints", [])]
    if checkpoints:
        parts.append(f"checkpoints {', '.join(p.name for p in checkpoints)} in {checkpoints[0].parent}")
    if summary.get("message"):
        parts.append(str(summary["message"]))
    return "pretraining " + " · ".join(parts)


class LogFilter:
    """The child's log lines as the cell shows them: DeepSpeed's notes left out, the JSON summary as one line."""

    def __init__(self):
        self.json: list[str] | None = None  # the lines of a JSON object being read

    def __call__(self, lines: list[str]) -> list[str]:
        out = []
        for line in lines:
            if self.json is not None:
                self.json.append(line)
                if line.rstrip() == "}":
                    text, self.json = "\n".join(self.json), None
                    try:
                        out.append(summary_line(json.loads(text)))
                    except (ValueError, TypeError, AttributeError):
                        out.extend(text.splitlines())
            elif line.rstrip() == "{":
                self.json = [line]
            elif not _DEEPSPEED_NOISE.search(line):
                out.append(line)
        return out


class _Status:
    """Before the first step: one line saying what the run is doing and for how long, replaced in place in a
    notebook (printed when it changes elsewhere), instead of a progress bar standing at 0."""

    def __init__(self, notebook: bool):
        self.notebook, self.start, self.handle, self.last = notebook, time.monotonic(), None, None
        self.doing = "starting the trainer"  # then the last log line before the first step
        self.done = False

    def show(self) -> None:
        text = self.doing if self.done else f"{self.doing} · {time.monotonic() - self.start:.0f} s · {STARTING}"
        if self.notebook:
            from IPython.display import display

            data = {"text/plain": text}
            if self.handle is None:
                self.handle = display(data, raw=True, display_id=True)
            else:
                self.handle.update(data, raw=True)
        elif self.doing != self.last:
            print(text, flush=True)
        self.last = self.doing

    def started(self) -> None:
        if self.last is None:  # never shown (a run that was already going or done): nothing to close
            return
        self.doing, self.done = f"trainer started after {time.monotonic() - self.start:.0f} s", True
        if self.notebook:  # the line in place says so; a terminal has the bar below its earlier lines
            self.show()


class FollowView:
    """What RunHandle.follow shows: a status line until the first step, then a tqdm bar over global steps with the
    last loss; the new train.log lines (DeepSpeed's notes left out, the summary as one line); and (in a notebook,
    when `live`) the live plot."""

    def __init__(self, name: str, total_steps: int, global_step: int, live: bool, redraw_s: float = 3.0):
        self.name, self.total, self.initial = name, total_steps, global_step
        self.bar = None  # created at the first step: until then the status line says what is happening
        self.status = _Status(_in_notebook())
        self.filter = LogFilter()
        self.plot = _LivePlot(redraw_s) if live and _in_notebook() else None

    def _make_bar(self):
        from tqdm.auto import tqdm

        self.status.started()
        desc = self.name if "pretrain" in self.name else f"pretrain {self.name}"  # not "pretrain pretrain"
        self.bar = tqdm(total=self.total or None, initial=self.initial, unit="step", desc=desc, dynamic_ncols=True)
        return self.bar

    def write(self, lines: list[str]) -> None:
        lines = self.filter(lines)
        if lines and self.bar is None:
            self.status.doing = lines[-1].strip()[:120] or self.status.doing
        for line in lines:
            if self.bar is not None:
                self.bar.write(line)
            else:
                print(line, flush=True)

    def update(self, total_steps: int, global_step: int, metrics: pd.DataFrame, done: bool) -> None:
        """Move the bar to the newest step (run.json's or metrics.csv's) and redraw the plot when due; before the
        first step, refresh the status line instead."""
        step = max(global_step, int(metrics["global_step"].max()) if len(metrics) else 0)
        self.total = total_steps or self.total
        if self.bar is None:
            if step <= self.initial and not done:
                self.status.show()
                return
            self._make_bar()
        bar = self.bar
        if total_steps and bar.total != total_steps:
            bar.total = total_steps
        if step != bar.n:
            bar.n = step
            if len(metrics) and "loss" in metrics:
                row = metrics.iloc[-1]
                postfix = {"stage": row.get("stage_name", ""), "loss": f"{row['loss']:.3f}"}
                if "tokens_per_s" in row:
                    postfix["tok/s"] = f"{row['tokens_per_s']:.0f}"
                bar.set_postfix(postfix, refresh=False)
            bar.refresh()
        self.redraw(metrics, force=done)

    def redraw(self, metrics: pd.DataFrame, force: bool = False) -> None:
        if self.plot is not None:
            self.plot.update(metrics, force=force)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class RunSummary(str):
    """A run's outcome as one readable line (a str that a notebook shows without quotes)."""

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(str(self))


def run_summary(handle) -> RunSummary:
    """`handle`'s run in one line: status, steps, stages, final loss, where its checkpoints are (relative paths)."""
    state = handle.status()
    parts = [state.status, f"step {state.global_step}/{state.total_steps}"]
    metrics = handle.metrics()
    if len(metrics) and "loss" in metrics:
        parts.append(f"final loss {metrics['loss'].iloc[-1]:.3f}")
    checkpoints = handle.checkpoints()
    if checkpoints:
        where = _short_path(checkpoints[0].parent)
        parts.append(f"checkpoints {', '.join(p.name for p in checkpoints)} in {where}")
    if state.message and state.status != "finished":  # why it stopped; a finished run's note repeats the above
        parts.append(state.message)
    return RunSummary(" · ".join(parts))


def _short_path(path: Path) -> str:
    """The shorter of `path` relative to the working directory and absolute (../runs/demo/... in a notebook)."""
    where = str(path)
    relative = os.path.relpath(where)
    return relative if len(relative) < len(where) else where


def checkpoint_table(handle) -> pd.DataFrame:
    """`handle`'s completed stage checkpoints, one row each: stage folder, path (as short as run_summary's),
    files and size in MiB."""
    rows = []
    for path in handle.checkpoints():
        files = [f for f in path.rglob("*") if f.is_file()]
        size_mib = sum(f.stat().st_size for f in files) / 2**20
        rows.append(
            {"checkpoint": path.name, "path": _short_path(path), "files": len(files), "MiB": round(size_mib, 1)}
        )
    return pd.DataFrame(rows, columns=["checkpoint", "path", "files", "MiB"])
