"""The fine-tuned model: a pretrained encoder (ours or BERT layout) with one task head, saved and loaded as one.

Heads by task kind (shapes: B batch, C classes or choices, T tokens, H hidden):
- classification / pair: the [CLS] vector -> dropout -> linear: logits [B, C] (Multi-Sample Dropout optional);
- multiple_choice: each choice encoded alone, [CLS] -> linear -> one score: logits [B, C] (one shared head);
- tagging: every token -> dropout -> linear: logits [B, T, C].
An optional lexical head tags word boundaries on the same hidden states (an auxiliary loss).
Checkpoint layout (`save` / `load`): model.safetensors (keys `encoder.*`, `head.*`, `lexical_head.*`),
config.json (the encoder's), tokenizer files, finetune.json (kind, labels, head settings).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .. import model as _registers_obert  # noqa: F401  (registers 'obert' with the Auto classes)
from ..results import write_text_atomic
from .heads import MultiSampleDropoutClassifier, TokenTaggingHead
from .lexical import lexical_tag_names

FINETUNE_FILE = "finetune.json"


@dataclass
class Output:
    logits: torch.Tensor  # [B, C] or [B, T, C]
    loss: torch.Tensor  # scalar: task loss (+ weighted lexical loss)
    task_loss: torch.Tensor


class FinetuneModel(nn.Module):
    """Encoder + task head (+ lexical head). forward(batch) -> Output; batch tensors as `encoding.encode` makes."""

    def __init__(self, encoder: nn.Module, kind: str, num_labels: int, dropout: float, msd=None, lexical=None):
        super().__init__()
        self.encoder, self.kind, self.num_labels = encoder, kind, num_labels
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.msd_samples = msd.k if msd is not None and msd.enabled else 0
        if self.msd_samples and kind in ("classification", "pair"):
            self.head = MultiSampleDropoutClassifier(hidden, num_labels, k=msd.k, p=msd.p)
        else:
            self.msd_samples = 0
            self.head = nn.Linear(hidden, 1 if kind == "multiple_choice" else num_labels)
        self.lexical_weight = lexical.weight if lexical is not None and lexical.enabled else 0.0
        tags = len(lexical_tag_names(lexical.kind)) if self.lexical_weight else 0  # B/I, or the segmenter's POS tags
        self.lexical_head = TokenTaggingHead(hidden, tags) if self.lexical_weight else None

    def get_input_embeddings(self) -> nn.Embedding:
        return self.encoder.get_input_embeddings()

    def encode(self, batch: dict) -> torch.Tensor:
        """Last hidden states [N, T, H] (multiple choice: N = B * C)."""
        ids = batch["input_ids"]
        flat = ids.dim() == 3
        keys = ("input_ids", "attention_mask", "token_type_ids")
        inputs = {k: (batch[k].flatten(0, 1) if flat else batch[k]) for k in keys if k in batch}
        return self.encoder(**inputs)[0]

    def forward(self, batch: dict) -> Output:
        hidden = self.encode(batch)
        labels = batch.get("labels")
        if self.kind == "tagging":
            logits = self.head(self.dropout(hidden))  # [B, T, C]
            task_loss = _ce(logits.flatten(0, 1), labels.flatten()) if labels is not None else logits.new_zeros(())
        elif self.kind == "multiple_choice":
            b, c = batch["input_ids"].shape[:2]
            logits = self.head(self.dropout(hidden[:, 0])).view(b, c)  # [B, C]
            if "choice_mask" in batch:
                logits = logits.masked_fill(~batch["choice_mask"].bool(), torch.finfo(logits.dtype).min)
            task_loss = _ce(logits, labels) if labels is not None else logits.new_zeros(())
        elif self.msd_samples:
            logits, task_loss = self.head(hidden[:, 0], labels)
            task_loss = task_loss if task_loss is not None else logits.new_zeros(())
        else:
            logits = self.head(self.dropout(hidden[:, 0]))  # [B, C]
            task_loss = _ce(logits, labels) if labels is not None else logits.new_zeros(())
        loss = task_loss
        if self.lexical_head is not None and "lexical_labels" in batch and self.training:
            _, lexical_loss = self.lexical_head(hidden, batch["lexical_labels"])
            loss = task_loss + self.lexical_weight * lexical_loss
        return Output(logits=logits, loss=loss, task_loss=task_loss)


def _ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), labels, ignore_index=-100)


def build(checkpoint: str | Path, kind: str, num_labels: int, dropout: float, msd=None, lexical=None) -> FinetuneModel:
    """A FinetuneModel over the encoder weights of `checkpoint` (pretraining stage, BERT checkpoint or a model
    fine-tuned here); the task head starts fresh (seeded by the caller's torch RNG)."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as hf_logging

    path = Path(checkpoint)
    if (path / FINETUNE_FILE).is_file():  # a model fine-tuned here: its encoder weights are saved under encoder.*
        encoder = AutoModel.from_config(
            AutoConfig.from_pretrained(path, local_files_only=True), add_pooling_layer=False
        )
        state = load_file(path / "model.safetensors")
        encoder.load_state_dict({k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")})
        model = FinetuneModel(encoder, kind, num_labels, dropout, msd, lexical)
        own = model.state_dict()  # the heads continue too where their names and shapes match (same task)
        model.load_state_dict({k: v for k, v in state.items() if k in own and own[k].shape == v.shape}, strict=False)
        return model
    import logging

    ours = logging.getLogger("obert_lib.model.modeling")
    verbosity, level = hf_logging.get_verbosity(), ours.level
    hf_logging.set_verbosity_error()  # unused MLM-head weights and a missing pooler are expected here
    ours.setLevel(logging.ERROR)  # (a mismatch of the encoder's own weights still raises)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # one "Loading weights" bar per run clutters notebooks and ablations
    try:
        encoder = AutoModel.from_pretrained(checkpoint, local_files_only=True, add_pooling_layer=False)
    finally:
        hf_logging.set_verbosity(verbosity)
        ours.setLevel(level)
        if bars:
            hf_logging.enable_progress_bar()
    return FinetuneModel(encoder, kind, num_labels, dropout, msd, lexical)


def save(model: FinetuneModel, tokenizer, folder: Path, labels: list[str], extra: dict) -> Path:
    """Write the model (safetensors), the encoder config, the tokenizer and finetune.json into `folder`,
    through a temporary folder and a rename so a crash never leaves half a checkpoint."""
    import shutil

    from safetensors.torch import save_file

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, tmp / "model.safetensors")
    model.encoder.config.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    lexical = model.lexical_head.num_tags if model.lexical_head is not None else 0
    info = {"kind": model.kind, "labels": labels, "lexical": lexical, **extra}
    write_text_atomic(tmp / FINETUNE_FILE, json.dumps(info, ensure_ascii=False, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def load(folder: str | Path) -> tuple[FinetuneModel, dict]:
    """A model saved by `save` (weights exactly as saved) and its finetune.json."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel

    folder = Path(folder)
    info = json.loads((folder / FINETUNE_FILE).read_text(encoding="utf-8"))
    encoder = AutoModel.from_config(AutoConfig.from_pretrained(folder, local_files_only=True), add_pooling_layer=False)
    msd = _Switch(info.get("msd_k", 0), info.get("msd_p", 0.0))
    tags = int(info.get("lexical") or 0)
    lexical = _Switch(1, 0.0, weight=1.0, kind="boundary" if tags == 2 else "pos") if tags else None
    model = FinetuneModel(encoder, info["kind"], len(info["labels"]), 0.0, msd if msd.k else None, lexical)
    model.load_state_dict(load_file(folder / "model.safetensors"))
    return model.eval(), info


@dataclass
class _Switch:
    k: int
    p: float
    weight: float = 0.0
    enabled: bool = True
    kind: str = "boundary"
