"""How the corpus steps report their time to datatrove's stats: summed per task, not tracked per document."""

from __future__ import annotations

from datatrove.pipeline.base import PipelineStep


def report_step_time(step: PipelineStep, seconds: float) -> None:
    """Add a step's summed per-document time to datatrove's stats as one figure per task.

    datatrove's track_time() per document costs about 2 µs, more than several of our rules on a short
    paragraph, so the steps sum perf_counter() differences themselves and report once.
    """
    step.stats.time_stats.update(seconds, unit="task")
