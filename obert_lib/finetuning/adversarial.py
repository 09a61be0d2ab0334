"""Adversarial training on the word-embedding OUTPUT (FGM, PGD), with one backward per optimiser step.

FGM: Miyato et al. 2017, "Adversarial Training Methods for Semi-Supervised Text Classification".
PGD: Madry et al. 2018, "Towards Deep Learning Models Resistant to Adversarial Attacks", in the form
used for BERT fine-tuning (e.g. Zhu et al. 2020, FreeLB, and competition code): K ascent steps of size
α on the embeddings, projected onto the ε ball; the final loss is clean + adversarial at r_K.

Why the output and not the weight: under DeepSpeed ZeRO-2/3 the embedding weight is partitioned and
its gradient freed after reduction, so the classic FGM, which reads `weight.grad` and adds to
`weight.data`, silently does nothing (DeepSpeed #5667, #6768). Here a forward hook on
`model.get_input_embeddings()` captures the embedding output e [B, T, H] of the clean forward,
g = ∂loss/∂e comes from `torch.autograd.grad` (no parameter `.grad` is touched), and a second forward
adds r [B, T, H] to e. The caller then runs ONE backward on the returned total (engine.backward(total)):
its parameter gradients are those of loss_clean + loss_adv, what the classic two-backward FGM accumulates.

Under DeepSpeed, build EmbeddingPerturbation(engine.module) and let forward() call the bare module: with
ZeRO 0/2 and one micro-batch per optimiser step (what finetuning.engines builds) the gradient-only passes
then never enter DeepSpeed's backward machinery, and the one engine.backward(total) of the step is its only
backward. (Calling engine(...) instead hooks its outputs so that torch.autograd.grad would run DeepSpeed's
backward prologue, which fails with nothing to reduce; ZeRO-3 with accumulation needs that path and is not
offered here, since steering it means reaching into DeepSpeed's private backward prologue.) Tested: ZeRO-2
gives the plain-PyTorch weights bit for bit.

Conventions: ‖g‖ is the L2 norm over the whole batch's embedding output [B, T, H] (the classic FGM
normalises the whole embedding-matrix gradient, not per example), computed in float32; r is added in the
embedding's dtype. Padding positions get no gradient when the attention mask hides them and the loss
ignores them, so r is zero there. A step whose gradient norm is 0, inf or NaN (e.g. an fp16 overflow) is
skipped: the clean loss is returned and
`perturbation.skips` counts it; for PGD a bad norm at any step skips the whole perturbation.

Cost per optimiser step: FGM 2 forwards + 1 autograd.grad + 1 backward; PGD(K) K+1 forwards, K
autograd.grad passes, 1 backward.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class AdversarialInfo:
    """What one adversarial step did (floats, for logging)."""

    loss_clean: float
    loss_adv: float | None  # None when skipped
    grad_norm: float  # ‖g‖ of the first (clean) gradient
    delta_norm: float  # ‖r‖ of the perturbation used (0.0 when skipped)
    forwards: int  # model forwards this step ran
    skipped: bool


class EmbeddingPerturbation:
    """Context manager owning a forward hook on `model.get_input_embeddings()`.

    While capturing, the hook keeps the embedding output e [B, T, H] of each forward (made a grad-requiring
    leaf when the embeddings are frozen); while `delta` is set, it returns e + delta. Outside an attack the
    hook changes nothing. Counters: `attacks` (perturbations applied), `skips` (bad gradient norms).
    """

    def __init__(self, model: torch.nn.Module):
        self.module = model.get_input_embeddings()
        self.delta: torch.Tensor | None = None
        self.last_delta: torch.Tensor | None = None  # the perturbation of the latest adversarial forward
        self.captured: torch.Tensor | None = None
        self._capture = False
        self._handle = None
        self.attacks = 0
        self.skips = 0

    def __enter__(self) -> EmbeddingPerturbation:
        if self._handle is None:
            self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Remove the hook and drop held tensors."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self.delta = self.captured = None
        self._capture = False

    def _hook(self, module, inputs, output):
        if self.delta is None and not self._capture:
            return None
        if self.delta is not None:
            if self.delta.shape != output.shape:
                raise RuntimeError(
                    f"adversarial perturbation shape {tuple(self.delta.shape)} != embedding output "
                    f"{tuple(output.shape)}: the forward must run the same batch each time"
                )
            output = output + self.delta.to(output.dtype)
        if self._capture:
            if self.captured is not None:
                raise RuntimeError("the word embedding ran twice in one forward; adversarial training needs once")
            if not output.requires_grad:  # frozen embeddings: differentiate w.r.t. the output itself
                output = output.detach().requires_grad_(True)
            self.captured = output
        return output

    def run(self, forward: Callable[[], torch.Tensor], delta: torch.Tensor | None, capture: bool) -> torch.Tensor:
        """forward() with the hook adding `delta` (None: nothing) and capturing e when `capture`."""
        if self._handle is None:
            raise RuntimeError("EmbeddingPerturbation is not active: use it as `with EmbeddingPerturbation(model):`")
        self.delta, self._capture, self.captured = delta, capture, None
        try:
            loss = forward()
        finally:
            self.delta, self._capture = None, False
        if capture and self.captured is None:
            raise RuntimeError("forward() did not run model.get_input_embeddings(); nothing to perturb")
        if delta is not None:
            self.last_delta = delta.detach()
        return loss

    def gradient(self, loss: torch.Tensor, retain_graph: bool, loss_scale: float = 1.0) -> torch.Tensor:
        """g = ∂(loss·loss_scale)/∂e [B, T, H] in float32 for the latest captured e; no parameter .grad touched."""
        if loss.dim() != 0:
            raise ValueError(f"forward() must return a scalar loss, got shape {tuple(loss.shape)}")
        (g,) = torch.autograd.grad(loss.float() * loss_scale, self.captured, retain_graph=retain_graph)
        self.captured = None
        return g.detach().float()

    def skip(
        self, forward: Callable[[], torch.Tensor], loss_clean: torch.Tensor, grad_norm: float, forwards: int
    ) -> tuple[torch.Tensor, AdversarialInfo]:
        """A skipped perturbation: (the clean loss, info), counted in `skips`."""
        self.skips += 1
        return loss_clean, AdversarialInfo(float(loss_clean.detach()), None, grad_norm, 0.0, forwards, True)


def _bad(norm: float) -> bool:
    return norm == 0.0 or not math.isfinite(norm)


def _check(epsilon: float, steps: int = 1, alpha: float = 1.0) -> None:
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise ValueError(f"epsilon: {epsilon} must be a finite number > 0")
    if not (alpha > 0 and math.isfinite(alpha)):
        raise ValueError(f"alpha: {alpha} must be a finite number > 0")
    if steps < 1:
        raise ValueError(f"steps: {steps} must be >= 1")


def fgm_loss(
    forward: Callable[[], torch.Tensor],
    perturbation: EmbeddingPerturbation,
    epsilon: float = 1.0,
    loss_scale: float = 1.0,
) -> tuple[torch.Tensor, AdversarialInfo]:
    """FGM: (loss_clean + loss(e + r), info) with r = ε·g/‖g‖, g = ∂loss_clean/∂e; call ONE backward on it.

    forward(): runs the model on the batch, returns the scalar loss. loss_scale multiplies the loss for the
    gradient only (e.g. the engine's current fp16 loss scale, against underflow in g); r does not depend
    on it. Cost: 2 forwards.
    """
    _check(epsilon)
    loss_clean = perturbation.run(forward, None, capture=True)
    g = perturbation.gradient(loss_clean, retain_graph=True, loss_scale=loss_scale)
    norm = torch.linalg.vector_norm(g).item()
    if _bad(norm):
        return perturbation.skip(forward, loss_clean, norm, forwards=1)
    r = g * (epsilon / norm)
    loss_adv = perturbation.run(forward, r, capture=False)
    perturbation.attacks += 1
    info = AdversarialInfo(
        float(loss_clean.detach()), float(loss_adv.detach()), norm, torch.linalg.vector_norm(r).item(), 2, False
    )
    return loss_clean + loss_adv, info


def project(r: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Π_{‖r‖≤ε}: r scaled back onto the ε ball (L2 over the whole tensor) when outside it."""
    norm = torch.linalg.vector_norm(r)
    return r * (epsilon / norm) if norm > epsilon else r


def pgd_loss(
    forward: Callable[[], torch.Tensor],
    perturbation: EmbeddingPerturbation,
    steps: int = 3,
    alpha: float = 0.3,
    epsilon: float = 1.0,
    loss_scale: float = 1.0,
) -> tuple[torch.Tensor, AdversarialInfo]:
    """PGD: (loss_clean + loss(e + r_K), info); call ONE backward on it.

    r_0 = 0, r_{k+1} = Π_{‖r‖≤ε}(r_k + α·g_k/‖g_k‖), g_k = ∂loss(e + r_k)/∂e (g_0 from the clean forward);
    intermediate gradients come from autograd.grad only. Cost: K+1 forwards (clean, K-1 ascent, final).
    """
    _check(epsilon, steps, alpha)
    loss_clean = perturbation.run(forward, None, capture=True)
    g = perturbation.gradient(loss_clean, retain_graph=True, loss_scale=loss_scale)
    first_norm = norm = torch.linalg.vector_norm(g).item()
    r = torch.zeros_like(g)
    for k in range(steps):
        if _bad(norm):
            return perturbation.skip(forward, loss_clean, first_norm, forwards=k + 1)
        r = project(r + g * (alpha / norm), epsilon)
        if k + 1 < steps:  # ascent forward at r_{k+1}: only its gradient w.r.t. e is kept
            loss_k = perturbation.run(forward, r, capture=True)
            g = perturbation.gradient(loss_k, retain_graph=False, loss_scale=loss_scale)
            norm = torch.linalg.vector_norm(g).item()
    loss_adv = perturbation.run(forward, r, capture=False)
    perturbation.attacks += 1
    info = AdversarialInfo(
        float(loss_clean.detach()),
        float(loss_adv.detach()),
        first_norm,
        torch.linalg.vector_norm(r).item(),
        steps + 1,
        False,
    )
    return loss_clean + loss_adv, info


ADVERSARIAL = {"fgm": fgm_loss, "pgd": pgd_loss}
