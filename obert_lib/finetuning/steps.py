"""One optimiser step with the configured tricks, and the dev evaluation.

The step builds one scalar loss and takes one backward: the plain task loss, or R-Drop's two passes
(finetuning.tricks.rdrop_loss), or FGM/PGD's clean + adversarial losses (finetuning.adversarial), each plus the
weighted lexical loss when that head is on.
"""

from __future__ import annotations

import numpy as np
import torch

from .adversarial import EmbeddingPerturbation, fgm_loss, pgd_loss
from .config import FinetuneConfig
from .tricks import rdrop_loss


def to_device(batch: dict, device) -> dict:
    """`batch` with every tensor moved to `device` (other values as they are)."""
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _flat(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, C] or [B, T, C] logits with their labels -> the labelled rows [N, C], [N] (tagging: -100 dropped)."""
    logits, labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
    keep = labels != -100
    return logits[keep], labels[keep]


def train_step(engine, batch: dict, rows: list, cfg: FinetuneConfig, tokenizer) -> dict:
    """Forward(s), one backward, one optimiser step; returns {'loss', 'adversarial_skipped'}."""
    model = engine.module
    device = next(model.parameters()).device
    if cfg.tricks.lexical.enabled:
        from .lexical import lexical_labels

        pairs = [r.pair for r in rows] if rows[0].pair is not None else None
        labels = lexical_labels(
            tokenizer, [r.text for r in rows], cfg.model.max_length, kind=cfg.tricks.lexical.kind, pairs=pairs
        )
        batch = {**batch, "lexical_labels": labels}
    batch = to_device(batch, device)
    tricks = cfg.tricks

    def loss_fn() -> torch.Tensor:
        if not tricks.rdrop.enabled:
            return model(batch).loss
        a, b = model(batch), model(batch)
        logits_a, labels = _flat(a.logits, batch["labels"])
        logits_b, _ = _flat(b.logits, batch["labels"])
        extra = 0.5 * ((a.loss - a.task_loss) + (b.loss - b.task_loss))  # the lexical loss, when on
        return rdrop_loss(logits_a, logits_b, labels, tricks.rdrop.alpha) + extra

    skipped = False
    if tricks.fgm.enabled or tricks.pgd.enabled:
        with EmbeddingPerturbation(model) as perturbation:
            if tricks.fgm.enabled:
                loss, info = fgm_loss(loss_fn, perturbation, tricks.fgm.epsilon)
            else:
                p = tricks.pgd
                loss, info = pgd_loss(loss_fn, perturbation, steps=p.steps, alpha=p.alpha, epsilon=p.epsilon)
        skipped = info.skipped
    else:
        loss = loss_fn()
    engine.backward(loss)
    engine.step()
    return {"loss": float(loss.detach()), "adversarial_skipped": skipped}


@torch.no_grad()
def predict(model, task, tokenizer, examples: list, max_length: int, batch_size: int = 32) -> tuple[list, list]:
    """(predictions, gold) per example: label indices; tagging: tag-name sequences over the first token of each
    word, as `encoding.encode` labels them (ner.tag_sequences), gold taken from the same encoding."""
    from .encoding import encode
    from .ner import tag_sequences

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    pred: list = []
    gold: list = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        batch = encode(task.kind, tokenizer, chunk, max_length)
        logits = model(to_device(batch, device)).logits
        if task.kind == "tagging":
            g, p = tag_sequences(batch["labels"], logits.argmax(-1).cpu(), task.labels)
            gold += g
            pred += p
        else:
            pred += logits.argmax(-1).cpu().tolist()
            gold += [ex.label for ex in chunk]
    model.train(was_training)
    return pred, gold


def evaluate(model, task, tokenizer, cfg: FinetuneConfig) -> float:
    """The dev metric in [0, 1]: accuracy, or span F1 (seqeval conventions, finetuning.ner) for tagging."""
    pred, gold = predict(model, task, tokenizer, task.eval, cfg.model.max_length)
    if task.kind == "tagging":
        from .ner import span_f1

        return float(span_f1(gold, pred)["f1"])
    return float((np.array(pred) == np.array(gold)).mean())
