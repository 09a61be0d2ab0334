"""The notebook layer of a followed run: a progress bar over global steps, the log lines, a live loss plot."""

from __future__ import annotations

import io
import time

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


class FollowView:
    """What RunHandle.follow shows: a tqdm bar over global steps with the last loss, the new train.log lines,
    and (in a notebook, when `live`) the live plot."""

    def __init__(self, name: str, total_steps: int, global_step: int, live: bool, redraw_s: float = 3.0):
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=total_steps or None, initial=global_step, unit="step", desc=f"pretrain {name}", dynamic_ncols=True
        )
        self.plot = _LivePlot(redraw_s) if live and _in_notebook() else None

    def write(self, lines: list[str]) -> None:
        for line in lines:
            self.bar.write(line)

    def update(self, total_steps: int, global_step: int, metrics: pd.DataFrame, done: bool) -> None:
        """Move the bar to the newest step (run.json's or metrics.csv's) and redraw the plot when due."""
        bar = self.bar
        step = max(global_step, int(metrics["global_step"].max()) if len(metrics) else 0)
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
        self.bar.close()
