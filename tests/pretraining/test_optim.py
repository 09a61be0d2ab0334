import math

import pytest
import torch
from torch import nn

from obert_lib.pretraining.optim import Lamb, build_optimizer, param_groups, trust_ratio


def _one_tensor(values, lr, **kw):
    w = nn.Parameter(torch.tensor(values, dtype=torch.float64))
    return w, Lamb([w], lr=lr, **kw)


def test_one_lamb_step_matches_the_formula_by_hand():
    # w = [3, 4], g = [0.3, -0.4], lr 0.1, betas (0.9, 0.999), eps 0.2, weight decay 0.1.
    # normalise: ||g|| = 0.5 -> g = [0.6, -0.8]
    # m = 0.1 g, v = 0.001 g^2; bias-corrected: m_hat = [0.6, -0.8], v_hat = [0.36, 0.64], sqrt = [0.6, 0.8]
    # r = m_hat / (sqrt(v_hat) + eps) = [0.6 / 0.8, -0.8 / 1.0] = [0.75, -0.8]
    # u = r + 0.1 w = [1.05, -0.4];  ||u|| = sqrt(1.1025 + 0.16) = sqrt(1.2625);  ||w|| = 5
    # phi = 5 / sqrt(1.2625) = 4.44994159...  (< max_trust 10)
    # w' = w - 0.1 phi u = [3 - 0.1 phi 1.05, 4 + 0.1 phi 0.4] = [2.53275613..., 4.17799766...]
    w, opt = _one_tensor([3.0, 4.0], lr=0.1, betas=(0.9, 0.999), eps=0.2, weight_decay=0.1)
    w.grad = torch.tensor([0.3, -0.4], dtype=torch.float64)
    opt.step()
    phi = 5 / math.sqrt(1.2625)
    expected = [3 - 0.1 * phi * 1.05, 4 + 0.1 * phi * 0.4]
    assert expected == pytest.approx([2.532756132535516, 4.177997663795994], abs=1e-15)
    assert w.tolist() == pytest.approx(expected, abs=1e-12)
    st = opt.state[w]
    assert st["step"] == 1 and st["exp_avg"].tolist() == pytest.approx([0.06, -0.08], abs=1e-15)
    assert st["exp_avg_sq"].tolist() == pytest.approx([0.00036, 0.00064], abs=1e-15)

    # without normalisation r = [0.3 / 0.5, -0.4 / 0.6]: the same step differs
    w2, opt2 = _one_tensor([3.0, 4.0], lr=0.1, betas=(0.9, 0.999), eps=0.2, weight_decay=0.1, normalize_grad=False)
    w2.grad = torch.tensor([0.3, -0.4], dtype=torch.float64)
    opt2.step()
    u = [0.6 + 0.3, -2 / 3 + 0.4]
    phi2 = 5 / math.hypot(*u)
    assert w2.tolist() == pytest.approx([3 - 0.1 * phi2 * u[0], 4 - 0.1 * phi2 * u[1]], abs=1e-12)


def test_two_steps_moments_and_bias_correction_by_hand():
    # No normalisation, no trust ratio, no decay: Adam with bias correction. betas (0.5, 0.75), eps 0, lr 0.1.
    # step 1, g = [1, 2]: m = [0.5, 1], v = [0.25, 1]; m_hat = [1, 2], v_hat = [1, 4]; u = [1, 1]; w = [0.9, 0.9]
    # step 2, g = [3, -2]: m = 0.5 [0.5, 1] + 0.5 [3, -2] = [1.75, -0.5];
    #                     v = 0.75 [0.25, 1] + 0.25 [9, 4] = [2.4375, 1.75]
    #   m_hat = m / (1 - 0.25) = [7/3, -2/3];  v_hat = v / (1 - 0.5625) = [39/7, 4];  u = [(7/3) / sqrt(39/7), -1/3]
    #   w = [0.9 - 0.1 x 0.98853830..., 0.9 + 0.1 / 3] = [0.80114616..., 0.93333333...]
    w = nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    opt = Lamb(
        [{"params": [w], "trust_ratio": False}],
        lr=0.1,
        betas=(0.5, 0.75),
        eps=0.0,
        weight_decay=0.0,
        normalize_grad=False,
    )
    w.grad = torch.tensor([1.0, 2.0], dtype=torch.float64)
    opt.step()
    assert w.tolist() == pytest.approx([0.9, 0.9], abs=1e-15)
    w.grad = torch.tensor([3.0, -2.0], dtype=torch.float64)
    opt.step()
    assert opt.state[w]["exp_avg"].tolist() == pytest.approx([1.75, -0.5], abs=1e-15)
    assert opt.state[w]["exp_avg_sq"].tolist() == pytest.approx([2.4375, 1.75], abs=1e-15)
    assert w.tolist() == pytest.approx([0.9 - 0.1 * (7 / 3) / math.sqrt(39 / 7), 0.9 + 0.1 / 3], abs=1e-12)
    assert w.tolist() == pytest.approx([0.8011461696640956, 0.9333333333333333], abs=1e-12)


def test_trust_ratio_edge_cases():
    assert float(trust_ratio(5.0, 2.0)) == 2.5
    assert float(trust_ratio(0.0, 3.0)) == 1.0  # zero weights (fresh bias-like tensor): plain Adam step
    assert float(trust_ratio(3.0, 0.0)) == 1.0  # no update
    assert float(trust_ratio(0.0, 0.0)) == 1.0
    assert float(trust_ratio(500.0, 1.0, max_trust=10.0)) == 10.0
    assert float(trust_ratio(500.0, 1.0, max_trust=None)) == 500.0

    # zero weights: phi = 1, the step is lr x sign(g) (first step, eps 0)
    w, opt = _one_tensor([0.0, 0.0], lr=0.1, eps=0.0, weight_decay=0.0, normalize_grad=False)
    w.grad = torch.tensor([1.0, -1.0], dtype=torch.float64)
    opt.step()
    assert w.tolist() == pytest.approx([-0.1, 0.1], abs=1e-15)
    # zero gradient and no decay: zero update, phi = 1, weights unchanged and finite
    w, opt = _one_tensor([3.0, 4.0], lr=0.1, eps=1e-6, weight_decay=0.0)
    w.grad = torch.zeros(2, dtype=torch.float64)
    opt.step()
    assert w.tolist() == [3.0, 4.0]
    # ||w|| = 500, u = [1, 1]: phi = 500 / sqrt(2) = 353.6 is clamped to max_trust 10
    w, opt = _one_tensor([300.0, 400.0], lr=0.1, eps=0.0, weight_decay=0.0, normalize_grad=False, max_trust=10.0)
    w.grad = torch.tensor([1.0, 2.0], dtype=torch.float64)
    opt.step()
    assert w.tolist() == pytest.approx([299.0, 399.0], abs=1e-12)
    w, opt = _one_tensor([300.0, 400.0], lr=0.001, eps=0.0, weight_decay=0.0, normalize_grad=False, max_trust=None)
    w.grad = torch.tensor([1.0, 2.0], dtype=torch.float64)
    opt.step()
    phi = 500 / math.sqrt(2)
    assert w.tolist() == pytest.approx([300 - 0.001 * phi, 400 - 0.001 * phi], abs=1e-12)


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.lin = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        return self.head(self.norm(self.lin(x)))


def test_param_groups_exclude_biases_and_layernorm():
    m = _Tiny()
    groups = param_groups(m, 0.01)
    decay, no_decay = ({id(p) for p in g["params"]} for g in groups)
    assert decay == {id(m.emb.weight), id(m.lin.weight), id(m.head.weight)}
    assert no_decay == {id(m.lin.bias), id(m.norm.weight), id(m.norm.bias), id(m.head.bias)}
    assert [g["weight_decay"] for g in groups] == [0.01, 0.0]

    lamb = build_optimizer(m, "lamb", lr=1e-3, weight_decay=0.01)
    assert isinstance(lamb, Lamb) and [g["trust_ratio"] for g in lamb.param_groups] == [True, False]
    assert [g["weight_decay"] for g in lamb.param_groups] == [0.01, 0.0] and lamb.param_groups[0]["eps"] == 1e-6
    adamw = build_optimizer(m, "adamw", lr=1e-3, weight_decay=0.01, betas=(0.9, 0.98), eps=1e-8)
    assert type(adamw) is torch.optim.AdamW and [g["weight_decay"] for g in adamw.param_groups] == [0.01, 0.0]
    assert adamw.param_groups[0]["betas"] == (0.9, 0.98) and "trust_ratio" not in adamw.param_groups[0]
    with pytest.raises(ValueError, match="'sgd' is unknown"):
        build_optimizer(m, "sgd")


def test_lamb_trains_a_tiny_regression():
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = x @ torch.randn(8, 1) + 0.5
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
    opt = build_optimizer(model, "lamb", lr=0.02, weight_decay=0.0)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.1 * losses[0]


def test_lamb_as_deepspeed_client_optimizer_on_cpu():
    import deepspeed

    from obert_lib.pretraining.engine import single_process_env as _single_process_env
    from obert_lib.pretraining.guards import loss_scale
    from obert_lib.pretraining.plan import StageConfig, scheduler_config

    _single_process_env()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 1))
    before = [p.detach().clone() for p in model.parameters()]
    stage = StageConfig(steps=4, warmup_steps=1, lr=0.01, optimizer="lamb")
    optimizer = build_optimizer(model, stage.optimizer, stage.lr, stage.weight_decay)
    config = {
        "train_micro_batch_size_per_gpu": 2,
        "gradient_accumulation_steps": 1,
        "zero_optimization": {"stage": 0},
        "scheduler": scheduler_config(stage),
        "steps_per_print": 10**9,
    }
    engine, ds_opt, _, scheduler = deepspeed.initialize(model=model, optimizer=optimizer, config=config)
    assert engine.basic_optimizer is optimizer and ds_opt is optimizer  # ZeRO 0, fp32: the client optimiser itself
    assert type(scheduler).__name__ == "WarmupDecayLR"
    assert loss_scale(engine) is None  # fp32: no loss scaling
    x, y = torch.randn(2, 4), torch.randn(2, 1)
    lrs = []
    for _ in range(4):
        lrs.append(optimizer.param_groups[0]["lr"])
        loss = nn.functional.mse_loss(engine(x), y)
        engine.backward(loss)
        engine.step()
        assert math.isfinite(loss.item())
    assert optimizer.state[model[0].weight]["step"] == 4
    # DeepSpeed warms up over max(2, warmup_steps) steps from lr 0, and the scheduler is first stepped after
    # the first optimiser step: optimiser steps 1 and 2 both run at lr 0.
    assert lrs == pytest.approx([0.0, 0.0, 0.005, 0.01])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_adamw_client_optimizer_under_zero2_on_cpu():
    import deepspeed

    from obert_lib.pretraining.engine import single_process_env as _single_process_env

    _single_process_env()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 1))
    optimizer = build_optimizer(model, "adamw", lr=0.01, weight_decay=0.01)
    engine, *_ = deepspeed.initialize(
        model=model,
        optimizer=optimizer,
        config={
            "train_micro_batch_size_per_gpu": 2,
            "gradient_accumulation_steps": 1,
            "zero_optimization": {"stage": 2},
            "steps_per_print": 10**9,
        },
    )
    before = model[0].weight.detach().clone()
    for _ in range(2):
        loss = nn.functional.mse_loss(engine(torch.randn(2, 4)), torch.randn(2, 1))
        engine.backward(loss)
        engine.step()
    assert not torch.equal(before, engine.module[0].weight.detach())
    assert [g["weight_decay"] for g in engine.optimizer.param_groups] == [0.01, 0.0]  # groups survive ZeRO's flattening
