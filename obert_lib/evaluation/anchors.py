"""Published ZeroCLUE results (accuracy %, the labelled public test split) printed beside every run.

Source: the ZeroCLUE leaderboard and the FewCLUE paper (Xu et al. 2021, table 5): RoBERTa-wwm-ext zero-shot is
the PET baseline this project's protocol reproduces; GPT is NEZHA-Gen; majority class and human as published.
The score is the plain mean of the nine task accuracies, chid included (44.61 = mean of the row below).
"""

from __future__ import annotations

import pandas as pd

TASK_ORDER = ("eprstmt", "csldcp", "tnews", "iflytek", "ocnli", "bustm", "chid", "csl", "cluewsc")

ANCHORS = {
    "RoBERTa-wwm-ext zero-shot": (44.61, (85.2, 12.6, 25.3, 27.7, 40.3, 50.6, 57.6, 52.2, 50.0)),
    "GPT (NEZHA-Gen) zero-shot": (43.36, (57.5, 26.2, 37.0, 19.0, 34.4, 50.0, 65.6, 50.1, 50.3)),
    "majority class": (29.04, (50.0, 1.5, 6.7, 0.8, 38.1, 50.0, 14.3, 50.0, 50.0)),
    "human": (82.50, (90.0, 68.0, 71.0, 66.0, 90.3, 88.0, 87.1, 84.0, 98.0)),
}


def anchor_table() -> pd.DataFrame:
    """The published rows: index = system, columns = score and the nine tasks."""
    rows = {name: {"score": score, **dict(zip(TASK_ORDER, accs))} for name, (score, accs) in ANCHORS.items()}
    return pd.DataFrame.from_dict(rows, orient="index")[["score", *TASK_ORDER]]


def with_anchors(results: dict[str, dict], split: str) -> pd.DataFrame:
    """Runs' accuracies (name -> metrics.json dict) above the anchors; tasks a run did not score stay empty.

    The anchors are test_public numbers: rows scored on another split are labelled with it.
    """
    rows = {}
    for name, metrics in results.items():
        row = {"score": metrics.get("score")}
        row.update({t: m.get("accuracy") for t, m in metrics.get("tasks", {}).items()})
        rows[f"{name} ({split})" if split != "test_public" else name] = row
    ours = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=["score", *TASK_ORDER])
    return pd.concat([ours, anchor_table()]).astype(float).round(2)
