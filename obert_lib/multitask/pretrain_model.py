"""The masked LM with auxiliary-task heads and learned uncertainty weights: what the engine trains.

MLM and every auxiliary task share the encoder; each task has a pooled-[CLS] head (BERT's pooler, dense +
tanh on [CLS], then dropout and a linear layer). The losses [L_mlm, L_1, ...] are combined by
UncertaintyWeighting (Kendall, Gal and Cipolla 2018; or Liebel and Körner 2018), so the module holds the s_i.

Checkpoints: `save_pretrained` writes the inner masked LM exactly as a plain run does (model.safetensors and
config.json: fine-tuning and zero-shot load it unchanged, no key renames) and, beside it, the heads and s_i
(multitask.safetensors, which transformers ignores) that the next stage warm-starts from. DeepSpeed's own
state (resume points) holds this whole module, so a resumed run has the heads and s_i it stopped with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from .config import AuxTaskConfig
from .uncertainty import UncertaintyWeighting

STATE_FILE = "multitask.safetensors"  # heads and s_i beside a stage checkpoint's model.safetensors
INFO_FILE = "multitask.json"  # task names, output sizes and the weighting method, to check a warm start


class AuxHead(nn.Module):
    """Pooled [CLS] (dense + tanh, as BERT's pooler) -> dropout -> linear to `outputs`."""

    def __init__(self, hidden: int, outputs: int, dropout: float, init_range: float):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, outputs)
        for layer in (self.dense, self.out):  # BERT's init: N(0, initializer_range) weights, zero biases
            nn.init.normal_(layer.weight, std=init_range)
            nn.init.zeros_(layer.bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """hidden_states [B, T, H] -> logits [B, outputs]."""
        return self.out(self.dropout(torch.tanh(self.dense(hidden_states[:, 0]))))


@dataclass
class MultitaskOutput(ModelOutput):
    """loss: the weighted total (what is backpropagated); logits / mlm_loss: the MLM's; task_losses, weights,
    log_vars: (n_tasks,) fp32, detached, in `task_names` order (mlm first)."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    mlm_loss: torch.Tensor | None = None
    task_losses: torch.Tensor | None = None
    weights: torch.Tensor | None = None
    log_vars: torch.Tensor | None = None


class MultitaskPretrainModel(nn.Module):
    """`forward(mlm=batch, aux={task: batch})` -> MultitaskOutput; `lm` is the plain masked LM."""

    def __init__(self, lm: nn.Module, tasks: Sequence[AuxTaskConfig], method: str = "kendall"):
        super().__init__()
        self.lm = lm
        self.tasks = list(tasks)
        cfg = lm.config
        dropout = getattr(cfg, "classifier_dropout", None)
        dropout = cfg.hidden_dropout_prob if dropout is None else dropout
        self.heads = nn.ModuleDict(
            {t.name: AuxHead(cfg.hidden_size, t.outputs, dropout, cfg.initializer_range) for t in self.tasks}
        )
        self.weighting = UncertaintyWeighting(
            self.task_names, ["classification"] + [t.loss for t in self.tasks], method
        )

    @property
    def task_names(self) -> list[str]:
        return ["mlm"] + [t.name for t in self.tasks]

    @property
    def config(self):
        return self.lm.config

    def get_input_embeddings(self) -> nn.Module:
        return self.lm.get_input_embeddings()

    def forward(self, mlm: dict[str, torch.Tensor], aux: dict[str, dict[str, torch.Tensor]]) -> MultitaskOutput:
        out = self.lm(**mlm)
        losses = [out.loss]
        for task in self.tasks:
            batch = aux[task.name]
            enc = self.lm.bert(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                token_type_ids=batch["token_type_ids"],
            )
            logits = self.heads[task.name](enc.last_hidden_state).float()  # the loss in fp32 under fp16/bf16
            if task.loss == "regression":
                losses.append(F.mse_loss(logits.squeeze(-1), batch["labels"].float()))
            else:
                losses.append(F.cross_entropy(logits, batch["labels"]))
        weighted = self.weighting(losses)
        return MultitaskOutput(
            loss=weighted.total,
            logits=out.logits,
            mlm_loss=out.loss,
            task_losses=weighted.losses,
            weights=weighted.weights,
            log_vars=weighted.log_vars,
        )

    def aux_state(self) -> dict[str, torch.Tensor]:
        """The heads' weights and the s_i (everything but the masked LM), as contiguous CPU copies."""
        return {
            k: v.detach().cpu().contiguous().clone() for k, v in self.state_dict().items() if not k.startswith("lm.")
        }

    def save_pretrained(self, path: str | Path, **kwargs) -> None:
        """The masked LM as a plain HF folder (kwargs go to its save_pretrained), plus multitask.safetensors/.json."""
        from safetensors.torch import save_file

        path = Path(path)
        self.lm.save_pretrained(path, **kwargs)
        save_file(self.aux_state(), str(path / STATE_FILE))
        (path / INFO_FILE).write_text(json.dumps(self.info(), indent=1), encoding="utf-8")

    def info(self) -> dict:
        return {
            "tasks": {t.name: t.outputs for t in self.tasks},
            "method": self.weighting.method,
            "kinds": dict(zip(self.task_names, self.weighting.kinds)),
        }

    def load_aux_state(self, path: str | Path) -> None:
        """Heads and s_i from a stage checkpoint written by save_pretrained (the next stage's warm start).

        FileNotFoundError when the folder holds none; ValueError when its tasks or method differ.
        """
        from safetensors.torch import load_file

        path = Path(path)
        if not (path / STATE_FILE).is_file():
            raise FileNotFoundError(f"{path / STATE_FILE} is missing: the checkpoint was trained without aux tasks")
        saved = json.loads((path / INFO_FILE).read_text(encoding="utf-8"))
        if saved != self.info():
            raise ValueError(f"{path}: aux tasks {saved} differ from this run's {self.info()}")
        state = load_file(str(path / STATE_FILE))
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("lm.")]
        if missing or unexpected:
            raise ValueError(f"{path / STATE_FILE}: missing {missing}, unexpected {unexpected}")
