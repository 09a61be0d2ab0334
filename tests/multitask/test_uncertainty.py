"""Uncertainty weighting on hand-made two-loss examples: total and gradients equal the closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from obert_lib.multitask import UncertaintyWeighting, param_groups

S = (0.5, -1.0)  # s_1, s_2 set by hand (σ² = e^0.5 and e^-1)
L = (2.0, 3.0)  # the two task losses


def _run(kinds, method):
    weighting = UncertaintyWeighting(["mlm", "aux"], kinds, method)
    with torch.no_grad():
        weighting.log_vars.copy_(torch.tensor(S))
    losses = [torch.tensor(v, requires_grad=True) for v in L]
    out = weighting(losses)
    out.total.backward()
    return out, weighting.log_vars.grad, torch.stack([x.grad for x in losses])


def close(a, b):
    return torch.allclose(a, torch.tensor(b, dtype=torch.float32), rtol=1e-6, atol=1e-6)


def test_kendall_classification_and_regression_match_the_formula():
    out, grad_s, grad_l = _run(["classification", "regression"], "kendall")
    (s1, s2), (l1, l2) = S, L
    total = math.exp(-s1) * l1 + s1 / 2 + 0.5 * math.exp(-s2) * l2 + s2 / 2
    assert close(out.total, total)
    # d/ds (c·e^{-s}·L + s/2) = −c·e^{-s}·L + 1/2
    assert close(grad_s, [-math.exp(-s1) * l1 + 0.5, -0.5 * math.exp(-s2) * l2 + 0.5])
    # d/dL = c·e^{-s}: the weight the module reports
    assert close(grad_l, [math.exp(-s1), 0.5 * math.exp(-s2)])
    assert close(out.weights, [math.exp(-s1), 0.5 * math.exp(-s2)])


def test_liebel_matches_the_formula():
    out, grad_s, grad_l = _run(None, "liebel")
    (s1, s2), (l1, l2) = S, L
    sig1, sig2 = math.exp(s1), math.exp(s2)  # σ² = e^s
    total = l1 / (2 * sig1) + math.log(1 + sig1) + l2 / (2 * sig2) + math.log(1 + sig2)
    assert close(out.total, total)
    # d/ds (0.5·e^{-s}·L + log(1 + e^s)) = −0.5·e^{-s}·L + e^s / (1 + e^s)
    assert close(grad_s, [-l1 / (2 * sig1) + sig1 / (1 + sig1), -l2 / (2 * sig2) + sig2 / (1 + sig2)])
    assert close(grad_l, [1 / (2 * sig1), 1 / (2 * sig2)])


def test_initial_weights_give_the_plain_sum_and_the_optimum_is_where_the_formula_says():
    weighting = UncertaintyWeighting(["a", "b"])
    assert weighting.log_vars.dtype == torch.float32 and torch.equal(weighting.log_vars, torch.zeros(2))
    out = weighting([torch.tensor(2.0), torch.tensor(3.0)])
    assert close(out.total, 5.0) and close(out.weights, [1.0, 1.0])
    # Kendall classification: e^{-s}L + s/2 is stationary at s* = log(2L)
    with torch.no_grad():
        weighting.log_vars.copy_(torch.tensor([math.log(4.0), math.log(6.0)]))
    weighting(torch.tensor([2.0, 3.0])).total.backward()
    assert close(weighting.log_vars.grad, [0.0, 0.0])


def test_metrics_row_and_fp32_under_half():
    weighting = UncertaintyWeighting(["mlm", "click"]).half()
    assert weighting.log_vars.dtype == torch.float32
    out = weighting([torch.tensor(1.0, dtype=torch.float16), torch.tensor(0.5, dtype=torch.float16)])
    assert out.total.dtype == torch.float32
    assert out.metrics(weighting.tasks) == {
        "loss/total": 1.5,
        "loss/mlm": 1.0,
        "weight/mlm": 1.0,
        "log_var/mlm": 0.0,
        "loss/click": 0.5,
        "weight/click": 1.0,
        "log_var/click": 0.0,
    }


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="distinct"):
        UncertaintyWeighting(["a", "a"])
    with pytest.raises(ValueError, match="kinds"):
        UncertaintyWeighting(["a", "b"], ["classification"])
    with pytest.raises(ValueError, match="method"):
        UncertaintyWeighting(["a"], method="gradnorm")
    with pytest.raises(ValueError, match="expected 2"):
        UncertaintyWeighting(["a", "b"])([torch.tensor(1.0)])


@pytest.mark.parametrize("inside", [False, True])
@pytest.mark.parametrize("trust_key", [False, True])
def test_param_groups_keep_the_log_variances_out_of_weight_decay(inside, trust_key):
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    weighting = UncertaintyWeighting(["a", "b"])
    if inside:
        model.add_module("weighting", weighting)
    groups = param_groups(model, weighting, weight_decay=0.01, trust_key=trust_key)
    holding = [g for g in groups if any(p is weighting.log_vars for p in g["params"])]
    assert len(holding) == 1 and holding[0]["params"] == [weighting.log_vars]
    assert holding[0]["weight_decay"] == 0.0
    assert holding[0].get("trust_ratio", False) is False
    assert sum(len(g["params"]) for g in groups) == 5  # weight, bias, LN scale, LN shift, s: each once
    assert groups[0]["weight_decay"] == 0.01 and groups[0]["params"] == [model[0].weight]
    torch.optim.AdamW(groups, lr=1e-3)  # a valid optimiser spec
