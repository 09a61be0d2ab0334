"""The official KgCLUE evaluation (per-field exact match and character F1 of `S ||| P ||| O` answers).

What the official script does (CLUEbenchmark/KgCLUE, `baselines/evaluate_f1_em.py`, read at commit a6b582e8):
- `normalize(text) = ' '.join(text.lower().split())`: lower-casing and collapsing whitespace (Python's str.split,
  so any Unicode whitespace, the full-width space U+3000 included; leading and trailing whitespace goes too).
  Nothing else is normalised: no punctuation, full-width/half-width or traditional/simplified folding.
- answers are split on ' ||| ' into subject S, predicate P, object O, each normalised;
- per field, EM = exact equality and F1 = `f1_sim(a, b) = 2·LCS(a, b) / (|a| + |b|)` with LCS the longest common
  SUBSEQUENCE (`pylcs.lcs`), and `f1_sim('', '') = 0`;
- EM_All = all three fields equal, F1_All = f1_sim(S+P+O, S'+P'+O') of the concatenated fields;
- every metric averaged over the rows, and EMF1 = 0.5·EM_O + 0.5·F1_O (the leaderboard score), printed ×100.

Where this module differs, on purpose:
- predictions are aligned to gold by id, not by line order: a gold id without a prediction scores 0 on every
  metric (counted as `missing`), a prediction whose id is not in gold is ignored (counted as `extra`);
- an empty or malformed prediction (anything that does not split into exactly three fields) scores 0 instead of
  crashing (counted as `malformed`); fields are split on '|||' and stripped, so 'a|||b|||c' reads like
  'a ||| b ||| c';
- metrics are fractions in [0, 1]; multiply by 100 for the leaderboard's figures (83.9 = 0.839).
LCS is a plain dynamic programme (O(|a|·|b|) time, O(|b|) memory), fine for answers of a few dozen characters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from ..config import DataError
from ..jsonlines import json_objects

FIELDS = ("S", "P", "O")
SEPARATOR = "|||"


def normalize(text: str) -> str:
    """Lower-cased, whitespace runs collapsed to one space, stripped (the official `normalize`)."""
    return " ".join(text.lower().split())


def parse_answer(text) -> tuple[str, str, str] | None:
    """(subject, predicate, object), each normalised, or None for anything that is not exactly three
    '|||'-separated fields (None, a non-string, empty text, two or four fields)."""
    if not isinstance(text, str) or not text.strip():
        return None
    parts = text.split(SEPARATOR)
    if len(parts) != 3:
        return None
    s, p, o = (normalize(part) for part in parts)
    return s, p, o


def lcs_length(a: str, b: str) -> int:
    """Length of the longest common subsequence of `a` and `b` (characters need not be contiguous)."""
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for ch in a:
        cur = [0]
        for j, other in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if ch == other else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def lcs_f1(a: str, b: str) -> float:
    """Character F1 = 2·LCS(a, b) / (|a| + |b|); 0.0 when both are empty (as the official `f1_sim`)."""
    if not a and not b:
        return 0.0
    return 2.0 * lcs_length(a, b) / (len(a) + len(b))


def _keyed(answers: Mapping, what: str) -> dict[str, object]:
    """Answers keyed by str(id), so 7 and "7" align; DataError when two ids collide that way."""
    out: dict[str, object] = {}
    original: dict[str, object] = {}
    for key, value in answers.items():
        if str(key) in out:
            first = original[str(key)]
            raise DataError(f"{what}: ids {first!r} and {key!r} are the same id as text; keep one of them")
        out[str(key)], original[str(key)] = value, key
    return out


def evaluate(gold: Mapping, pred: Mapping) -> dict:
    """KgCLUE metrics of predictions `pred` {id: 'S ||| P ||| O'} against `gold` {id: 'S ||| P ||| O'}.

    Returns fractions: EM_S, EM_P, EM_O, EM_All, F1_S, F1_P, F1_O, F1_All, EMF1 (= `score` = 0.5·EM_O + 0.5·F1_O),
    and counts: n (gold rows), scored (predictions found and well-formed), missing, malformed, extra.
    A malformed gold answer raises DataError naming its id; an empty gold raises DataError.
    """
    gold_k, pred_k = _keyed(gold, "gold"), _keyed(pred, "predictions")
    if not gold_k:
        raise DataError("gold holds no answers; give the labelled split to evaluate against")
    sums = {f"{m}_{f}": 0.0 for m in ("EM", "F1") for f in (*FIELDS, "All")}
    counts = {"n": len(gold_k), "scored": 0, "missing": 0, "malformed": 0}
    for key, answer in gold_k.items():
        g = parse_answer(answer)
        if g is None:
            raise DataError(f"gold id {key}: answer {answer!r} is not 'entity ||| attribute ||| value'; fix the row")
        if key not in pred_k:
            counts["missing"] += 1
            continue
        p = parse_answer(pred_k[key])
        if p is None:
            counts["malformed"] += 1
            continue
        counts["scored"] += 1
        for name, a, b in zip(FIELDS, p, g):
            sums[f"EM_{name}"] += float(a == b)
            sums[f"F1_{name}"] += lcs_f1(a, b)
        sums["EM_All"] += float(p == g)
        sums["F1_All"] += lcs_f1("".join(p), "".join(g))
    metrics = {k: v / counts["n"] for k, v in sums.items()}
    metrics["EMF1"] = metrics["score"] = 0.5 * metrics["EM_O"] + 0.5 * metrics["F1_O"]
    metrics.update(counts)
    metrics["extra"] = sum(1 for key in pred_k if key not in gold_k)
    return metrics


def read_answers(path: str | Path, *, field: str = "answer") -> dict:
    """{id: answer} from a KgCLUE-style JSON-lines file ({"id", "answer", ...} per line; blank lines skipped).

    A line that is not a JSON object with an "id" raises DataError naming file:line; a repeated id raises
    DataError naming both lines. The answer itself is not checked here (`evaluate` scores a bad one as wrong).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist; give a JSON-lines file of {{'id', '{field}'}} rows")
    out: dict = {}
    seen: dict = {}
    for lineno, row in json_objects(path, f'"id" and "{field}"'):
        where = f"{path}:{lineno}"
        if not isinstance(row.get("id"), (int, str)) or isinstance(row["id"], bool):
            raise DataError(f'{where}: a row needs an integer or text "id"; write {{"id": ..., "{field}": ...}}')
        if row["id"] in seen:
            raise DataError(f"{where}: id {row['id']!r} repeats line {seen[row['id']]}; give each row its own id")
        seen[row["id"]] = lineno
        out[row["id"]] = row.get(field)
    return out
