"""Task heads for the tricks: Multi-Sample Dropout classification and token tagging (lexical auxiliary task)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = -100


class MultiSampleDropoutClassifier(nn.Module):
    """Multi-Sample Dropout (Inoue 2019, "Multi-Sample Dropout for Accelerated Training and Better
    Generalization"): k dropout masks on the pooled feature through ONE shared linear classifier.

    Training: logits_i = W·dropout_i(x) + b for i < k (the k samples in one batched matmul); the loss is
    the mean of the k losses and the returned logits the mean of the k logits. Evaluation (module.eval()):
    one pass without dropout, logits = W·x + b (the plain classifier). Loss: cross-entropy (batch mean),
    or MSE when num_labels == 1 (regression, as OBertForSequenceClassification does).
    """

    def __init__(self, hidden: int, num_labels: int, k: int = 5, p: float = 0.1):
        super().__init__()
        if k < 1:
            raise ValueError(f"multi-sample dropout k: {k} must be >= 1")
        if not 0.0 <= p < 1.0:
            raise ValueError(f"multi-sample dropout p: {p} must be in [0, 1)")
        self.k, self.num_labels = k, num_labels
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(hidden, num_labels)

    @classmethod
    def from_config(cls, config, num_labels: int | None = None, k: int = 5) -> MultiSampleDropoutClassifier:
        """p = the model's classifier_dropout, else hidden_dropout_prob (as the models' own heads)."""
        p = getattr(config, "classifier_dropout", None)
        p = config.hidden_dropout_prob if p is None else p
        return cls(config.hidden_size, num_labels or config.num_labels, k, p)

    @classmethod
    def from_linear(cls, linear: nn.Linear, k: int = 5, p: float = 0.1) -> MultiSampleDropoutClassifier:
        """A head sharing `linear` (e.g. a model's existing `.classifier`), weights and all."""
        head = cls(linear.in_features, linear.out_features, k, p)
        head.classifier = linear
        return head

    def forward(
        self, pooled: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """pooled [B, H], labels [B] (or None) -> (logits [B, C], loss scalar or None)."""
        if not self.training or self.k == 1 and self.dropout.p == 0.0:
            logits = self.classifier(pooled)
            return logits, None if labels is None else self._loss(logits, labels)
        samples = self.classifier(self.dropout(pooled.unsqueeze(0).expand(self.k, *pooled.shape)))  # [k, B, C]
        logits = samples.mean(0)
        if labels is None:
            return logits, None
        # Every sample has the same batch size, so the mean over k·B rows is the mean of the k losses.
        flat_labels = labels.unsqueeze(0).expand(self.k, *labels.shape).reshape(-1, *labels.shape[1:])
        return logits, self._loss(samples.reshape(-1, samples.shape[-1]), flat_labels)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.num_labels == 1:
            return F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype))
        return F.cross_entropy(logits, labels)


class TokenTaggingHead(nn.Module):
    """Per-token dropout -> linear to num_tags (the lexical auxiliary task: word boundary B/I or POS).

    forward(hidden [B, T, H], labels [B, T] or None) -> (logits [B, T, K], loss or None): cross-entropy
    averaged over the positions whose label is not -100; 0 (with a gradient path) when there are none.
    """

    def __init__(self, hidden: int, num_tags: int, p: float = 0.1):
        super().__init__()
        self.num_tags = num_tags
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(hidden, num_tags)

    def forward(
        self, hidden: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits = self.classifier(self.dropout(hidden))  # [B, T, K]
        if labels is None:
            return logits, None
        flat = logits.reshape(-1, self.num_tags)
        flat_labels = labels.reshape(-1)
        total = F.cross_entropy(flat, flat_labels, ignore_index=IGNORE_INDEX, reduction="sum")
        count = (flat_labels != IGNORE_INDEX).sum().clamp(min=1)
        return logits, total / count
