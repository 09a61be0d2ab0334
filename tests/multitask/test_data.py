"""Aux-task batches: same_document pairs are right, every stream is a function of the seed and the batch index."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from obert_lib.config import ConfigError, DataError
from obert_lib.multitask.config import AuxTaskConfig
from obert_lib.multitask.corpus_tasks import SameDocumentPairs
from obert_lib.multitask.data import aux_batches, check_sizes, task_batches

from .test_pairs import CharTokenizer


def _rows():
    """Three documents: d1 with three paragraphs, d2 with two, d3 with one (never an anchor)."""
    spec = [("d1", 3), ("d2", 2), ("d3", 1)]
    return [
        {"doc_id": doc, "paragraph": p, "input_ids": [100 * (k + 1) + p]}
        for k, (doc, n) in enumerate(spec)
        for p in range(n)
    ]


def test_same_document_pairs_label_their_partners_correctly():
    rows = _rows()
    source = SameDocumentPairs(rows)
    assert len(source) == 5 and source.anchors.tolist() == [0, 1, 2, 3, 4]
    doc_of_id = {r["input_ids"][0]: r["doc_id"] for r in rows}
    ids, labels = source.examples(list(range(5)) * 40, np.random.default_rng(0))
    for (a, b), label in zip(ids, labels):
        assert a != b  # never the anchor itself
        assert (doc_of_id[a[0]] == doc_of_id[b[0]]) == bool(label)
    assert 0.35 < np.mean(labels) < 0.65  # about half positives
    again, labels_again = source.examples(list(range(5)) * 40, np.random.default_rng(0))
    assert again == ids and labels_again == labels


def test_a_corpus_without_a_multi_paragraph_document_is_refused():
    with pytest.raises(DataError, match="the corpus has 2 documents and 0 paragraphs in documents of two or more"):
        SameDocumentPairs([{"doc_id": "a", "input_ids": [1]}, {"doc_id": "b", "input_ids": [2]}])


def _equal(x: dict, y: dict) -> bool:
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_a_stream_started_at_an_index_continues_the_full_stream_exactly():
    """What exact resume needs: the batches from index k on are the uninterrupted stream's, across epochs."""
    source, tok = SameDocumentPairs(_rows()), CharTokenizer()
    full = list(itertools.islice(task_batches(source, 2, 16, tok, [0, 1, 0]), 7))  # 2 per epoch: 3.5 epochs
    for start in (1, 2, 5):
        resumed = list(itertools.islice(task_batches(source, 2, 16, tok, [0, 1, 0], start=start), 7 - start))
        assert all(_equal(a, b) for a, b in zip(full[start:], resumed))
    other = list(itertools.islice(task_batches(source, 2, 16, tok, [1, 1, 0]), 7))
    assert not all(_equal(a, b) for a, b in zip(full, other))  # another seed, other batches
    ranks = [list(itertools.islice(task_batches(source, 1, 16, tok, [0, 1, 0], rank=r, world=2), 2)) for r in (0, 1)]
    assert not _equal(ranks[0][0], ranks[1][0])  # each rank its own share


def test_aux_batches_give_every_task_its_batch_per_micro_batch():
    tasks = [
        AuxTaskConfig(name="doc", kind="same_document"),
        AuxTaskConfig(name="doc2", kind="same_document", micro_batch=1),
    ]
    sources = [SameDocumentPairs(_rows()), SameDocumentPairs(_rows())]
    first = next(aux_batches(tasks, sources, CharTokenizer(), stage_micro_batch=2, stage_seq_len=16, seed=[0, 0]))
    assert list(first) == ["doc", "doc2"]
    assert first["doc"]["input_ids"].shape[0] == 2 and first["doc2"]["input_ids"].shape[0] == 1
    assert first["doc"]["input_ids"][:, 0].tolist() == [1, 1]  # [CLS] first


def test_too_few_examples_for_a_micro_batch_are_refused_before_work():
    tasks = [AuxTaskConfig(name="doc", kind="same_document")]
    check_sizes(tasks, [SameDocumentPairs(_rows())], [4, 5], world=1)
    with pytest.raises(
        ConfigError,
        match=r"^aux_tasks\[0\]\.micro_batch: stage 2 needs 6 examples of task doc per micro-batch \(micro_batch x "
        r"data_parallel_size\) but it has 5; give more examples or a smaller micro_batch$",
    ):
        check_sizes(tasks, [SameDocumentPairs(_rows())], [2, 3], world=2)
