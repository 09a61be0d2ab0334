"""ZeroCLUE submission files: one `<task>_predict.json` per task, zipped, as the CLUE leaderboard reads them.

Each line is `{"id": <the row's id>, "label": <the label as the data writes it>}` (chid: `{"id", "answer"}`);
file names follow the FewCLUE submission example (the few-shot variants carry an `f`).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd

from ..results import write_text_atomic

SUBMISSION_FILES = {
    "bustm": "bustm_predict.json",
    "chid": "chidf_predict.json",
    "cluewsc": "cluewscf_predict.json",
    "csldcp": "csldcp_predict.json",
    "csl": "cslf_predict.json",
    "eprstmt": "eprstmt_predict.json",
    "iflytek": "iflytekf_predict.json",
    "ocnli": "ocnlif_predict.json",
    "tnews": "tnewsf_predict.json",
}


def submission_lines(task: str, predictions: pd.DataFrame) -> str:
    """JSON lines of one task's predictions (columns id, pred; chid answers as integers)."""
    key = "answer" if task == "chid" else "label"
    lines = []
    for row_id, pred in zip(predictions["id"], predictions["pred"]):
        value = int(pred) if task == "chid" else str(pred)
        lines.append(json.dumps({"id": _plain(row_id), key: value}, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def _plain(value):
    """numpy scalars from a DataFrame as plain JSON numbers; strings stay strings."""
    return value.item() if hasattr(value, "item") else value


def write_submission(output: Path, predictions: dict[str, pd.DataFrame]) -> Path:
    """Write <output>/submission/<file> per task and <output>/zeroclue_submission.zip holding them."""
    folder = output / "submission"
    folder.mkdir(parents=True, exist_ok=True)
    for task, frame in predictions.items():
        write_text_atomic(folder / SUBMISSION_FILES[task], submission_lines(task, frame))
    archive = output / "zeroclue_submission.zip"
    tmp = archive.with_name(f".{archive.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.glob("*_predict.json")):
            zf.write(path, path.name)
    tmp.replace(archive)
    return archive
