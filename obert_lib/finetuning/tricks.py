"""Robustness tricks for fine-tuning, switchable by name."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class FGM:
    """Fast Gradient Method on the word embeddings (Miyato et al. 2017, 'Adversarial training methods
    for semi-supervised text classification'): r = eps * g / ||g||, loss on the perturbed input added."""

    def __init__(self, model: torch.nn.Module, epsilon: float = 1.0):
        self.embedding = model.get_input_embeddings().weight
        self.epsilon = epsilon
        self.backup: torch.Tensor | None = None

    def attack(self) -> None:
        grad = self.embedding.grad
        if grad is None:
            return
        norm = torch.linalg.vector_norm(grad)
        if norm > 0 and torch.isfinite(norm):
            self.backup = self.embedding.data.clone()
            self.embedding.data.add_(self.epsilon * grad / norm)

    def restore(self) -> None:
        if self.backup is not None:
            self.embedding.data.copy_(self.backup)
            self.backup = None


def rdrop_loss(logits_a: torch.Tensor, logits_b: torch.Tensor, labels: torch.Tensor, alpha: float) -> torch.Tensor:
    """R-Drop (Liang et al. 2021): mean CE of two dropout passes + alpha * symmetric KL between them.

    logits_*: [B, C]; labels: [B].
    """
    ce = 0.5 * (F.cross_entropy(logits_a, labels) + F.cross_entropy(logits_b, labels))
    la, lb = F.log_softmax(logits_a, -1), F.log_softmax(logits_b, -1)
    kl = 0.5 * (
        F.kl_div(la, lb, log_target=True, reduction="batchmean")
        + F.kl_div(lb, la, log_target=True, reduction="batchmean")
    )
    return ce + alpha * kl
