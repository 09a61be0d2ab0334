"""What masking does over many rows: realised mask rate, replacement split and masked-unit lengths per strategy."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from .collator import MaskedBatch, MaskingCollator
from .strategies import STRATEGIES, MaskConfig


def batch_counts(batch: MaskedBatch, mask_id: int) -> dict[str, Any]:
    """Counts of one masked batch: context tokens, targets, [MASK]/kept/random/synonym, masked units and their lengths.

    A masked unit is a whole span the strategy (or a fallback) chose, or one token filled singly.
    """
    target = batch.labels != -100  # [B, T]
    span_tokens = sum(e - s for _, _, s, e in batch.spans)
    singles = int(target.sum()) - span_tokens
    return {
        "tokens": int(batch.context_length.sum()),
        "masked": int(target.sum()),
        "shown_mask": int((batch.input_ids[target] == mask_id).sum()),
        "shown_same": int(((batch.input_ids == batch.labels) & target & ~batch.synonym).sum()),
        "own_span_tokens": sum(e - s for r, t, s, e in batch.spans if t == batch.strategy[r])
        + int(target[[s == "char" for s in batch.strategy]].sum()),
        "shown_synonym": int(batch.synonym[target].sum()),
        "unit_lengths": [e - s for _, _, s, e in batch.spans] + [1] * singles,
        "special_masked": int(
            (target & ((batch.attention_mask == 0) | (batch.token_type_ids == 1))).sum()
            + target[:, 0].sum()
            + target[np.arange(len(target)), batch.context_length + 1].sum()
        ),
    }


def collate_statistics(
    rows: Sequence[dict[str, Any]], collator: MaskingCollator, batch_size: int = 64
) -> dict[str, Any]:
    """Mask `rows` in batches with `collator` and sum batch_counts into rates and shares."""
    total: dict[str, Any] = {
        "tokens": 0,
        "masked": 0,
        "shown_mask": 0,
        "shown_same": 0,
        "shown_synonym": 0,
        "own_span_tokens": 0,
        "special_masked": 0,
        "unit_lengths": [],
    }
    for lo in range(0, len(rows), batch_size):
        counts = batch_counts(collator.mask_batch(rows[lo : lo + batch_size]), collator.mask_id)
        for k, v in counts.items():
            total[k] += v
    masked = max(1, total["masked"])
    policy = max(1, total["masked"] - total["shown_synonym"])  # targets that went through 80/10/10
    lengths = np.asarray(total["unit_lengths"])
    return {
        "sequences": len(rows),
        "tokens": total["tokens"],
        "mask_rate": total["masked"] / max(1, total["tokens"]),
        "mean_span_length": float(lengths.mean()) if len(lengths) else 0.0,
        # share of targets from the strategy's own spans (the rest came from fallbacks; char: all its own)
        "own_span_share": total["own_span_tokens"] / masked,
        "share_mask": total["shown_mask"] / policy,
        "share_kept": total["shown_same"] / policy,
        "share_random": (policy - total["shown_mask"] - total["shown_same"]) / policy,
        "share_synonym": total["shown_synonym"] / masked,
        "special_masked": total["special_masked"],
        "span_lengths": lengths,
    }


def strategy_statistics(
    rows: Sequence[dict[str, Any]],
    tokenizer,
    mask_rate: float = 0.15,
    max_length: int = 128,
    seed: int = 0,
    extra: dict[str, MaskConfig] | None = None,
    **collator_kwargs,
) -> pd.DataFrame:
    """One row per strategy (plus any `extra` named configs): realised rate, replacement split, mean span length."""
    configs = {s: MaskConfig(strategy=s, mask_rate=mask_rate) for s in STRATEGIES}
    configs.update(extra or {})
    records = []
    for name, cfg in configs.items():
        collator = MaskingCollator(tokenizer, cfg, max_length, seed, **collator_kwargs)
        stats = collate_statistics(rows, collator)
        stats.pop("span_lengths")
        records.append({"strategy": name, **stats})
    return pd.DataFrame(records)


def span_length_table(
    rows: Sequence[dict[str, Any]], tokenizer, mask_rate: float = 0.15, max_length: int = 128, seed: int = 0
) -> pd.DataFrame:
    """Long table (strategy, length) of every masked unit, for span-length histograms."""
    frames = []
    for s in STRATEGIES:
        lengths = collate_statistics(
            rows, MaskingCollator(tokenizer, MaskConfig(strategy=s, mask_rate=mask_rate), max_length, seed)
        )["span_lengths"]
        frames.append(pd.DataFrame({"strategy": s, "length": lengths}))
    return pd.concat(frames, ignore_index=True)
