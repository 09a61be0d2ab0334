"""Aux-task batches: same_document and sentence_order pairs are right, every stream is a function of the seed and
the batch index, and a task added to the list leaves the others' batches unchanged."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from obert_lib.config import ConfigError, DataError
from obert_lib.multitask.config import AuxTaskConfig
from obert_lib.multitask.corpus_tasks import SameDocumentPairs, SentenceOrderPairs
from obert_lib.multitask.data import aux_batches, build_sources, check_sizes, task_batches

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


def _sentence_rows():
    """d1: paragraph 1 listed before paragraph 0; paragraph 0 has sentences [1, 2][3], paragraph 1 one sentence
    [4, 5] plus an empty span; d2: one paragraph without sentence_spans, then one with sentences [8][9];
    d3: a single sentence (no pair)."""
    return [
        {"doc_id": "d1", "paragraph": 1, "input_ids": [4, 5], "sentence_spans": [[0, 2], [2, 2]]},
        {"doc_id": "d1", "paragraph": 0, "input_ids": [1, 2, 3], "sentence_spans": [[0, 2], [2, 3]]},
        {"doc_id": "d2", "paragraph": 0, "input_ids": [6, 7]},
        {"doc_id": "d2", "paragraph": 1, "input_ids": [8, 9], "sentence_spans": [[0, 1], [1, 2]]},
        {"doc_id": "d3", "paragraph": 0, "input_ids": [10, 11], "sentence_spans": [[0, 2]]},
    ]


def test_sentence_order_pairs_are_consecutive_segments_of_one_document_in_or_out_of_order():
    source = SentenceOrderPairs(_sentence_rows())
    # consecutive segments in document order: within a paragraph and across paragraph boundaries, never across
    # documents; a row without sentence spans is one segment; empty spans are skipped
    assert source.pairs.tolist() == [
        [1, 0, 2, 1, 2, 3],  # [1, 2] -> [3]
        [1, 2, 3, 0, 0, 2],  # [3] -> [4, 5] (next paragraph)
        [2, 0, 2, 3, 0, 1],  # [6, 7] -> [8]
        [3, 0, 1, 3, 1, 2],  # [8] -> [9]
    ]
    ids, labels = source.examples([0, 1, 2, 3, 3, 2, 1, 0], np.random.default_rng(6))
    assert labels == [0, 1, 1, 0, 1, 0, 1, 0]  # one integers(2) draw per example: 1 = original order, 0 = swapped
    assert ids == [
        ([3], [1, 2]),
        ([3], [4, 5]),
        ([6, 7], [8]),
        ([9], [8]),
        ([8], [9]),
        ([8], [6, 7]),
        ([3], [4, 5]),
        ([3], [1, 2]),
    ]
    again = source.examples([0, 1, 2, 3, 3, 2, 1, 0], np.random.default_rng(6))
    assert again == (ids, labels)  # deterministic given the generator


def test_a_corpus_without_two_consecutive_segments_in_a_document_is_refused():
    rows = [{"doc_id": "a", "input_ids": [1, 2], "sentence_spans": [[0, 2]]}, {"doc_id": "b", "input_ids": [3]}]
    with pytest.raises(DataError, match="none of the corpus's 2 documents has two consecutive sentences"):
        SentenceOrderPairs(rows)


def test_a_sentence_order_batch_is_cls_first_sep_second_with_token_types():
    source, tok = SentenceOrderPairs(_sentence_rows()), CharTokenizer()
    batch = next(task_batches(source, 4, 16, tok, [0, 0, 0]))
    assert batch["input_ids"].shape[0] == 4
    ids, labels = source.examples(
        np.random.default_rng([0, 0, 0, 0]).permutation(4)[:4], np.random.default_rng([0, 0, 0, 0, 0, 0])
    )
    for row, (a, b), label in zip(batch["input_ids"].tolist(), ids, labels):
        assert row[: 3 + len(a) + len(b)] == [1, *a, 2, *b, 2]  # CharTokenizer: [CLS] = 1, [SEP] = 2
    assert batch["labels"].tolist() == labels


def test_adding_sentence_order_leaves_the_other_tasks_batches_unchanged():
    """Task i's stream is seeded (*seed, i): appending a task draws nothing from the earlier tasks' generators."""
    rows = _rows()
    for r in rows:
        r["sentence_spans"] = [[0, 1]]
    rows[0]["input_ids"], rows[0]["sentence_spans"] = [100, 101], [[0, 1], [1, 2]]
    doc = AuxTaskConfig(name="doc", kind="same_document", micro_batch=2)
    order = AuxTaskConfig(name="order", kind="sentence_order", micro_batch=1)
    tok = CharTokenizer()
    alone = aux_batches([doc], build_sources([doc], rows, tok), tok, 2, 16, seed=[3, 0])
    both = aux_batches([doc, order], build_sources([doc, order], rows, tok), tok, 2, 16, seed=[3, 0])
    for _ in range(6):  # 3 epochs of same_document
        a, b = next(alone), next(both)
        assert list(b) == ["doc", "order"] and _equal(a["doc"], b["doc"])
