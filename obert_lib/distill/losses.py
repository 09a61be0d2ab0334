"""Distillation losses: logit KD with temperature, hard-label mixing, hidden-state and attention-score MSE.

Logit KD (Hinton, Vinyals and Dean 2015, "Distilling the Knowledge in a Neural Network"):
    KD = KL(softmax(z_t / T) ‖ softmax(z_s / T)) · (T² if t_squared)
KL has the gradient of Hinton's soft cross-entropy (they differ by the teacher's entropy, a constant) and is 0
when the student matches. The T² convention differs between sources, hence the `t_squared` setting:
Hinton multiplies by T² so the soft gradients (which scale as 1/T²) keep their size against the hard-label
term when T changes; TextBrewer (Yang et al. 2020, kd_ce_loss) and TinyBERT (Jiao et al. 2020, eq. 10) leave
it out. With t_squared=False a run at T = 4 puts 16× less weight on KD than Hinton's loss.

Task loss: α·KD + (1 − α)·CE(z_s, y); α = 1 is pure distillation, α = 0 plain fine-tuning.

Pretraining-stage loss (TinyBERT's general distillation plus the MLM-logit KD of Hinton's loss): w_kd·KD(T)
over the masked positions only (the unmasked ones are copies of the input, which both models predict
trivially) + w_hidden·hidden MSE + w_attention·attention MSE + w_mlm·CE(true tokens), each weight a setting.

Hidden states (TinyBERT eq. 8): MSE(h_s·W + b, h_t) over the mapped layers (layer_map.py), with one linear W
shared by all layers where the widths differ (TinyBERT's W_h). Attention scores (TinyBERT eq. 7): MSE of the
pre-softmax scores, head by head. Both average over real (unpadded) tokens and over the mapped layer pairs
(TinyBERT sums over layers: multiply by the number of pairs to get theirs).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .layer_map import LayerMap, check_layer_map


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 1.0,
    t_squared: bool = True,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over scored rows of KL(p_t ‖ p_s) at temperature T, times T² when `t_squared`.

    logits: [..., C] (e.g. [B, C] for a task, [B, T, V] for MLM); mask: [...] bool, the rows that count (e.g.
    the masked positions), None for all. The teacher side is detached. Returns a scalar, fp32.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"kd_loss: student logits {tuple(student_logits.shape)} vs teacher {tuple(teacher_logits.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"kd_loss: temperature must be > 0, got {temperature}")
    s = student_logits.float().reshape(-1, student_logits.shape[-1])
    t = teacher_logits.detach().float().reshape(-1, teacher_logits.shape[-1])
    if mask is not None:
        keep = mask.reshape(-1).bool()
        s, t = s[keep], t[keep]
    if s.shape[0] == 0:
        return student_logits.float().sum() * 0.0  # no scored row: 0, still attached to the graph
    log_p_s = F.log_softmax(s / temperature, dim=-1)
    log_p_t = F.log_softmax(t / temperature, dim=-1)
    kl = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)
    return kl * temperature**2 if t_squared else kl


def task_distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    alpha: float = 0.5,
    temperature: float = 1.0,
    t_squared: bool = True,
) -> dict[str, torch.Tensor]:
    """α·KD + (1 − α)·CE with the hard labels. logits [B, C], labels [B] (−100: not scored).

    Returns {"loss", "kd", "ce"} (scalars; "loss" is the one to back-propagate)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1] (the weight of KD against the hard labels), got {alpha}")
    kd = kd_loss(student_logits, teacher_logits, temperature, t_squared)
    ce = F.cross_entropy(student_logits.float(), labels, ignore_index=-100)
    return {"loss": alpha * kd + (1.0 - alpha) * ce, "kd": kd, "ce": ce}


def pretrain_distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    weights: dict[str, float],
    temperature: float = 1.0,
    t_squared: bool = True,
    hidden: torch.Tensor | None = None,
    attention: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Σ weights[name]·part over the parts kd, mlm, hidden, attention (a weight left out counts as 0).

    logits [B, T, V]; labels [B, T]: the true token at a masked position, −100 elsewhere; the KD term scores
    the masked positions only and `mlm` is the student's cross-entropy there (0 with no masked position).
    hidden / attention: the MSE scalars (HiddenStateMSE, attention_score_mse), None when off. Returns
    {"loss", "kd", "mlm"} and "hidden" / "attention" where given.
    """
    masked = labels != -100
    parts = {"kd": kd_loss(student_logits, teacher_logits, temperature, t_squared, mask=masked)}
    if masked.any():
        flat = student_logits.float().reshape(-1, student_logits.shape[-1])
        parts["mlm"] = F.cross_entropy(flat, labels.reshape(-1), ignore_index=-100)
    else:
        parts["mlm"] = student_logits.float().sum() * 0.0
    for name, value in (("hidden", hidden), ("attention", attention)):
        if value is not None:
            parts[name] = value
    total = sum(weights.get(name, 0.0) * value for name, value in parts.items() if weights.get(name, 0.0))
    parts["loss"] = total if torch.is_tensor(total) else parts["kd"] * 0.0
    return parts


def _masked_mse(student: torch.Tensor, teacher: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Σ w·(s − t)² / (Σ w · H) for s, t [..., H] and token weights w [...]: the plain MSE when weights is None."""
    sq = (student.float() - teacher.detach().float()) ** 2
    if weights is None:
        return sq.mean()
    w = weights.float().unsqueeze(-1)  # [..., 1]: one weight per token
    return (sq * w).sum() / (w.sum() * sq.shape[-1]).clamp(min=1.0)


class HiddenStateMSE(nn.Module):
    """Hidden-state MSE over a layer map, with a linear projection student → teacher width where they differ.

    forward(student_states, teacher_states, attention_mask) -> scalar: states are sequences of [B, T, H]
    (index 0 = the embedding output; H_s for the student, H_t for the teacher), attention_mask [B, T] (1 real,
    0 padding) or None. `project`: None → a projection exactly when the widths differ (TinyBERT's W_h); True
    forces one at equal widths too; False refuses unequal widths. The projection (`self.proj`, weight
    [H_t, H_s]) is trained with the student.
    """

    def __init__(
        self,
        layer_map: LayerMap,
        student_width: int,
        teacher_width: int,
        student_layers: int,
        teacher_layers: int,
        project: bool | None = None,
    ):
        super().__init__()
        self.layer_map = check_layer_map(layer_map, teacher_layers, student_layers)
        if project is None:
            project = student_width != teacher_width
        if not project and student_width != teacher_width:
            raise ValueError(
                f"hidden MSE: widths differ (student {student_width}, teacher {teacher_width}); allow a projection"
            )
        self.proj = nn.Linear(student_width, teacher_width) if project else None

    def forward(
        self,
        student_states: Sequence[torch.Tensor],
        teacher_states: Sequence[torch.Tensor],
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        losses = []
        for s_idx, t_idx in self.layer_map:
            if s_idx >= len(student_states) or t_idx >= len(teacher_states):
                raise ValueError(
                    f"hidden MSE: pair ({s_idx}, {t_idx}) but {len(student_states)} student and {len(teacher_states)} "
                    "teacher states (embedding output included)"
                )
            s, t = student_states[s_idx], teacher_states[t_idx]
            if self.proj is not None:
                s = self.proj(s.to(self.proj.weight.dtype))
            if s.shape != t.shape:
                raise ValueError(
                    f"hidden MSE: layer pair ({s_idx}, {t_idx}): shapes {tuple(s.shape)} vs {tuple(t.shape)}"
                )
            losses.append(_masked_mse(s, t, attention_mask))
        return torch.stack(losses).mean()


def attention_score_mse(
    student_scores: Sequence[torch.Tensor],
    teacher_scores: Sequence[torch.Tensor],
    layer_map: LayerMap,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over mapped pairs of the MSE of pre-softmax attention scores [B, heads, T, T] (TinyBERT eq. 7).

    Scores are indexed by transformer layer, 1..L (there is no attention at the embeddings, so a pair with
    layer 0 is skipped); score list index i holds layer i + 1. attention_mask [B, T]: only (real query, real key)
    pairs count. Student and teacher need the same number of heads."""
    losses = []
    for s_idx, t_idx in layer_map:
        if s_idx == 0 or t_idx == 0:
            continue
        s, t = student_scores[s_idx - 1], teacher_scores[t_idx - 1]
        if s.shape != t.shape:
            raise ValueError(
                f"attention MSE: layer pair ({s_idx}, {t_idx}): shapes {tuple(s.shape)} vs {tuple(t.shape)} (heads and "
                "lengths must match)"
            )
        sq = (s.float() - t.detach().float()) ** 2
        if attention_mask is None:
            losses.append(sq.mean())
            continue
        m = attention_mask.float()
        w = (m[:, None, :, None] * m[:, None, None, :]).expand_as(sq)  # [B, heads, T_query, T_key]
        losses.append((sq * w).sum() / w.sum().clamp(min=1.0))
    if not losses:
        raise ValueError("attention MSE: the layer map has no pair of transformer layers (only layer 0)")
    return torch.stack(losses).mean()
