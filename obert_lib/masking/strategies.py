"""Span-mask strategies (OBERT's five granularities plus BERT's token level) and BERT's 80/10/10 replacement.

Devlin et al. 2019 (BERT): 15% of tokens, 80% [MASK] / 10% random / 10% kept.
OBERT (2022): whole word, entity, keyword, phrase and clause masks inside the same paragraph.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import require

STRATEGIES = ("char", "word", "entity", "keyword", "phrase", "clause")
# When a strategy's spans cannot fill the budget, finer granularities fill the rest, in this order.
FALLBACK = {
    "char": (),
    "word": ("char",),
    "entity": ("word", "char"),
    "keyword": ("word", "char"),
    "phrase": ("word", "char"),
    "clause": ("phrase", "word", "char"),
}


@dataclass
class MaskConfig:
    """Which spans are masked and how masked tokens are replaced."""

    strategy: str = "word"
    mask_rate: float = 0.15  # BERT's 15%
    replace_mask: float = 0.8  # share of masked tokens shown as [MASK]
    replace_random: float = 0.1  # share replaced by a random vocabulary token; the rest stay unchanged

    def __post_init__(self):
        require(self.strategy in STRATEGIES, "strategy", f"{self.strategy!r} is unknown; use one of {list(STRATEGIES)}")
        require(0.0 < self.mask_rate < 1.0, "mask_rate", f"{self.mask_rate} must be within (0, 1), e.g. 0.15")
        require(self.replace_mask >= 0 and self.replace_random >= 0 and self.replace_mask + self.replace_random <= 1.0,
                "replace_mask", "replace_mask + replace_random must be within [0, 1] (default 0.8 + 0.1)")


def choose_masked_positions(
    n_tokens: int, spans: dict[str, list[tuple[int, int]]], strategy: str, mask_rate: float, rng: np.random.Generator
) -> np.ndarray:
    """Boolean [n_tokens] mask: whole spans of `strategy` (then its fallbacks) until mask_rate*n is reached.

    A span is masked entirely or not at all and never overlaps another masked span; the budget is
    exceeded by less than one span.
    """
    masked = np.zeros(n_tokens, dtype=bool)
    if n_tokens == 0:
        return masked
    budget = max(1, int(round(mask_rate * n_tokens)))
    covered = 0
    for level in (strategy, *FALLBACK[strategy]):
        if covered >= budget:
            break
        if level == "char":
            free = np.flatnonzero(~masked)
            pick = rng.permutation(free)[: budget - covered]
            masked[pick] = True
            covered += len(pick)
            break
        candidates = [(s, e) for s, e in spans.get(level, []) if 0 <= s < e <= n_tokens]
        for i in rng.permutation(len(candidates)):
            if covered >= budget:
                break
            s, e = candidates[i]
            if masked[s:e].any():
                continue
            masked[s:e] = True
            covered += e - s
    return masked


def apply_replacement(
    input_ids: np.ndarray, masked: np.ndarray, cfg: MaskConfig, mask_id: int, random_ids: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """BERT replacement on masked positions; returns (new ids, labels with -100 where not masked)."""
    labels = np.where(masked, input_ids, -100)
    draw = rng.random(input_ids.shape)
    to_mask = masked & (draw < cfg.replace_mask)
    to_random = masked & (draw >= cfg.replace_mask) & (draw < cfg.replace_mask + cfg.replace_random)
    out = input_ids.copy()
    out[to_mask] = mask_id
    out[to_random] = random_ids[rng.integers(0, len(random_ids), size=int(to_random.sum()))]
    return out, labels


def replaceable_ids(tokenizer) -> np.ndarray:
    """Ids a random replacement may use: real vocabulary tokens, never special, [unusedN] or '##' pieces."""
    special = set(tokenizer.all_special_ids)
    vocab = tokenizer.get_vocab()
    ids = [i for tok, i in vocab.items() if i not in special and not tok.startswith("##") and not tok.startswith("[")]
    return np.array(sorted(ids), dtype=np.int64)
