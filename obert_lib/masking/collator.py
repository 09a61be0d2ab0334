"""Collator: annotated corpus rows -> padded, masked MLM batches, vectorised over the batch.

Rows are corpus-shard rows: `input_ids` (no special tokens), `<type>_spans` token [start, end) pairs
(lists of pairs, as `to_pylist()` gives them, or [k, 2] int arrays; spans of one type must not overlap,
as the corpus stage guarantees) and, for knowledge masking, `knowledge_ids`. Synonyms replace whole
spans the strategy (or a fallback) chose, e.g. a masked word or entity; a word inside a masked phrase
or clause is not looked up on its own. Layout per row:
`[CLS] context [SEP]` or, with knowledge, `[CLS] context [SEP] K_w [SEP]` (K_w token type 1); the
knowledge segment takes up to `knowledge.summary_budget` tokens and the context the rest.

Random streams: each batch draws one key from the collator's generator (`rng`, the only state to save for an
exact resume: `get_state()` / `set_state()`) and spawns from it (numpy SeedSequence.spawn) one independent
generator per decision in STREAMS. So switching one option (synonyms, knowledge, the replacement shares, a
mixture instead of one strategy) leaves the other decisions' draws unchanged and with/without comparisons
are not confounded. Replacement draws cover the context columns only, one [MASK]/random/kept draw and one
random id per position, so K_w, padding and other positions' outcomes never shift them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from ..config import ConfigError
from ..paths import resolve_data_path
from .knowledge import KnowledgeSegments
from .strategies import FALLBACK, STRATEGIES, BatchSpans, MaskConfig, apply_replacement, choose_batch, replaceable_ids
from .synonyms import SynonymTable

# The random decisions of a batch, each from its own generator (spawned in this order from the batch's key).
# Knowledge takes no draws: K_w is the first linked entries, in order of mention.
STREAMS = ("strategy", "positions", "replacement", "synonym")


@dataclass
class MaskedBatch:
    """A masked batch as numpy arrays, with what was chosen (for statistics and views)."""

    input_ids: np.ndarray  # [B, T] what the model sees
    labels: np.ndarray  # [B, T] original ids at targets, -100 elsewhere
    attention_mask: np.ndarray  # [B, T]
    token_type_ids: np.ndarray  # [B, T] 1 on the knowledge segment
    original_ids: np.ndarray  # [B, T] ids before masking
    context_length: np.ndarray  # [B] context tokens (positions 1..n)
    strategy: list[str]  # per row
    spans: list[tuple[int, str, int, int]]  # (row, type, start, end) of whole spans masked, in row positions
    synonym: np.ndarray  # [B, T] bool, targets shown as a synonym
    knowledge_entries: list[list[str]]  # per row, the entries whose summaries form K_w
    knowledge_cut: list[list[bool]] = field(default_factory=list)  # per row and entry: summary cut to fit the budget

    def to_torch(self) -> dict[str, torch.Tensor]:
        return {
            "input_ids": torch.from_numpy(self.input_ids),
            "attention_mask": torch.from_numpy(self.attention_mask),
            "token_type_ids": torch.from_numpy(self.token_type_ids),
            "labels": torch.from_numpy(self.labels),
        }


class MaskingCollator:
    """Truncate to max_length, add [CLS]/[SEP] (and K_w), mask by strategy or mixture, pad to the longest row.

    Deterministic for a given seed, batch sequence and DataLoader worker (each worker seeds from
    (seed, worker id)); holds only ids and arrays, so it pickles into workers.
    """

    def __init__(
        self,
        tokenizer,
        mask: MaskConfig,
        max_length: int,
        seed: int = 0,
        synonyms: SynonymTable | None = None,
        knowledge: KnowledgeSegments | None = None,
        pad_to_multiple_of: int | None = None,
    ):
        if max_length < 3:
            raise ValueError(f"max_length {max_length} leaves no room for tokens beside [CLS] and [SEP]")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"seed: {seed!r} must be an integer >= 0 (numpy seeds its generators from it), e.g. 0")
        if mask.knowledge.enabled and knowledge is None:
            raise ValueError(
                "mask.knowledge.enabled needs knowledge segments: pass "
                "knowledge=KnowledgeSegments.from_corpus(corpus_dir, tokenizer)"
            )
        if mask.knowledge.enabled and max_length < 5:
            raise ValueError(f"max_length {max_length} leaves no room for [CLS] ctx [SEP] K [SEP]; use >= 5")
        if mask.synonym.enabled and synonyms is None:
            if mask.synonym.source != "lexicon":
                raise ValueError(
                    "mask.synonym.source 'embeddings' needs a table: pass "
                    "synonyms=SynonymTable.from_embeddings(model input embeddings, corpus_words(rows))"
                )
            synonyms = SynonymTable.from_lexicon(resolve_data_path(mask.synonym.lexicon), tokenizer)
        self.mask, self.max_length, self.seed = mask, max_length, seed
        self.synonyms = synonyms if mask.synonym.enabled else None
        self._synonym_first = np.array(
            sorted({k[0] for k in self.synonyms.table if k}) if self.synonyms else [], dtype=np.int64
        )  # first ids of the words that have synonyms
        self.knowledge = knowledge if mask.knowledge.enabled else None
        self.pad_to_multiple_of = pad_to_multiple_of
        self.cls_id, self.sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
        self.pad_id, self.mask_id = tokenizer.pad_token_id, tokenizer.mask_token_id
        self.random_ids = replaceable_ids(tokenizer)
        self.step = 0
        self._rng: np.random.Generator | None = None

    def set_step(self, step: int) -> None:
        """The training step, for a mask schedule (MaskConfig.schedule); reaches DataLoader workers only with
        num_workers=0."""
        self.step = step

    @property
    def rng(self) -> np.random.Generator:
        """Seeded on first use: (seed) in the main process, (seed, worker id, torch's per-epoch worker seed) in a
        worker."""
        if self._rng is None:
            info = torch.utils.data.get_worker_info()
            self._rng = np.random.default_rng([self.seed] if info is None else [self.seed, info.id + 1, info.seed])
        return self._rng

    def streams(self) -> dict[str, np.random.Generator]:
        """One generator per decision (STREAMS) for the next batch, spawned from one key drawn from `rng`."""
        key = np.random.SeedSequence(self.rng.integers(0, 2**63, size=2).tolist())
        return {name: np.random.default_rng(child) for name, child in zip(STREAMS, key.spawn(len(STREAMS)))}

    def get_state(self) -> dict[str, Any]:
        """Plain JSON-able state for an exact resume: seed, schedule step and numpy's state of `rng` (PCG64).

        The generator's ints may exceed 64 bits; Python's json round-trips them exactly.
        """
        return {"seed": self.seed, "step": self.step, "rng": self.rng.bit_generator.state}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore get_state()'s dict (or a bare `rng.bit_generator.state`, as older resume points saved it)."""
        bit_state = state["rng"] if "rng" in state else state
        if bit_state.get("bit_generator") != type(self.rng.bit_generator).__name__:
            raise ValueError(
                f"collator state holds a {bit_state.get('bit_generator')!r} generator, "
                f"not {type(self.rng.bit_generator).__name__}"
            )
        self.rng.bit_generator.state = bit_state
        if "step" in state:
            self.step = int(state["step"])

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_rng"] = None  # each DataLoader worker seeds its own stream, whatever the main process drew before
        return state

    def mask_batch(self, rows: Sequence[dict[str, Any]]) -> MaskedBatch:
        """Mask a list of rows; see the module docstring for the layout."""
        cfg, B = self.mask, len(rows)
        if B == 0:
            raise ValueError("cannot collate an empty list of rows")
        rng = self.streams()
        mixture = cfg.mixture_at(self.step)
        names = list(mixture)
        strategy = (
            np.array([STRATEGIES.index(n) for n in names])[
                rng["strategy"].choice(len(names), size=B, p=np.array(list(mixture.values())))
            ]
            if len(names) > 1
            else np.full(B, STRATEGIES.index(names[0]))
        )
        lengths = np.array([len(r["input_ids"]) for r in rows], dtype=np.int64)  # [B]
        flat_ids = _flat_ints([r["input_ids"] for r in rows], int(lengths.sum()))  # all rows' ids, concatenated
        parts = [[] for _ in range(B)]
        know = [np.zeros(0, dtype=np.int64)] * B
        if self.knowledge is not None:
            k_cfg = cfg.knowledge
            budget = min(k_cfg.summary_budget, self.max_length - 4)  # at least one context token stays
            parts = [self.knowledge.parts(r.get("knowledge_ids"), k_cfg.max_entries, budget) for r in rows]
            know = [self.knowledge.join(p) for p in parts]
        extra = np.array([len(k) + 1 if len(k) else 0 for k in know])  # K_w and its [SEP]
        n = np.minimum(lengths, self.max_length - 2 - extra).astype(np.int64)  # [B] context lengths
        levels = {lvl for i in set(strategy.tolist()) for lvl in (STRATEGIES[i], *FALLBACK[STRATEGIES[i]])} - {"char"}
        spans = {t: self._gather(rows, t, n) for t in levels}
        masked_ctx, taken = choose_batch(n, spans, strategy, cfg.mask_rate, rng["positions"])  # [B, max n]
        width = int((n + 2 + extra).max())
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        original = np.full((B, width), self.pad_id, dtype=np.int64)  # [B, T]
        token_type = np.zeros((B, width), dtype=np.int64)  # [B, T]
        owner = np.repeat(np.arange(B), lengths)  # [sum lengths] row of each id
        pos = np.arange(len(flat_ids)) - np.repeat(np.cumsum(lengths) - lengths, lengths)  # position within its row
        keep = pos < n[owner]  # truncation
        original[owner[keep], pos[keep] + 1] = flat_ids[keep]
        original[:, 0] = self.cls_id
        original[np.arange(B), n + 1] = self.sep_id
        for i in np.flatnonzero(extra):
            k = n[i]
            original[i, k + 2 : k + 1 + extra[i]] = know[i]
            original[i, k + 1 + extra[i]] = self.sep_id
            token_type[i, k + 2 : k + 2 + extra[i]] = 1
        attention = (np.arange(width)[None, :] < (n + 2 + extra)[:, None]).astype(np.int64)  # [B, T]
        masked = np.zeros((B, width), dtype=bool)
        masked[:, 1 : 1 + masked_ctx.shape[1]] = masked_ctx
        c_row = np.concatenate([spans[t].row[idx] for t, idx in taken] or [np.zeros(0, dtype=np.int64)])
        c_start = np.concatenate([spans[t].start[idx] for t, idx in taken] or [np.zeros(0, dtype=np.int64)]) + 1
        c_end = np.concatenate([spans[t].end[idx] for t, idx in taken] or [np.zeros(0, dtype=np.int64)]) + 1
        c_type = [t for t, idx in taken for _ in range(len(idx))]
        chosen = list(zip(c_row.tolist(), c_type, c_start.tolist(), c_end.tolist()))
        synonym = np.zeros((B, width), dtype=bool)
        shown = original
        if self.synonyms is not None and chosen:
            shown = original.copy()
            draws = rng["synonym"].random(len(chosen))
            # Only spans whose first id starts some table key can have a synonym: the dict look-ups (and the
            # draws they make) happen for those alone, in the same order, so the outcome is unchanged.
            tried = np.flatnonzero((draws < cfg.synonym.rate) & np.isin(original[c_row, c_start], self._synonym_first))
            for j in tried.tolist():
                i, _, s, e = chosen[j]
                alt = self.synonyms.sample(tuple(original[i, s:e].tolist()), rng["synonym"])
                if alt is not None:
                    shown[i, s:e] = alt
                    synonym[i, s:e] = True
        ctx = slice(0, 1 + masked_ctx.shape[1])  # [CLS] and the context columns: all targets lie there
        input_ids, labels = shown.copy(), np.full((B, width), -100, dtype=np.int64)
        input_ids[:, ctx], labels[:, ctx] = apply_replacement(
            shown[:, ctx],
            masked[:, ctx],
            cfg,
            self.mask_id,
            self.random_ids,
            rng["replacement"],
            exempt=synonym[:, ctx],
        )
        labels[masked] = original[masked]
        return MaskedBatch(
            input_ids,
            labels,
            attention,
            token_type,
            original,
            n,
            [STRATEGIES[s] for s in strategy],
            chosen,
            synonym,
            [[p.entry for p in row] for row in parts],
            [[p.cut for p in row] for row in parts],
        )

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return self.mask_batch(rows).to_torch()

    @staticmethod
    def _gather(rows: Sequence[dict[str, Any]], span_type: str, n: np.ndarray) -> BatchSpans:
        """One type's spans of all rows, flat, without spans cut by truncation."""
        values = [r.get(f"{span_type}_spans") for r in rows]
        counts = np.array([0 if v is None else len(v) for v in values], dtype=np.int64)  # [B] spans per row
        if not counts.any():
            return BatchSpans.empty()
        if all(v is None or isinstance(v, list) for v in values):  # lists of pairs, as to_pylist() gives them
            pairs = itertools.chain.from_iterable(v for v in values if v)
            flat = _flat_ints(pairs, 2 * int(counts.sum())).reshape(-1, 2)
        else:
            flat = np.concatenate(
                [np.asarray(v, dtype=np.int64).reshape(-1, 2) for v in values if v is not None and len(v)]
            )
        row = np.repeat(np.arange(len(rows)), counts)
        keep = (flat[:, 0] >= 0) & (flat[:, 0] < flat[:, 1]) & (flat[:, 1] <= n[row])
        return BatchSpans(row[keep], flat[keep, 0], flat[keep, 1])


def _flat_ints(parts: Iterable[Sequence[int]], total: int) -> np.ndarray:
    """The concatenation of many short int sequences as one int64 array (one pass, no per-part arrays)."""
    return np.fromiter(itertools.chain.from_iterable(parts), dtype=np.int64, count=total)
