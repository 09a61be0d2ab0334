"""Collator: annotated corpus rows -> padded, masked MLM batches for a given strategy and sequence length."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ..corpus.annotate import SPAN_TYPES
from .strategies import MaskConfig, apply_replacement, choose_masked_positions, replaceable_ids


class MaskingCollator:
    """Truncate to max_length, add [CLS]/[SEP], mask by strategy, pad dynamically to the longest row."""

    def __init__(self, tokenizer, mask: MaskConfig, max_length: int, seed: int = 0):
        if max_length < 3:
            raise ValueError(f"max_length {max_length} leaves no room for tokens beside [CLS] and [SEP]")
        self.mask = mask
        self.max_length = max_length
        self.rng = np.random.default_rng(seed)
        self.cls_id, self.sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
        self.pad_id, self.mask_id = tokenizer.pad_token_id, tokenizer.mask_token_id
        self.random_ids = replaceable_ids(tokenizer)

    def mask_row(self, row: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """One row -> (input ids [L], labels [L]) with [CLS] ... [SEP]; L <= max_length."""
        n = min(len(row["input_ids"]), self.max_length - 2)
        ids = np.asarray(row["input_ids"][:n], dtype=np.int64)  # [n]
        spans = {t: [tuple(s) for s in (row.get(f"{t}_spans") or []) if s[1] <= n] for t in SPAN_TYPES}
        masked = choose_masked_positions(n, spans, self.mask.strategy, self.mask.mask_rate, self.rng)
        new_ids, labels = apply_replacement(ids, masked, self.mask, self.mask_id, self.random_ids, self.rng)
        return (np.concatenate([[self.cls_id], new_ids, [self.sep_id]]),
                np.concatenate([[-100], labels, [-100]]))

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        pairs = [self.mask_row(r) for r in rows]
        width = max(len(ids) for ids, _ in pairs)
        input_ids = np.full((len(pairs), width), self.pad_id, dtype=np.int64)  # [B, T]
        labels = np.full((len(pairs), width), -100, dtype=np.int64)  # [B, T]
        attention = np.zeros((len(pairs), width), dtype=np.int64)  # [B, T]
        for i, (ids, lab) in enumerate(pairs):
            input_ids[i, : len(ids)] = ids
            labels[i, : len(lab)] = lab
            attention[i, : len(ids)] = 1
        return {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention),
            "token_type_ids": torch.zeros_like(torch.from_numpy(input_ids)),
            "labels": torch.from_numpy(labels),
        }
