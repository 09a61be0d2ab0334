"""Optimisers for pretraining: LAMB (Motian's large-batch variant) and AdamW, with weight-decay param groups.

LAMB (You et al. 2020, "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes", Alg. 2)
is Adam with a per-layer trust ratio: each parameter tensor's step is rescaled so that its size is
proportional to the tensor's own norm. Motian's variant for huge batches adds two things that NVIDIA's
NVLAMB (the BERT recipe of DeepLearningExamples) also uses:

* gradient normalisation: all gradients are divided by their global L2 norm (over every parameter of
  every group) before the moment updates, so one outlier batch cannot blow up the moments;
* Adam bias correction of both moments (the LAMB paper's Algorithm 2 omits it).

One step, for a parameter tensor w with gradient g at step t (lr, betas b1/b2, eps, weight decay wd):

    g      <- g / ||G||                       (normalize_grad; ||G|| the global norm; skipped when 0)
    m      <- b1 m + (1 - b1) g
    v      <- b2 v + (1 - b2) g^2
    m_hat   = m / (1 - b1^t),  v_hat = v / (1 - b2^t)        (bias_correction)
    u       = m_hat / (sqrt(v_hat) + eps) + wd w               (weight decay decoupled from the gradient)
    phi     = ||w|| / ||u||   (1 when either norm is 0; at most max_trust)   (groups with trust_ratio)
    w      <- w - lr phi u

Biases and LayerNorm parameters sit in a group with weight_decay 0 and trust_ratio False (You et al.
exclude them from both; their norms say nothing about the layer's scale), built by `param_groups`.

Use with DeepSpeed. The trainer builds the optimiser and passes it as the client optimiser (on CUDA,
AdamW instead goes to DeepSpeed's fused Adam through an "optimizer" entry over `param_groups(model)`):

    optimizer = build_optimizer(model, stage.optimizer, stage.lr, stage.weight_decay)
    engine, optimizer, _, scheduler = deepspeed.initialize(model=model, optimizer=optimizer, config=ds_config)

with no "optimizer" key in `ds_config` (a client optimiser overrides it anyway) and the "scheduler" of
`plan.scheduler_config(stage)`, which DeepSpeed builds around the client optimiser. Two DeepSpeed facts:

* ZeRO stages 1-3 hand the wrapped optimiser flat partitions of each param group (one tensor mixing
  many layers, cut at rank boundaries), not the parameter tensors, so a per-tensor trust ratio is no
  longer per layer and changes with the data-parallel size. LAMB therefore needs ZeRO stage 0
  (plain data parallel: gradients all-reduced, every rank holds whole tensors); `plan.validate` rejects
  LAMB with ZeRO > 0. fp16 and bf16 at ZeRO 0 wrap a client optimiser in FP16_UnfusedOptimizer, which
  keeps one fp32 master copy per tensor, so the trust ratio stays per layer. AdamW has no per-tensor
  quantity and works with every ZeRO stage (torch.optim.AdamW is on DeepSpeed's ZeRO-supported list;
  Lamb is not, DeepSpeed would ask for "zero_allow_untested_optimizer").
* DeepSpeed's fused LAMB (deepspeed.ops.lamb.FusedLamb, CUDA only, built from the FusedLambBuilder op):
  give no client optimiser and put `"optimizer": {"type": "Lamb", "params": {"lr": ..., "weight_decay":
  0.01, "bias_correction": true, "max_coeff": 10.0, "min_coeff": 0.01}}` in the config. DeepSpeed then
  requires fp16 with dynamic loss scaling (it asserts so; no bf16, no fp32), ZeRO stage 0, and a CUDA
  toolchain where the op builds (`ds_report` shows fused_lamb as compatible). It clips the global
  gradient norm (max_grad_norm) rather than normalising it, clamps the trust ratio to [min_coeff,
  max_coeff] for every tensor, biases and LayerNorm included, and only excludes them from weight decay
  when `model_parameters=param_groups(model, wd)` is passed to deepspeed.initialize. The trainer should
  prefer this module's `Lamb` (the same update on CPU and GPU, under fp32/bf16/fp16, with the
  exclusions and the normalisation above): the optimiser step is a few memory-bound passes over the
  parameters while forward and backward cost ~6 x parameters x tokens FLOPs, so a fused kernel saves
  little at BERT batch sizes. Switch to the fused op only on CUDA + fp16 when a profile shows the
  optimiser step matters.
"""

from __future__ import annotations

from typing import Iterable, Literal

import torch
from torch import nn

# Module types whose parameters (scale and shift) get no weight decay and no trust ratio.
_NORMS = (
    nn.LayerNorm,
    nn.GroupNorm,
    nn.modules.batchnorm._BatchNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)


def trust_ratio(
    weight_norm: float | torch.Tensor, update_norm: float | torch.Tensor, max_trust: float | None = 10.0
) -> torch.Tensor:
    """LAMB's phi = ||w|| / ||u||; 1 when either norm is 0 (a fresh zero tensor, or no update); at most max_trust."""
    w = torch.as_tensor(weight_norm)
    w = w if w.is_floating_point() else w.float()
    u = torch.as_tensor(update_norm, dtype=w.dtype, device=w.device)
    ratio = torch.where((w > 0) & (u > 0), w / torch.where(u > 0, u, torch.ones_like(u)), torch.ones_like(w))
    if max_trust is not None:
        ratio = ratio.clamp(max=max_trust)
    return ratio


class Lamb(torch.optim.Optimizer):
    """LAMB with global gradient normalisation, Adam bias correction and a clamped per-tensor trust ratio.

    Group options: lr, betas, eps, weight_decay, trust_ratio (False for biases/LayerNorm), max_trust,
    bias_correction. `normalize_grad` is global (one norm over every group), so it is not per group.
    Pure torch, one tensor at a time: runs on CPU and GPU, with fp32 master weights (DeepSpeed's fp16/bf16
    wrappers hand it fp32 copies).
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.01,
        normalize_grad: bool = True,
        bias_correction: bool = True,
        max_trust: float | None = 10.0,
        trust_ratio: bool = True,
    ):
        if lr < 0:
            raise ValueError(f"lr {lr} must be >= 0")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"betas {betas} must be within [0, 1)")
        if eps < 0 or weight_decay < 0:
            raise ValueError(f"eps ({eps}) and weight_decay ({weight_decay}) must be >= 0")
        if max_trust is not None and max_trust <= 0:
            raise ValueError(f"max_trust {max_trust} must be > 0, or None for no clamp")
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            bias_correction=bias_correction,
            max_trust=max_trust,
            trust_ratio=trust_ratio,
        )
        super().__init__(params, defaults)
        self.normalize_grad = normalize_grad

    def global_grad_norm(self) -> torch.Tensor:
        """L2 norm of all gradients of all groups (fp32), the quantity `normalize_grad` divides by."""
        norms = [
            p.grad.detach().to(torch.promote_types(p.grad.dtype, torch.float32)).norm()
            for g in self.param_groups
            for p in g["params"]
            if p.grad is not None
        ]
        if not norms:
            return torch.zeros(())
        dtype = torch.float64 if any(n.dtype == torch.float64 for n in norms) else torch.float32
        return torch.stack([n.to(device=norms[0].device, dtype=dtype) for n in norms]).norm()

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        scale = None
        if self.normalize_grad:
            total = self.global_grad_norm()
            scale = torch.where(
                total > 0, 1.0 / torch.where(total > 0, total, torch.ones_like(total)), torch.ones_like(total)
            )
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Lamb does not support sparse gradients")
                dtype = torch.promote_types(p.dtype, torch.float32)  # fp16/bf16 -> fp32; fp64 stays fp64
                grad = p.grad.to(dtype)
                if scale is not None:
                    grad = grad * scale.to(device=grad.device, dtype=dtype)
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)
                state["step"] += 1
                t = state["step"]
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                if group["bias_correction"]:
                    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
                else:
                    m_hat, v_hat = m, v
                weight = p.to(dtype)
                update = m_hat / (v_hat.sqrt() + group["eps"])
                if group["weight_decay"]:
                    update = update.add(weight, alpha=group["weight_decay"])
                if group["trust_ratio"]:
                    phi = trust_ratio(weight.norm(), update.norm(), group["max_trust"])
                    update = update * phi
                p.add_(update.to(p.dtype), alpha=-group["lr"])
        return loss


def param_groups(model: nn.Module, weight_decay: float, trust_key: bool = False) -> list[dict]:
    """Two groups: matrices (decayed) and biases / norm scales / other 1-D tensors (no decay).

    With `trust_key`, the second group also carries trust_ratio=False (Lamb's option; torch.optim
    optimisers keep extra group keys but do not read them, so it is only set for Lamb).
    Tied parameters appear once; frozen ones (requires_grad False) not at all.
    """
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (no_decay if isinstance(module, _NORMS) or name == "bias" or p.ndim < 2 else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if trust_key:
        groups[0]["trust_ratio"], groups[1]["trust_ratio"] = True, False
    return [g for g in groups if g["params"]]


def build_optimizer(
    model: nn.Module,
    name: Literal["adamw", "lamb"] = "adamw",
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    betas: Iterable[float] = (0.9, 0.999),
    eps: float | None = None,
    groups: list[dict] | None = None,
    **lamb_options,
) -> torch.optim.Optimizer:
    """The optimiser of a stage, over `param_groups(model)` (no decay for biases and LayerNorm weights).

    name "adamw": torch.optim.AdamW (eps default 1e-8); "lamb": `Lamb` (eps default 1e-6, as You et al.
    use for BERT; `lamb_options`: normalize_grad, bias_correction, max_trust). `groups`: parameter groups to
    use instead of `param_groups(model)` (multitask.param_groups: the s_i in a group of their own). Pass the
    result to `deepspeed.initialize(optimizer=...)`.
    """
    betas = tuple(float(b) for b in betas)
    if name == "adamw":
        if lamb_options:
            raise ValueError(f"options {sorted(lamb_options)} are LAMB's; drop them for adamw")
        return torch.optim.AdamW(
            groups if groups is not None else param_groups(model, weight_decay),
            lr=lr,
            betas=betas,
            eps=1e-8 if eps is None else eps,
            weight_decay=weight_decay,
        )
    if name == "lamb":
        return Lamb(
            groups if groups is not None else param_groups(model, weight_decay, trust_key=True),
            lr=lr,
            betas=betas,
            eps=1e-6 if eps is None else eps,
            weight_decay=weight_decay,
            **lamb_options,
        )
    raise ValueError(f"optimizer {name!r} is unknown; use 'adamw' or 'lamb'")
