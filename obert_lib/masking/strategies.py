"""Span-mask strategies (OBERT's five granularities plus BERT's token level), mixtures, schedules and replacement.

Devlin et al. 2019 (BERT): 15% of tokens, 80% [MASK] / 10% random / 10% kept.
OBERT (2022): whole word, entity, keyword, phrase and clause masks inside the same paragraph.
Motian (2022): some masked words are shown as a near-synonym instead of [MASK].

Budget rule (per sequence of n context tokens): the target is t = mask_rate * n, rounded stochastically
(floor(t) plus one with probability frac(t)) so the expected realised rate is exactly mask_rate. Spans of
the chosen strategy are taken in random order when they fit the remaining budget; what they cannot fill
is filled from the next finer granularity (FALLBACK), and finally by single tokens, so the budget is met
exactly and never exceeded. All of it runs batch-wide in numpy: Python loops run over granularity
levels and a few selection rounds, never over tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

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
# Selection rounds per level: round r retries the spans that still fit after round r-1 took a random
# prefix. Three rounds take >99% of what a one-span-at-a-time greedy pass takes on FewCLUE rows.
SELECTION_ROUNDS = 3


@dataclass
class SynonymConfig:
    """Motian's synonym replacement: a masked word with a same-length synonym is shown as that synonym."""

    enabled: bool = False
    source: Literal["lexicon", "embeddings"] = "lexicon"
    lexicon: str = "sample:synonyms.tsv"  # TSV `word<TAB>synonym<TAB>weight` (data/README.md)
    rate: float = 0.5  # share of masked spans that have a synonym which are shown as it (the rest: 80/10/10)
    top_k: int = 8  # embeddings: nearest neighbours considered per word
    temperature: float = 0.05  # embeddings: softmax temperature over cosine similarity (0.05: top neighbour dominates)

    def __post_init__(self):
        require(0.0 <= self.rate <= 1.0, "rate", f"{self.rate} must be within [0, 1], e.g. 0.5")
        require(self.top_k >= 1, "top_k", "must be >= 1")
        require(self.temperature > 0, "temperature", "must be > 0, e.g. 0.05")


@dataclass
class KnowledgeConfig:
    """Knowledge-enhanced masking: linked entities' summaries as a second segment `[CLS] ctx [SEP] K [SEP]`."""

    enabled: bool = False
    max_entries: int = 2  # linked knowledge-base entries appended per sequence, in order of mention
    summary_budget: int = 48  # tokens of summaries at most (37.5% of a 128-token sequence, 9% of 512)

    def __post_init__(self):
        require(self.max_entries >= 1, "max_entries", "must be >= 1")
        require(self.summary_budget >= 1, "summary_budget", "must be >= 1 token")


@dataclass
class ScheduleEntry:
    """From training step `from_step` on, sequences draw their strategy from `mixture`."""

    from_step: int = 0
    mixture: dict[str, float] = field(default_factory=dict)


def _check_mixture(mixture: dict[str, float], key: str) -> None:
    for name, weight in mixture.items():
        require(name in STRATEGIES, f"{key}.{name}", f"unknown strategy; use some of {list(STRATEGIES)}")
        require(math.isfinite(weight) and weight >= 0, f"{key}.{name}", f"weight {weight} must be a finite number >= 0")
    require(sum(mixture.values()) > 0, key, "weights must not all be 0, e.g. {word: 0.5, phrase: 0.5}")


@dataclass
class MaskConfig:
    """Which spans are masked (a strategy, a weighted mixture, or a step schedule) and how they are shown."""

    strategy: str = "word"
    mixture: dict[str, float] = field(default_factory=dict)  # per-sequence strategy weights; overrides `strategy`
    schedule: list[ScheduleEntry] = field(default_factory=list)  # step-dependent mixtures (granularity curriculum)
    mask_rate: float = 0.15  # BERT's 15%
    replace_mask: float = 0.8  # share of masked tokens shown as [MASK]
    replace_random: float = 0.1  # share replaced by a random vocabulary token; the rest stay unchanged
    synonym: SynonymConfig = field(default_factory=SynonymConfig)
    knowledge: KnowledgeConfig = field(default_factory=KnowledgeConfig)

    def __post_init__(self):
        require(self.strategy in STRATEGIES, "strategy", f"{self.strategy!r} is unknown; use one of {list(STRATEGIES)}")
        require(0.0 < self.mask_rate < 1.0, "mask_rate", f"{self.mask_rate} must be within (0, 1), e.g. 0.15")
        require(
            self.replace_mask >= 0 and self.replace_random >= 0 and self.replace_mask + self.replace_random <= 1.0,
            "replace_mask",
            "replace_mask + replace_random must be within [0, 1] (default 0.8 + 0.1)",
        )
        if self.mixture:
            _check_mixture(self.mixture, "mixture")
        from ..config import from_dict

        for name, cls in (("synonym", SynonymConfig), ("knowledge", KnowledgeConfig)):
            if isinstance(getattr(self, name), dict):  # built in Python with a plain dict: same strict checks as YAML
                setattr(self, name, from_dict(cls, getattr(self, name), f"{name}."))
        for i, entry in enumerate(self.schedule):
            entry = self.schedule[i] = (
                entry if isinstance(entry, ScheduleEntry) else from_dict(ScheduleEntry, entry, f"schedule[{i}].")
            )
            require(entry.from_step >= 0, f"schedule[{i}].from_step", "must be >= 0")
            _check_mixture(entry.mixture, f"schedule[{i}].mixture")
            if i:
                require(
                    entry.from_step > self.schedule[i - 1].from_step,
                    f"schedule[{i}].from_step",
                    "entries must be in increasing from_step order",
                )

    def mixture_at(self, step: int = 0) -> dict[str, float]:
        """The normalised strategy weights in force at training step `step`."""
        current = self.mixture or {self.strategy: 1.0}
        for entry in self.schedule:
            if step >= entry.from_step:
                current = entry.mixture
        total = sum(current.values())
        return {k: v / total for k, v in current.items() if v > 0}

    @property
    def label(self) -> str:
        """A short name for tables: the strategy, or the mixture as `word:0.5+phrase:0.5`."""
        if self.schedule:
            return "schedule"
        if self.mixture:
            return "+".join(f"{k}:{v:g}" for k, v in self.mixture.items())
        return self.strategy


@dataclass
class BatchSpans:
    """Candidate spans of one type for a batch, flat: span i covers tokens [start[i], end[i]) of row[i]."""

    row: np.ndarray  # [K] int64
    start: np.ndarray  # [K] int64
    end: np.ndarray  # [K] int64

    @classmethod
    def empty(cls) -> "BatchSpans":
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, z)


def stochastic_budget(lengths: np.ndarray, mask_rate: float, rng: np.random.Generator) -> np.ndarray:
    """[B] tokens to mask: floor(rate*n) plus one with probability frac(rate*n); E[budget] = rate*n exactly."""
    target = mask_rate * lengths.astype(np.float64)
    base = np.floor(target)
    return (base + (rng.random(len(lengths)) < target - base)).astype(np.int64)


def _prefix_counts(masked: np.ndarray) -> np.ndarray:
    """[B, T+1] number of masked positions before each index (row-wise exclusive cumsum)."""
    out = np.zeros((masked.shape[0], masked.shape[1] + 1), dtype=np.int64)
    np.cumsum(masked, axis=1, out=out[:, 1:])
    return out


def _mark(masked: np.ndarray, row: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
    """Set masked[row, start:end] for many spans at once, through a difference array."""
    if len(row) == 0:
        return
    B, T = masked.shape
    size = B * (T + 1)
    diff = np.bincount(row * (T + 1) + start, minlength=size) - np.bincount(row * (T + 1) + end, minlength=size)
    masked |= np.cumsum(diff.reshape(B, T + 1), axis=1)[:, :T] > 0


def select_spans(
    masked: np.ndarray, budget: np.ndarray, spans: BatchSpans, active: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Take whole spans, in random order, that fit each active row's remaining budget; updates `masked`.

    masked: [B, T] bool, already-masked positions (a span touching one is never taken).
    budget: [B] tokens to mask per row. active: [B] bool, rows choosing from these spans.
    Returns the indices (into `spans`) of the spans taken.
    """
    taken: list[np.ndarray] = []
    if len(spans.row) == 0:
        return np.zeros(0, dtype=np.int64)
    length = spans.end - spans.start
    pool = np.flatnonzero(active[spans.row] & (length > 0))
    for _ in range(SELECTION_ROUNDS):
        need = budget - masked.sum(axis=1)  # [B]
        prefix = _prefix_counts(masked)
        r, s, e = spans.row[pool], spans.start[pool], spans.end[pool]
        free = prefix[r, e] - prefix[r, s] == 0
        pool = pool[free & (length[pool] <= need[r])]
        if len(pool) == 0:
            break
        # Random order within each row, by one float argsort of row + u/2 (u ~ U[0, 1)) instead of a lexsort;
        # u/2 < 0.5 so that rounding never lifts a key to the next row.
        order = np.argsort(spans.row[pool] + 0.5 * rng.random(len(pool)))
        cand = pool[order]
        rows, lens = spans.row[cand], length[cand]
        inclusive = np.cumsum(lens)
        group_start = np.r_[True, rows[1:] != rows[:-1]]
        before_group = np.maximum.accumulate(np.where(group_start, inclusive - lens, 0))
        take = inclusive - before_group <= need[rows]  # a random prefix of each row's spans that fits
        chosen = cand[take]
        _mark(masked, spans.row[chosen], spans.start[chosen], spans.end[chosen])
        taken.append(chosen)
        pool = cand[~take]
    return np.concatenate(taken) if taken else np.zeros(0, dtype=np.int64)


def fill_tokens(masked: np.ndarray, budget: np.ndarray, valid: np.ndarray, rng: np.random.Generator) -> None:
    """Mask random single free positions until each row reaches its budget exactly (BERT's token level)."""
    need = np.maximum(0, budget - masked.sum(axis=1))  # [B]
    if not need.any():
        return
    keys = rng.random(masked.shape)
    keys[masked | ~valid] = np.inf
    ordered = np.sort(keys, axis=1)
    idx = np.clip(need - 1, 0, masked.shape[1] - 1)
    threshold = np.where(need > 0, ordered[np.arange(len(need)), idx], -np.inf)  # need-th smallest key per row
    masked |= keys <= threshold[:, None]


def choose_batch(
    lengths: np.ndarray,
    spans: dict[str, BatchSpans],
    strategies: np.ndarray,
    mask_rate: float,
    rng: np.random.Generator,
    width: int | None = None,
) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """Masked positions for a batch: each row's strategy, then its fallbacks, then single tokens.

    lengths: [B] context tokens per row; spans: candidate spans per type (context coordinates);
    strategies: [B] index into STRATEGIES per row. Returns (masked [B, width] bool, [(type, taken span idx)]).
    """
    B = len(lengths)
    T = int(width if width is not None else (lengths.max() if B else 0))
    masked = np.zeros((B, T), dtype=bool)
    valid = np.arange(T)[None, :] < lengths[:, None]  # [B, T]
    budget = stochastic_budget(lengths, mask_rate, rng)
    chains = [(STRATEGIES[i], *FALLBACK[STRATEGIES[i]]) for i in range(len(STRATEGIES))]
    taken: list[tuple[str, np.ndarray]] = []
    for depth in range(max(len(c) for c in chains)):
        for level in STRATEGIES[1:]:  # 'char' is filled last, for every row
            use = np.array([depth < len(c) and c[depth] == level for c in chains])  # [len(STRATEGIES)] bool
            active = use[strategies]
            if active.any() and level in spans:
                taken.append((level, select_spans(masked, budget, spans[level], active, rng)))
    fill_tokens(masked, budget, valid, rng)
    return masked, taken


def choose_masked_positions(
    n_tokens: int, spans: dict[str, list[tuple[int, int]]], strategy: str, mask_rate: float, rng: np.random.Generator
) -> np.ndarray:
    """Boolean [n_tokens] mask for one sequence under one strategy (choose_batch for a batch of one)."""
    batch = {}
    for t, v in spans.items():
        arr = np.asarray(v, dtype=np.int64).reshape(-1, 2)  # [k, 2]
        arr = arr[(arr[:, 0] >= 0) & (arr[:, 0] < arr[:, 1]) & (arr[:, 1] <= n_tokens)]
        batch[t] = BatchSpans(np.zeros(len(arr), dtype=np.int64), arr[:, 0], arr[:, 1])
    masked, _ = choose_batch(np.array([n_tokens]), batch, np.array([STRATEGIES.index(strategy)]), mask_rate, rng)
    return masked[0]


def apply_replacement(
    input_ids: np.ndarray,
    masked: np.ndarray,
    cfg: MaskConfig,
    mask_id: int,
    random_ids: np.ndarray,
    rng: np.random.Generator,
    exempt: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """BERT replacement on masked positions; returns (new ids, labels with -100 where not masked).

    exempt: positions that are targets but already replaced (synonyms); they keep their ids here.
    Every position gets its own draw and its own random id whether it is a target or not, so one position's
    outcome never depends on the others' (nor on `exempt`), and a larger `replace_random` only turns kept
    targets into random ones, each with the id it would have had.
    """
    labels = np.where(masked, input_ids, -100)
    policy = masked if exempt is None else masked & ~exempt
    draw = rng.random(input_ids.shape)
    pick = rng.integers(0, len(random_ids), size=input_ids.shape)
    to_mask = policy & (draw < cfg.replace_mask)
    to_random = policy & (draw >= cfg.replace_mask) & (draw < cfg.replace_mask + cfg.replace_random)
    out = input_ids.copy()
    out[to_mask] = mask_id
    out[to_random] = random_ids[pick[to_random]]
    return out, labels


def replaceable_ids(tokenizer) -> np.ndarray:
    """Ids a random replacement may use: real vocabulary tokens, never special, [unusedN] or '##' pieces."""
    special = set(tokenizer.all_special_ids)
    vocab = tokenizer.get_vocab()
    ids = [i for tok, i in vocab.items() if i not in special and not tok.startswith("##") and not tok.startswith("[")]
    return np.array(sorted(ids), dtype=np.int64)
