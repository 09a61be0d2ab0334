"""Distillation losses on fixed small tensors with expected values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from obert_lib.distill import (
    HiddenStateMSE,
    attention_score_mse,
    check_layer_map,
    kd_loss,
    pretrain_distillation_loss,
    task_distillation_loss,
    uniform_layer_map,
)

LN3, LN4 = math.log(3.0), math.log(4.0)
# At T = 2: row 1 teacher [2 ln 3, 0]/2 -> p_t = (3/4, 1/4), student [0, 0] -> (1/2, 1/2);
#           row 2 teacher [0, 0] -> (1/2, 1/2), student [0, 2 ln 4]/2 -> (1/5, 4/5).
TEACHER = torch.tensor([[2 * LN3, 0.0], [0.0, 0.0]])
STUDENT = torch.tensor([[0.0, 0.0], [0.0, 2 * LN4]])
KL_ROW1 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
KL_ROW2 = 0.5 * math.log(0.5 / 0.2) + 0.5 * math.log(0.5 / 0.8)
KL = (KL_ROW1 + KL_ROW2) / 2  # batchmean


def close(a, b, tol=1e-6):
    return torch.allclose(a.float(), torch.as_tensor(b, dtype=torch.float32), rtol=tol, atol=tol)


def test_kd_with_and_without_t_squared():
    assert close(kd_loss(STUDENT, TEACHER, temperature=2.0, t_squared=False), KL)
    assert close(kd_loss(STUDENT, TEACHER, temperature=2.0, t_squared=True), 4.0 * KL)
    assert close(kd_loss(TEACHER, TEACHER, temperature=3.0), 0.0)


def test_kd_gradient_is_the_soft_target_difference():
    # d/dz_s KL(p_t || softmax(z_s/T)) = (p_s - p_t) / T per row; batchmean divides by N; T² multiplies
    student = STUDENT.clone().requires_grad_(True)
    kd_loss(student, TEACHER, temperature=2.0, t_squared=True).backward()
    p_s = torch.tensor([[0.5, 0.5], [0.2, 0.8]])
    p_t = torch.tensor([[0.75, 0.25], [0.5, 0.5]])
    assert close(student.grad, (p_s - p_t) / 2.0 * 4.0 / 2)


def test_kd_scores_only_the_masked_rows_of_mlm_logits():
    teacher = torch.stack([TEACHER, torch.zeros(2, 2)])  # [B=2, T=2, V=2]
    student = torch.stack([STUDENT, torch.full((2, 2), 7.0)])
    mask = torch.tensor([[True, True], [False, False]])
    assert close(kd_loss(student, teacher, 2.0, t_squared=False, mask=mask), KL)
    mask = torch.tensor([[True, False], [False, False]])
    assert close(kd_loss(student, teacher, 2.0, t_squared=False, mask=mask), KL_ROW1)


def test_task_loss_mixes_kd_and_hard_labels_by_alpha():
    labels = torch.tensor([0, 1])
    # CE on the student's logits at T = 1: row 1 (1/2, 1/2) -> ln 2; row 2 (1/17, 16/17) -> -ln(16/17)
    ce = (math.log(2.0) - math.log(16 / 17)) / 2
    out = task_distillation_loss(STUDENT, TEACHER, labels, alpha=0.25, temperature=2.0, t_squared=False)
    assert close(out["ce"], ce) and close(out["kd"], KL)
    assert close(out["loss"], 0.25 * KL + 0.75 * ce)
    out = task_distillation_loss(STUDENT, TEACHER, labels, alpha=1.0, temperature=2.0, t_squared=True)
    assert close(out["loss"], 4.0 * KL)
    with pytest.raises(ValueError, match="alpha"):
        task_distillation_loss(STUDENT, TEACHER, labels, alpha=1.5)


def test_pretrain_loss_scores_masked_positions_only_and_weighs_its_parts():
    # [B=1, T=3, V=2]: position 0 is unmasked (label -100) and far apart; positions 1, 2 are the rows above
    teacher = torch.cat([torch.tensor([[5.0, -5.0]]), TEACHER]).unsqueeze(0)
    student = torch.cat([torch.tensor([[-5.0, 5.0]]), STUDENT]).unsqueeze(0)
    labels = torch.tensor([[-100, 0, 1]])
    ce = (math.log(2.0) - math.log(16 / 17)) / 2  # the student's CE at positions 1, 2 (as in the task test)
    hidden, attention = torch.tensor(0.3), torch.tensor(0.2)
    weights = {"kd": 1.0, "hidden": 2.0, "mlm": 0.5, "attention": 0.0}
    out = pretrain_distillation_loss(student, teacher, labels, weights, 2.0, True, hidden=hidden, attention=attention)
    assert close(out["kd"], 4.0 * KL) and close(out["mlm"], ce)
    assert close(out["hidden"], 0.3) and close(out["attention"], 0.2)  # weight 0: reported, not in the total
    assert close(out["loss"], 4.0 * KL + 2.0 * 0.3 + 0.5 * ce)
    out = pretrain_distillation_loss(student, teacher, labels, {"kd": 1.0}, 2.0, t_squared=False)
    assert close(out["loss"], KL) and "hidden" not in out and "attention" not in out
    # nothing masked: KD and MLM are 0 (not NaN) and the total is the hidden term alone
    none = torch.full_like(labels, -100)
    out = pretrain_distillation_loss(student, teacher, none, weights, 2.0, True, hidden=hidden)
    assert close(out["kd"], 0.0) and close(out["mlm"], 0.0) and close(out["loss"], 0.6)


def test_kd_refuses_bad_inputs():
    with pytest.raises(ValueError, match="temperature"):
        kd_loss(STUDENT, TEACHER, temperature=0.0)
    with pytest.raises(ValueError, match="student logits"):
        kd_loss(STUDENT, TEACHER[:, :1])


def _projected_mse() -> HiddenStateMSE:
    loss = HiddenStateMSE([(0, 0), (1, 2)], student_width=2, teacher_width=3, student_layers=1, teacher_layers=2)
    with torch.no_grad():  # h·Wᵀ + b with W = [[1, 0], [0, 1], [1, 1]], b = [0, 0, 1]: (x, y) -> (x, y, x + y + 1)
        loss.proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        loss.proj.bias.copy_(torch.tensor([0.0, 0.0, 1.0]))
    return loss


def test_hidden_mse_with_a_hand_set_projection():
    loss = _projected_mse()
    student = [torch.tensor([[[1.0, 2.0]]]), torch.tensor([[[0.0, 1.0]]])]  # [B=1, T=1, H_s=2], layers 0..1
    teacher = [torch.tensor([[[1.0, 2.0, 3.0]]]), torch.zeros(1, 1, 3), torch.tensor([[[2.0, 1.0, 2.0]]])]
    # pair (0, 0): (1, 2, 4) vs (1, 2, 3) -> 1/3; pair (1, 2): (0, 1, 2) vs (2, 1, 2) -> 4/3; mean 5/6
    assert close(loss(student, teacher), 5 / 6)
    # a padded second token with arbitrary values changes nothing
    pad_s = [torch.cat([s, torch.full((1, 1, 2), 9.0)], 1) for s in student]
    pad_t = [torch.cat([t, torch.full((1, 1, 3), -9.0)], 1) for t in teacher]
    assert close(loss(pad_s, pad_t, torch.tensor([[1, 0]])), 5 / 6)
    # the projection learns: its gradient is nonzero
    loss(student, teacher).backward()
    assert loss.proj.weight.grad.abs().sum() > 0


def test_hidden_mse_without_projection_and_its_errors():
    loss = HiddenStateMSE([(1, 2)], 2, 2, student_layers=1, teacher_layers=2)
    assert loss.proj is None
    s = [torch.zeros(1, 1, 2), torch.tensor([[[1.0, 3.0]]])]
    t = [torch.zeros(1, 1, 2), torch.zeros(1, 1, 2), torch.tensor([[[0.0, 1.0]]])]
    assert close(loss(s, t), (1.0 + 4.0) / 2)
    with pytest.raises(ValueError, match="widths differ"):
        HiddenStateMSE([(1, 2)], 2, 3, 1, 2, project=False)
    with pytest.raises(ValueError, match="outside"):
        HiddenStateMSE([(2, 2)], 2, 2, student_layers=1, teacher_layers=2)


def test_attention_score_mse_counts_real_query_key_pairs_only():
    s = [torch.tensor([[[[1.0, 5.0], [5.0, 5.0]]]])]  # [B=1, heads=1, T=2, T=2], transformer layer 1
    t = [torch.zeros(1, 1, 2, 2), torch.tensor([[[[3.0, 0.0], [0.0, 0.0]]]])]  # teacher layers 1, 2
    layer_map = [(0, 0), (1, 2)]  # the embedding pair has no attention and is skipped
    assert close(attention_score_mse(s, t, layer_map, torch.tensor([[1, 0]])), 4.0)
    assert close(attention_score_mse(s, t, layer_map), (4.0 + 25 * 3) / 4)
    with pytest.raises(ValueError, match="no pair"):
        attention_score_mse(s, t, [(0, 0)])


@pytest.mark.parametrize(
    "teacher, student, expected",
    [
        (12, 3, [(0, 0), (1, 4), (2, 8), (3, 12)]),
        (12, 4, [(0, 0), (1, 3), (2, 6), (3, 9), (4, 12)]),
        (24, 6, [(0, 0), (1, 4), (2, 8), (3, 12), (4, 16), (5, 20), (6, 24)]),
        (12, 12, [(m, m) for m in range(13)]),
    ],
)
def test_uniform_layer_map(teacher, student, expected):
    assert uniform_layer_map(teacher, student) == expected
    assert uniform_layer_map(teacher, student, include_embeddings=False) == expected[1:]


@pytest.mark.parametrize(
    "teacher, student, message",
    [(12, 5, "not a multiple"), (3, 12, "cannot map"), (12, 0, ">= 1"), (0, 3, ">= 1")],
)
def test_impossible_layer_maps_are_refused(teacher, student, message):
    with pytest.raises(ValueError, match=message):
        uniform_layer_map(teacher, student)


def test_hand_written_maps_are_checked():
    assert check_layer_map([(1, 4), (2, 12)], 12, 3) == [(1, 4), (2, 12)]
    with pytest.raises(ValueError, match="repeat"):
        check_layer_map([(1, 4), (1, 8)], 12, 3)
    with pytest.raises(ValueError, match="outside"):
        check_layer_map([(1, 13)], 12, 3)
    with pytest.raises(ValueError, match="empty"):
        check_layer_map([], 12, 3)


def test_hidden_mse_is_an_nn_module_whose_projection_an_optimiser_sees():
    loss = _projected_mse()
    assert isinstance(loss, nn.Module) and len(list(loss.parameters())) == 2
