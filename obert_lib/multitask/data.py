"""Auxiliary-task batches beside the MLM batches: deterministic given the seed, resumable by batch index.

Like the trainer's MLM batches, epoch e of a task is a permutation drawn from (seed, e), dealt to ranks
by rank::world, and micro-batch k of epoch e draws whatever else it needs (same_document's partners,
sentence_order's swaps) from its own generator (seed, e, k, rank). A batch is therefore a function of its
index only: a resumed run starts the stream at `start` (micro-batches done) and sees the very batches the
uninterrupted run saw.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import torch

from ..config import ConfigError
from .config import AuxTaskConfig
from .corpus_tasks import SameDocumentPairs, SentenceOrderPairs
from .pairs import pair_batch, read_pairs, tokenize_pairs


class PairSource:
    """A pairs file, tokenized once: `examples(positions, rng)` -> (token-id pairs, labels); rng unused."""

    def __init__(self, task: AuxTaskConfig, tokenizer):
        pairs = read_pairs(task.path, task)
        self.ids = tokenize_pairs(pairs, tokenizer)
        self.labels = [p.label for p in pairs]

    def __len__(self) -> int:
        return len(self.ids)

    def examples(self, positions: Sequence[int], rng: np.random.Generator) -> tuple[list, list]:
        return [self.ids[i] for i in positions], [self.labels[i] for i in positions]


def build_sources(tasks: Sequence[AuxTaskConfig], rows: Sequence[dict[str, Any]], tokenizer) -> list:
    """Each task's examples (a PairSource, SameDocumentPairs or SentenceOrderPairs), in task order; bad files raise
    DataError."""
    corpus_kinds = {"same_document": SameDocumentPairs, "sentence_order": SentenceOrderPairs}
    return [PairSource(t, tokenizer) if t.kind == "pairs" else corpus_kinds[t.kind](rows) for t in tasks]


def check_sizes(tasks: Sequence[AuxTaskConfig], sources: Sequence, stage_micro_batches: Sequence[int], world: int):
    """Every task has at least one micro-batch per rank in every stage, or a ConfigError before any work."""
    for i, (t, source) in enumerate(zip(tasks, sources)):
        for si, stage_mb in enumerate(stage_micro_batches):
            need = (t.micro_batch or stage_mb) * world
            if len(source) < need:
                raise ConfigError(
                    f"aux_tasks[{i}].micro_batch: stage {si + 1} needs {need} examples of task {t.name} per "
                    f"micro-batch (micro_batch x data_parallel_size) but it has {len(source)}; "
                    "give more examples or a smaller micro_batch"
                )


def task_batches(
    source,
    micro_batch: int,
    max_length: int,
    tokenizer,
    seed: Sequence[int],
    regression: bool = False,
    rank: int = 0,
    world: int = 1,
    start: int = 0,
) -> Iterator[dict[str, torch.Tensor]]:
    """Endless micro-batches of one task from micro-batch index `start` (see the module docstring)."""
    per_epoch = (len(source) // world) // micro_batch
    if per_epoch == 0:
        raise ValueError(f"{len(source)} examples make no micro-batch of {micro_batch} on each of {world} ranks")
    epoch, offset = divmod(start, per_epoch)
    while True:
        order = np.random.default_rng([*seed, epoch]).permutation(len(source))[rank::world]
        for k in range(offset, per_epoch):
            rng = np.random.default_rng([*seed, epoch, k, rank])
            ids, labels = source.examples(order[k * micro_batch : (k + 1) * micro_batch], rng)
            yield pair_batch(ids, labels, max_length, tokenizer, regression)
        epoch, offset = epoch + 1, 0


def aux_batches(
    tasks: Sequence[AuxTaskConfig],
    sources: Sequence,
    tokenizer,
    stage_micro_batch: int,
    stage_seq_len: int,
    seed: Sequence[int],
    rank: int = 0,
    world: int = 1,
    start: int = 0,
) -> Iterator[dict[str, dict[str, torch.Tensor]]]:
    """Endless {task name: batch} per micro-batch; task i's stream is seeded (*seed, i), so a task appended to the
    list leaves the other tasks' batches as they were."""
    streams = [
        task_batches(
            source,
            t.micro_batch or stage_micro_batch,
            t.max_length or stage_seq_len,
            tokenizer,
            [*seed, i],
            t.loss == "regression",
            rank,
            world,
            start,
        )
        for i, (t, source) in enumerate(zip(tasks, sources))
    ]
    names = [t.name for t in tasks]
    while True:
        yield {name: next(stream) for name, stream in zip(names, streams)}
