"""One task scored zero-shot: every template over every row, the predictions, their accuracy and interval.

Inputs and label words are all built (and checked) by `prepare` before the model runs, so a word outside the
vocabulary or a template that cannot fit stops the run before any scoring.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..config import DataError
from .cloze import ClozeBuilder, task_fields
from .fewclue import row_id, row_label, split_path
from .label_maps import task_labels
from .scoring import (
    CONTENT_FREE,
    calibrate,
    candidate_ids,
    score_inputs,
    slot_log_probs,
    softmax,
    word_ids,
    word_scores,
)
from .statistics import bootstrap_ci
from .templates import FIELDS, Template


@dataclass
class PreparedTemplate:
    template: Template
    builder: ClozeBuilder
    inputs: list[tuple[list[int], list[int]]]  # (ids, slot positions) per scored row
    candidates: list[np.ndarray]  # [n_candidates, n_slots] token ids per scored row
    truncated: int  # rows whose content was cut to fit


@dataclass
class PreparedTask:
    task: str
    rows: list[dict]  # the rows scored (ocnli rows labelled outside its three classes left out)
    skipped: int
    labels: tuple[str, ...]  # label strings; chid: candidate indices
    labelled: bool
    templates: list[PreparedTemplate] = field(default_factory=list)
    unknown_candidates: int = 0  # chid candidates holding [UNK]


def prepare(task, rows, templates, tokenizer, max_length, data_dir, split) -> PreparedTask:
    """Build every template's inputs and candidate ids for `rows`; raises before any model work."""
    labels = task_labels(task, split_path(task, data_dir, split).parent)
    labelled = [r for r in rows if row_label(task, r) is not None]
    if labelled and len(labelled) != len(rows):
        path = split_path(task, data_dir, split)
        raise DataError(
            f"{path}: {len(rows) - len(labelled)} of {len(rows)} rows have no label; a split is either labelled "
            "(accuracy is reported) or not (predictions only)"
        )
    kept = [r for r in rows if not labelled or task == "chid" or row_label(task, r) in labels]
    prepared = PreparedTask(task, kept, len(rows) - len(kept), labels, bool(labelled))
    where = split_path(task, data_dir, split)
    for template in templates:
        builder = ClozeBuilder(tokenizer, template.text, max_length)
        built = [builder.build(task_fields(task, r)) for r in kept]
        if task == "chid":
            candidates = []
            for i, r in enumerate(kept):
                ids, unknown = candidate_ids(tokenizer, r["candidates"], builder.n_slots, f"{where}: row {i + 1}")
                candidates.append(ids)
                prepared.unknown_candidates += unknown if template is templates[0] else 0
        else:
            words = word_ids(tokenizer, template.words, builder.n_slots, task)
            candidates = [words] * len(kept)
        inputs = [(ids, slots) for ids, slots, _ in built]
        truncated = sum(cut for _, _, cut in built)
        prepared.templates.append(PreparedTemplate(template, builder, inputs, candidates, truncated))
    return prepared


def _stack(scores: list[np.ndarray]) -> np.ndarray:
    """Rows of unequal candidate counts (a user's chid data) padded with -inf: [N, C_max]."""
    width = max(len(s) for s in scores)
    out = np.full((len(scores), width), -np.inf)
    for i, s in enumerate(scores):
        out[i, : len(s)] = s
    return out


def content_free_probs(model, tokenizer, task: str, prepared: PreparedTemplate) -> list[np.ndarray]:
    """Per row: the label probabilities a content-free input gives (mean over CONTENT_FREE), [C] each."""
    import torch

    device = next(model.parameters()).device
    logps = []
    for text in CONTENT_FREE:
        ids, slots, _ = prepared.builder.build({name: text for name in FIELDS[task]})
        batch = torch.tensor([ids], device=device)
        logps.append(
            slot_log_probs(model, batch, torch.ones_like(batch), torch.tensor([slots], device=device))[0].cpu().numpy()
        )
    cache: dict[int, np.ndarray] = {}
    out = []
    for cand in prepared.candidates:
        key = id(cand)
        if key not in cache:  # classification rows share one candidate array: compute once
            cache[key] = np.mean([softmax(word_scores(lp, cand)) for lp in logps], axis=0)
        out.append(cache[key])
    return out


def _accuracy(correct: np.ndarray, seed: int) -> dict:
    low, high = bootstrap_ci(correct, seed=seed)
    return {"accuracy": round(100 * float(correct.mean()), 4), "ci95": [round(100 * low, 4), round(100 * high, 4)]}


@dataclass
class TaskOutcome:
    metrics: dict
    predictions: pd.DataFrame  # id, pred: one line per scored row, in the data's order
    scores: pd.DataFrame  # id, gold, pred, correct, (calibrated / ensemble columns), logp per label
    correct: np.ndarray | None  # bool [n], None for an unlabelled split


def evaluate(model, tokenizer, prepared: PreparedTask, batch_size, calibrated, seed, progress) -> TaskOutcome:
    """Score every template of a prepared task; predictions, their accuracy and the extras asked for."""
    task, rows = prepared.task, prepared.rows
    probs, main_scores = [], None
    for k, pt in enumerate(prepared.templates):
        desc = f"{task}" if len(prepared.templates) == 1 else f"{task} {pt.template.name}"
        scores = _stack(score_inputs(model, tokenizer, pt.inputs, pt.candidates, batch_size, progress, desc))
        main_scores = scores if k == 0 else main_scores
        probs.append(softmax(scores))
    label_of = _label_names(prepared)
    pred = probs[0].argmax(1)
    ids = [row_id(r) for r in rows]
    predictions = pd.DataFrame({"id": pd.Series(ids, dtype=object), "pred": label_of(pred)})
    table = {"id": pd.Series(ids, dtype=object)}
    metrics: dict = {"n": len(rows), "skipped": prepared.skipped, "truncated": prepared.templates[0].truncated}
    if task == "chid":
        metrics["unknown_candidates"] = prepared.unknown_candidates
    gold = None
    if prepared.labelled:
        gold = np.array([_gold_index(prepared, r) for r in rows])
        table["gold"] = label_of(gold)
    table["pred"] = label_of(pred)
    correct = None if gold is None else pred == gold
    if correct is not None:
        table["correct"] = correct.astype(int)
        metrics.update(_accuracy(correct, seed))
        metrics["majority"] = round(100 * np.bincount(gold).max() / len(gold), 4)
    else:
        metrics.update(accuracy=None, ci95=None)
    if calibrated:
        p_cf = np.ones_like(probs[0])  # [N, C]; padding candidates (probability 0) divide by 1
        for i, row_cf in enumerate(content_free_probs(model, tokenizer, task, prepared.templates[0])):
            p_cf[i, : len(row_cf)] = row_cf
        cal = calibrate(probs[0], p_cf).argmax(1)
        table["pred_calibrated"] = label_of(cal)
        metrics["calibrated"] = _accuracy(cal == gold, seed) if gold is not None else {"accuracy": None}
    if len(prepared.templates) > 1:
        ensemble = np.mean(probs, axis=0).argmax(1)
        table["pred_ensemble"] = label_of(ensemble)
        if gold is not None:
            metrics["templates"] = {
                pt.template.name: round(100 * float((p.argmax(1) == gold).mean()), 4)
                for pt, p in zip(prepared.templates, probs)
            }
            metrics["ensemble"] = _accuracy(ensemble == gold, seed)
    for j in range(main_scores.shape[1]):
        table[f"logp_{prepared.labels[j] if task != 'chid' else j}"] = main_scores[:, j]
    return TaskOutcome(metrics, predictions, pd.DataFrame(table), correct)


def _gold_index(prepared: PreparedTask, row: dict) -> int:
    label = row_label(prepared.task, row)
    return int(label) if prepared.task == "chid" else prepared.labels.index(label)


def _label_names(prepared: PreparedTask):
    """Index array -> the labels as the data writes them (chid: the answer index)."""
    if prepared.task == "chid":
        return lambda idx: [int(i) for i in idx]
    return lambda idx: [prepared.labels[i] for i in idx]
