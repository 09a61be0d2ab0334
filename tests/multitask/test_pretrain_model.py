"""The multi-task module: its total is the weighting of its task losses, and its checkpoint is the plain masked LM."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

import obert_lib.model  # noqa: F401  (registers model_type "obert" with the Auto classes)
from obert_lib.model import ModelConfig, build_masked_lm
from obert_lib.multitask import UncertaintyWeighting
from obert_lib.multitask.config import AuxTaskConfig
from obert_lib.multitask.pretrain_model import INFO_FILE, STATE_FILE, MultitaskPretrainModel
from obert_lib.pretraining.engine import model_groups

VOCAB = 120
TASKS = [
    AuxTaskConfig(name="click", path="x.jsonl"),
    AuxTaskConfig(name="ctr", path="y.jsonl", loss="regression"),
]


def _model(method="kendall", seed=0) -> MultitaskPretrainModel:
    lm = build_masked_lm(ModelConfig(preset="tiny", max_positions=32), VOCAB, seed=seed)
    return MultitaskPretrainModel(lm, TASKS, method)


def _inputs():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, VOCAB, (3, 10), generator=g)
    labels = torch.full_like(ids, -100)
    labels[:, 3] = ids[:, 3]
    mlm = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    pair = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    aux = {
        "click": {**pair, "labels": torch.tensor([0, 1, 1])},
        "ctr": {**pair, "labels": torch.tensor([0.1, 0.5, 0.9])},
    }
    return mlm, aux


def test_the_total_is_the_kendall_weighting_of_the_three_losses_and_every_part_gets_gradients():
    model = _model().eval()  # no dropout: the MLM loss equals the plain model's
    with torch.no_grad():
        model.weighting.log_vars.copy_(torch.tensor([0.5, -1.0, 0.2]))
    mlm, aux = _inputs()
    out = model(mlm=mlm, aux=aux)
    assert torch.equal(out.mlm_loss, model.lm(**mlm).loss) and out.logits.shape == (3, 10, VOCAB)
    (l_mlm, l_click, l_ctr), (s0, s1, s2) = out.task_losses.tolist(), (0.5, -1.0, 0.2)
    expected = math.exp(-s0) * l_mlm + s0 / 2 + math.exp(-s1) * l_click + s1 / 2 + 0.5 * math.exp(-s2) * l_ctr + s2 / 2
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)
    assert out.weights.tolist() == pytest.approx([math.exp(-s0), math.exp(-s1), 0.5 * math.exp(-s2)], rel=1e-6)
    out.loss.backward()
    assert model.weighting.log_vars.grad.abs().min() > 0
    assert model.heads["click"].out.weight.grad.abs().sum() > 0 and model.heads["ctr"].out.weight.grad.shape == (1, 64)
    assert model.lm.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_the_log_variances_stay_fp32_under_bf16_and_sit_undecayed_in_their_own_group():
    model = _model().to(torch.bfloat16)
    assert model.weighting.log_vars.dtype == torch.float32
    assert model.heads["click"].dense.weight.dtype == torch.bfloat16
    groups = model_groups(model, weight_decay=0.01)
    assert groups[-1] == {"params": [model.weighting.log_vars], "weight_decay": 0.0}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    lamb = model_groups(model, weight_decay=0.01, trust_key=True)
    assert lamb[-1]["trust_ratio"] is False


def test_liebel_uses_half_weights_and_softplus():
    model = _model("liebel").eval()
    mlm, aux = _inputs()
    out = model(mlm=mlm, aux=aux)
    assert isinstance(model.weighting, UncertaintyWeighting) and model.weighting.method == "liebel"
    assert out.weights.tolist() == [0.5, 0.5, 0.5]
    assert out.loss.item() == pytest.approx(0.5 * out.task_losses.sum().item() + 3 * math.log(2), rel=1e-6)


def test_a_checkpoint_is_the_plain_masked_lm_plus_the_heads_and_log_variances_beside_it(tmp_path):
    from transformers import AutoModelForMaskedLM

    model = _model()
    with torch.no_grad():
        model.weighting.log_vars.copy_(torch.tensor([0.25, -0.5, 1.0]))
    model.save_pretrained(tmp_path, safe_serialization=True)
    plain = AutoModelForMaskedLM.from_pretrained(tmp_path)  # strict keys (OBERT's from_pretrained check)
    assert type(plain).__name__ == "OBertForMaskedLM"
    assert plain.state_dict().keys() == model.lm.state_dict().keys()
    assert all(torch.equal(v, model.lm.state_dict()[k]) for k, v in plain.state_dict().items())
    assert not [k for k in load_file(str(tmp_path / "model.safetensors")) if not k.startswith(("bert.", "cls."))]
    state = load_file(str(tmp_path / STATE_FILE))
    assert sorted(state) == sorted(
        [f"heads.{t}.{layer}.{p}" for t in ("click", "ctr") for layer in ("dense", "out") for p in ("weight", "bias")]
        + ["weighting.log_vars"]
    )
    assert json.loads((tmp_path / INFO_FILE).read_text()) == {
        "tasks": {"click": 2, "ctr": 1},
        "method": "kendall",
        "kinds": {"mlm": "classification", "click": "classification", "ctr": "regression"},
    }

    warm = _model(seed=1)  # the next stage: other fresh heads, then the saved ones loaded
    assert not torch.equal(warm.heads["click"].dense.weight, model.heads["click"].dense.weight)
    warm.load_aux_state(tmp_path)
    assert torch.equal(warm.weighting.log_vars, torch.tensor([0.25, -0.5, 1.0]))
    assert all(torch.equal(v, model.aux_state()[k]) for k, v in warm.aux_state().items())

    other = MultitaskPretrainModel(warm.lm, TASKS[:1])
    with pytest.raises(ValueError, match="aux tasks .* differ from this run's"):
        other.load_aux_state(tmp_path)
    (tmp_path / STATE_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="trained without aux tasks"):
        warm.load_aux_state(tmp_path)


def test_the_weights_plot_draws_each_task_and_refuses_a_run_without_aux_tasks():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from obert_lib.multitask import plot_task_weights
    from obert_lib.multitask.plots import task_names

    metrics = pd.DataFrame(
        {
            "global_step": [1, 2, 3],
            "stage": [1, 1, 2],
            "loss": [7.0, 6.9, 6.8],
            **{f"loss/{t}": [1.0, 0.9, 0.8] for t in ("mlm", "click")},
            **{f"weight/{t}": [1.0, 0.99, 0.98] for t in ("mlm", "click")},
        }
    )
    assert task_names(metrics) == ["mlm", "click"]
    fig = plot_task_weights(metrics)
    assert [len(ax.get_lines()) for ax in fig.axes] == [3, 3]  # two tasks and the stage-2 boundary
    with pytest.raises(ValueError, match="no weight/<task> columns"):
        plot_task_weights(metrics[["global_step", "loss"]])
