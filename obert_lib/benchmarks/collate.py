"""`obert bench collate`: sequences/s of our masking collator per strategy vs transformers' token-level collator."""

from __future__ import annotations

import itertools
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..masking import STRATEGIES, KnowledgeSegments, MaskConfig, MaskingCollator, pack_rows
from ..masking.corpus_files import corpus_tokenizer
from ..paths import shared_data_dir

HF = "hf token-level"
LENGTHS = (128, 512)
FEWCLUE_INPUTS = ("fewclue/tnews/unlabeled.json", "fewclue/eprstmt/unlabeled.json")


@dataclass
class CollateRow:
    """One collator at one sequence length: the sum over the batches of each batch's best time."""

    config: str
    length: int
    sequences: int  # sequences collated per timed repetition
    seconds: float  # sum of per-batch best times
    vs_hf: float = 1.0  # this seq/s over the HF token-level collator's seq/s at the same length

    @property
    def seq_per_s(self) -> float:
        return self.sequences / self.seconds


def mask_configs(knowledge: bool = True) -> dict[str, MaskConfig]:
    """Every strategy, a mixture, knowledge masking (entity + K_w) and synonym replacement (word + sample lexicon)."""
    configs = {s: MaskConfig(strategy=s) for s in STRATEGIES}
    configs["mixture"] = MaskConfig(mixture={"word": 0.4, "phrase": 0.3, "clause": 0.3})
    if knowledge:
        configs["knowledge"] = MaskConfig(strategy="entity", knowledge={"enabled": True})
    configs["synonym"] = MaskConfig(strategy="word", synonym={"enabled": True})
    return configs


def fewclue_corpus(out_dir: Path) -> str:
    """Build a corpus (sample KB linked) from the shared FewCLUE unlabeled texts, else the embedded sample; its name."""
    from .. import corpus

    runtime = corpus.CorpusRuntime(progress=False, workers=2)
    root = shared_data_dir()
    inputs = [root / p for p in FEWCLUE_INPUTS]
    vocab = root / "vocab" / "bert-base-chinese-vocab.txt"
    if all(p.is_file() for p in inputs) and vocab.is_file():
        corpus.run(
            {
                "inputs": [str(p) for p in inputs],
                "text_key": "sentence",
                "output_dir": str(out_dir),
                "tokenizer": {"vocab_file": str(vocab)},
                "quality": {"min_cjk_chars": 8},
            },
            runtime,
        )
        return "shared FewCLUE tnews + eprstmt unlabeled, Chinese BERT vocab, sample KB"
    print(f"note: shared FewCLUE data not found under {root}; benchmarking the embedded sample corpus")
    corpus.run({"output_dir": str(out_dir)}, runtime)
    return "the embedded sample corpus"


def _batches(rows: list[dict[str, Any]], length: int, batches: int, batch_size: int) -> list[list[dict[str, Any]]]:
    """`batches` batches of rows packed to ~length tokens; rows repeat when the corpus has too few."""
    packed = list(pack_rows(rows, length - 2))  # 2: [CLS] and [SEP]
    stream = itertools.cycle(packed)
    return [[next(stream) for _ in range(batch_size)] for _ in range(batches)]


def _time(collate: Callable, batches: Sequence[list]) -> list[float]:
    """Wall seconds of each batch."""
    out = []
    for b in batches:
        t0 = time.perf_counter()
        collate(b)
        out.append(time.perf_counter() - t0)
    return out


def run(
    corpus_dir: str | Path | None = None,
    batches: int = 20,
    repeats: int = 5,
    seed: int = 0,
    batch_size: int = 64,
    lengths: Sequence[int] = LENGTHS,
) -> list[CollateRow]:
    """Time every mask config and HF's DataCollatorForLanguageModeling on the same packed inputs; print a table.

    Per length: one warm-up call each, then `repeats` rounds in which every collator in turn (order
    rotated per round) collates the same batches; each batch counts with its best round (robust to
    other processes taking the core for a while). Ends with `ratio: <slowest of ours / HF>`.
    """
    from transformers import DataCollatorForLanguageModeling

    from ..corpus import load_shards

    tmp = None
    threads = torch.get_num_threads()
    try:
        if corpus_dir is None:
            tmp = Path(tempfile.mkdtemp(prefix="obert-bench-collate-"))
            corpus_dir = tmp / "corpus"
            source = fewclue_corpus(corpus_dir)
        else:
            corpus_dir = Path(corpus_dir)
            source = str(corpus_dir)
        tokenizer = corpus_tokenizer(corpus_dir)
        rows = load_shards(corpus_dir).to_pylist()
        try:
            knowledge = KnowledgeSegments.from_corpus(corpus_dir, tokenizer)
        except ValueError:
            knowledge = None
            print("note: the corpus has no knowledge_base, so knowledge masking is left out")
        configs = mask_configs(knowledge is not None)
        torch.set_num_threads(1)
        torch.manual_seed(seed)
        print(f"corpus: {source} ({len(rows)} paragraphs)")
        print(
            f"batch {batch_size}, {batches} batches per round, each batch's best of {repeats} rounds; "
            "1 thread (torch.set_num_threads(1)), as in one DataLoader worker"
        )
        legend = [f"mixture = {configs['mixture'].label}", "synonym = word + sample lexicon"]
        if knowledge is not None:
            legend.insert(1, f"knowledge = entity + K_w (<= {configs['knowledge'].knowledge.summary_budget} tokens)")
        print("; ".join(legend) + f"; {HF} = transformers DataCollatorForLanguageModeling(mlm_probability=0.15)")
        results: list[CollateRow] = []
        for length in lengths:
            ours_in = _batches(rows, length, batches, batch_size)
            # HF gets the same ids as lists, with the special tokens a tokenizer would add, cut to `length`.
            hf_in = [
                [
                    {"input_ids": [tokenizer.cls_token_id, *r["input_ids"][: length - 2], tokenizer.sep_token_id]}
                    for r in b
                ]
                for b in ours_in
            ]
            collators: dict[str, tuple[Callable, list]] = {
                HF: (
                    DataCollatorForLanguageModeling(
                        tokenizer, mlm=True, mlm_probability=0.15, return_tensors="pt", seed=seed
                    ),
                    hf_in,
                )
            }
            for name, cfg in configs.items():
                collators[name] = (MaskingCollator(tokenizer, cfg, length, seed=seed, knowledge=knowledge), ours_in)
            for collate, inputs in collators.values():
                collate(inputs[0])  # warm-up: lazy RNGs, lexicon tables, first-call allocations
            names = list(collators)
            best = {name: [float("inf")] * batches for name in names}
            for k in range(repeats):
                for name in names[k % len(names) :] + names[: k % len(names)]:
                    collate, inputs = collators[name]
                    best[name] = [min(a, b) for a, b in zip(best[name], _time(collate, inputs))]
            mean_tokens = sum(min(len(r["input_ids"]), length - 2) + 2 for b in ours_in for r in b) / (
                batches * batch_size
            )
            print(
                f"\nlength {length}: packed sequences of {mean_tokens:.0f} tokens on average ([CLS] ids [SEP]; "
                "knowledge masking shortens the context to fit K_w)"
            )
            print(f"{'config':16s} {'length':>6s} {'seq/s':>9s} {'vs HF':>7s}")
            hf_rate = batches * batch_size / sum(best[HF])
            for name in names:
                row = CollateRow(name, length, batches * batch_size, sum(best[name]))
                row.vs_hf = row.seq_per_s / hf_rate
                results.append(row)
                print(f"{name:16s} {length:6d} {row.seq_per_s:9.0f} {row.vs_hf:6.2f}x")
        ours = [r for r in results if r.config != HF]
        slowest = min(ours, key=lambda r: r.vs_hf)
        print(f"\nslowest of ours: {slowest.config} at length {slowest.length}")
        print(f"ratio: {slowest.vs_hf:.2f}")
        return results
    finally:
        torch.set_num_threads(threads)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
