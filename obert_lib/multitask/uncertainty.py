"""Task losses combined by learned uncertainty: one log-variance s_i = log σ_i² per task.

Kendall, Gal and Cipolla 2018 ("Multi-Task Learning Using Uncertainty to Weigh Losses", CVPR), eqs. 7 and 10
with the usual s_i = log σ_i² reparametrisation (numerically stable, unconstrained):
    classification   exp(−s_i)·L_i + s_i/2
    regression       0.5·exp(−s_i)·L_i + s_i/2
Liebel and Körner 2018 ("Auxiliary Tasks in Multi-task Learning", arXiv:1805.06334), the same for every task:
    liebel           L_i/(2σ_i²) + log(1 + σ_i²)  =  0.5·exp(−s_i)·L_i + softplus(s_i)
Kendall's s_i/2 regulariser is unbounded below, so a task whose loss tends to 0 drives s_i to −∞ and its
weight exp(−s_i) to infinity; log(1 + σ²) > 0 stops that (the reason the issue asks for the option).

The s_i are fp32 and start at 0 (σ_i² = 1: every weight starts at the plain-sum value, 1 or 0.5). Keep them
outside weight decay: decaying them pulls every σ_i² towards 1, a prior nobody chose (`param_groups`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

Kind = Literal["classification", "regression"]
METHODS = ("kendall", "liebel")


@dataclass
class WeightedLoss:
    total: torch.Tensor  # () fp32: Σ_i weight_i·L_i + reg(s_i), differentiable w.r.t. the losses and the s_i
    weights: torch.Tensor  # (n_tasks,) fp32, detached: the factor in front of each L_i (exp(−s_i) or 0.5·exp(−s_i))
    losses: torch.Tensor  # (n_tasks,) fp32, detached: the unweighted task losses as given
    log_vars: torch.Tensor  # (n_tasks,) fp32, detached: the s_i used

    def metrics(self, names: Sequence[str]) -> dict[str, float]:
        """One flat row for metrics.csv / TensorBoard: loss/<task>, weight/<task>, log_var/<task>, loss/total."""
        row = {"loss/total": float(self.total.detach())}
        for i, name in enumerate(names):
            row[f"loss/{name}"] = float(self.losses[i])
            row[f"weight/{name}"] = float(self.weights[i])
            row[f"log_var/{name}"] = float(self.log_vars[i])
        return row


class UncertaintyWeighting(nn.Module):
    """Learned per-task weights: `forward([L_1, ..., L_n]) -> WeightedLoss`.

    tasks: task names (their order is the order of the losses); kinds: "classification" or "regression" per
    task (Kendall's 1 or 0.5 factor; default all classification; ignored by "liebel", which uses 0.5 for all);
    method: "kendall" or "liebel". Parameter `log_vars`: (n_tasks,) fp32, initialised at 0.
    """

    def __init__(self, tasks: Sequence[str], kinds: Sequence[Kind] | None = None, method: str = "kendall"):
        super().__init__()
        tasks = list(tasks)
        if not tasks or len(set(tasks)) != len(tasks):
            raise ValueError(f"tasks: need one or more distinct task names, got {tasks}")
        kinds = list(kinds) if kinds is not None else ["classification"] * len(tasks)
        if len(kinds) != len(tasks):
            raise ValueError(f"kinds: {len(kinds)} kinds for {len(tasks)} tasks; give one per task")
        bad = [k for k in kinds if k not in ("classification", "regression")]
        if bad:
            raise ValueError(f"kinds: {bad} unknown; use 'classification' or 'regression'")
        if method not in METHODS:
            raise ValueError(f"method: {method!r} unknown; use one of {METHODS}")
        self.tasks, self.kinds, self.method = tasks, kinds, method
        # factor in front of exp(−s_i)·L_i: 1 for Kendall's classification, 1/2 for regression and for Liebel
        factor = [1.0 if (method == "kendall" and k == "classification") else 0.5 for k in kinds]
        self.register_buffer("factor", torch.tensor(factor, dtype=torch.float32), persistent=False)
        self.log_vars = nn.Parameter(torch.zeros(len(tasks), dtype=torch.float32))

    def _apply(self, fn, recurse=True):
        """Moves follow the model (device), but the s_i and factors stay fp32 under .half()/.bfloat16()."""
        super()._apply(fn, recurse)
        self.log_vars.data = self.log_vars.data.float()
        self.factor = self.factor.float()
        return self

    def forward(self, losses: Sequence[torch.Tensor] | torch.Tensor) -> WeightedLoss:
        """losses: n scalar tensors (any float dtype) or one (n,) tensor, in `tasks` order."""
        stacked = losses if isinstance(losses, torch.Tensor) else torch.stack([torch.as_tensor(x) for x in losses])
        if stacked.shape != (len(self.tasks),):
            raise ValueError(
                f"expected {len(self.tasks)} scalar losses ({self.tasks}), got shape {tuple(stacked.shape)}"
            )
        stacked = stacked.float()
        s = self.log_vars.float()
        weights = self.factor * torch.exp(-s)
        reg = F.softplus(s) if self.method == "liebel" else 0.5 * s  # log(1 + σ²) or log σ = s/2
        total = (weights * stacked + reg).sum()
        # a copy of the s_i: the parameter itself changes in place at the optimiser step (and ZeRO-3 frees it)
        return WeightedLoss(total, weights.detach(), stacked.detach(), s.detach().clone())


def param_groups(
    model: nn.Module, weighting: UncertaintyWeighting, weight_decay: float, trust_key: bool = False
) -> list[dict]:
    """The model's usual groups (pretraining.optim.param_groups) plus one group holding the s_i, with weight
    decay 0 (and trust_ratio False with `trust_key`, for LAMB: a 0-initialised vector has no trust ratio).
    The weighting may or may not be a submodule of `model`; its s_i appear only in their own group."""
    from ..pretraining.optim import param_groups as model_groups

    own = {id(p) for p in weighting.parameters()}
    groups = []
    for group in model_groups(model, weight_decay, trust_key):
        group["params"] = [p for p in group["params"] if id(p) not in own]
        if group["params"]:
            groups.append(group)
    extra = {"params": [weighting.log_vars], "weight_decay": 0.0}
    if trust_key:
        extra["trust_ratio"] = False
    return groups + [extra]
