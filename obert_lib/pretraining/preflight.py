"""Checks of a pretraining run's inputs before any model, DeepSpeed or network work starts.

A corpus folder is what `obert preprocess` writes (tokenizer/ and shards/*.parquet); a missing one is a
UserError naming the key and the fix, never a lookup on the Hugging Face Hub. Each stage needs at least
one micro-batch per data-parallel rank of its sequences (packed ones when the stage packs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import UserError
from ..corpus.tokenizer import holds_tokenizer, load_saved_tokenizer
from ..masking import pack_rows
from .plan import PretrainConfig, StageConfig


def _fix(corpus_dir: Path) -> str:
    return (
        f"run `obert preprocess --output {corpus_dir}` first, or point corpus_dir at a corpus folder "
        f"(`obert pretrain --set corpus_dir=PATH`)"
    )


def check_corpus(corpus_dir: str | Path) -> Path:
    """The corpus folder, checked: it exists and holds tokenizer/ and shards/*.parquet (else a UserError)."""
    path = Path(corpus_dir)
    if not path.exists():
        raise UserError(f"corpus_dir: {path} does not exist; {_fix(path)}")
    if not path.is_dir():
        raise UserError(f"corpus_dir: {path} is a file, not a corpus folder; {_fix(path)}")
    tokenizer = path / "tokenizer"
    if not holds_tokenizer(tokenizer):
        raise UserError(
            f"corpus_dir: {path} has no tokenizer ({tokenizer}/tokenizer.json or vocab.txt), so it is not "
            f"a corpus folder written by `obert preprocess`; {_fix(path)}"
        )
    if not any((path / "shards").glob("*.parquet")):
        raise UserError(f"corpus_dir: {path}/shards holds no .parquet shards; {_fix(path)}")
    return path


def load_tokenizer(corpus_dir: Path):
    """The corpus tokenizer, from the local folder only (never the Hugging Face Hub)."""
    return load_saved_tokenizer(corpus_dir / "tokenizer")


def stage_room(stage: StageConfig) -> int:
    """Tokens of corpus text a stage's sequence holds: seq_len less [CLS]/[SEP] and the knowledge segment."""
    knowledge = stage.mask.knowledge.summary_budget + 1 if stage.mask.knowledge.enabled else 0
    return max(1, stage.seq_len - 2 - knowledge)


def stage_rows(rows: list[dict[str, Any]], stage: StageConfig) -> list[dict[str, Any]]:
    """The sequences a stage trains on: the paragraphs, or them packed up to stage_room."""
    return rows if stage.packing == "none" else list(pack_rows(rows, stage_room(stage), stage.packing))


def _fewest_packed(rows: list[dict[str, Any]], room: int) -> int:
    """A lower bound of the packed count: rows longer than room stay alone, the rest fill at most room each."""
    long = [len(r["input_ids"]) for r in rows if len(r["input_ids"]) > room]
    rest = sum(len(r["input_ids"]) for r in rows) - sum(long)
    return len(long) + -(-rest // room)


def check_stage_sizes(cfg: PretrainConfig, rows: list[dict[str, Any]], data_parallel_size: int) -> None:
    """Each stage has at least micro_batch x data_parallel_size sequences (else a UserError naming the stage)."""
    for i, stage in enumerate(cfg.stages):
        need = stage.micro_batch * data_parallel_size
        if stage.packing == "none" or _fewest_packed(rows, stage_room(stage)) >= need:
            have = len(rows)
        else:
            have = sum(1 for _ in pack_rows(rows, stage_room(stage), stage.packing))
        if have >= need:
            continue
        what = (
            "paragraphs" if stage.packing == "none" else f"sequences packed ({stage.packing}) to {stage.seq_len} tokens"
        )
        ranks = f" x data_parallel_size {data_parallel_size}" if data_parallel_size > 1 else ""
        raise UserError(
            f"stages[{i}] ({stage.name}): the corpus gives {have} {what}, fewer than one micro-batch "
            f"(micro_batch {stage.micro_batch}{ranks} = {need}); lower stages[{i}].micro_batch (and global_batch) to "
            f"at most {max(1, have // data_parallel_size)}, use packing none, or preprocess a larger corpus "
            f"({cfg.corpus_dir})"
        )
