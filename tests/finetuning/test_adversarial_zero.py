"""FGM and PGD through DeepSpeed ZeRO on CPU: the perturbation really happens, with one engine.backward per step.

Dropout is 0, so a run is a deterministic function of the seed. Each engine run is compared with the same run
in plain PyTorch (same model, batch, AdamW): ZeRO-2 must give the same weights (bit-identical here), and with
FGM/PGD they must differ from the engine run without the trick. The weight-perturbing FGM could not work
under ZeRO: it frees the embedding weight's .grad after reducing it (checked below).
"""

from __future__ import annotations

import pytest
import torch

import obert_lib.finetuning.adversarial as adversarial
from obert_lib.finetuning.adversarial import EmbeddingPerturbation, fgm_loss, pgd_loss
from obert_lib.model import OBertConfig, OBertForSequenceClassification

STEPS = 3
IDS = torch.tensor([[2, 7, 8, 9, 3, 0], [2, 10, 11, 3, 0, 0], [2, 12, 13, 14, 15, 3], [2, 5, 6, 3, 0, 0]])
MASK = (IDS != 0).long()
LABELS = torch.tensor([0, 2, 1, 1])


def train(trick: str, zero_stage: int | None = 2, accumulation: int = 1) -> dict:
    """STEPS optimiser steps on the batch (split into `accumulation` micro-batches) through a ZeRO engine, or
    plain PyTorch when zero_stage is None. Returns step infos, totals, final weights, embedding .grad seen."""
    torch.manual_seed(0)
    config = OBertConfig(
        vocab_size=32,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=3,
    )
    model = OBertForSequenceClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    engine = None
    if zero_stage is not None:
        import deepspeed

        from obert_lib.pretraining.engine import single_process_env

        single_process_env()
        engine, *_ = deepspeed.initialize(
            model=model,
            optimizer=optimizer,
            config={
                "train_micro_batch_size_per_gpu": len(IDS) // accumulation,
                "gradient_accumulation_steps": accumulation,
                "zero_optimization": {"stage": zero_stage},
                "steps_per_print": 10**9,
            },
        )
        assert engine.zero_optimization_stage() == zero_stage
    run = model  # the bare module, also under an engine (see finetuning.adversarial)
    micro = torch.arange(len(IDS)).chunk(accumulation)
    out = {"infos": [], "totals": [], "emb_grads": []}
    with EmbeddingPerturbation(run) as pert:
        for _ in range(STEPS):
            for rows in micro:

                def forward():
                    return run(input_ids=IDS[rows], attention_mask=MASK[rows], labels=LABELS[rows]).loss

                if trick == "fgm":
                    total, info = fgm_loss(forward, pert, epsilon=1.0)
                elif trick == "pgd":
                    total, info = pgd_loss(forward, pert, steps=3, alpha=0.3, epsilon=1.0)
                else:
                    total, info = forward(), None
                out["infos"].append(info)
                out["totals"].append(total.item())
                if engine is None:
                    (total / accumulation).backward()
                else:
                    engine.backward(total)  # the one backward of the micro-step
                    out["emb_grads"].append(model.get_input_embeddings().weight.grad)
                    engine.step()
            if engine is None:
                optimizer.step()
                optimizer.zero_grad()
        out["skips"] = pert.skips
    if zero_stage == 3:
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(model.parameters())):
            out["weights"] = {n: p.detach().clone() for n, p in model.named_parameters()}
    else:
        out["weights"] = {n: p.detach().clone() for n, p in model.named_parameters()}
    return out


def max_change(a: dict, b: dict) -> float:
    return max((a[n] - b[n]).abs().max().item() for n in a)


@pytest.fixture(scope="module")
def zero2_baseline():
    return train("none")


@pytest.mark.parametrize("trick", ["fgm", "pgd"])
def test_adversarial_training_under_zero2_is_the_plain_run_and_changes_the_weights(trick, zero2_baseline):
    run, plain = train(trick), train(trick, zero_stage=None)
    assert zero2_baseline["emb_grads"] == [None] * STEPS  # ZeRO-2 frees weight.grad: weight-perturbing FGM sees 0
    assert all(not i.skipped for i in run["infos"])
    # the same steps as plain PyTorch with the trick ...
    assert max_change(run["weights"], plain["weights"]) < 1e-6
    assert run["totals"] == pytest.approx(plain["totals"], rel=1e-6)
    # ... and not the steps without it (the first clean loss is the baseline's: same seed, same start)
    assert run["infos"][0].loss_clean == pytest.approx(zero2_baseline["totals"][0], rel=1e-6)
    assert max_change(run["weights"], zero2_baseline["weights"]) > 1e-3
    for info, total in zip(run["infos"], run["totals"]):
        assert total == pytest.approx(info.loss_clean + info.loss_adv, rel=1e-6)
        assert info.loss_adv != pytest.approx(info.loss_clean, rel=1e-4)
        assert info.forwards == (2 if trick == "fgm" else 4)
        if trick == "fgm":
            assert info.delta_norm == pytest.approx(1.0, abs=1e-5)
        else:
            assert 0 < info.delta_norm <= 1.0 + 1e-6


def test_a_skipped_step_under_zero2_is_a_plain_step(zero2_baseline, monkeypatch):
    monkeypatch.setattr(adversarial, "_bad", lambda norm: True)  # as if every gradient norm were inf
    run = train("fgm")
    assert run["skips"] == STEPS and all(i.skipped and i.forwards == 1 for i in run["infos"])
    assert max_change(run["weights"], zero2_baseline["weights"]) == 0.0
