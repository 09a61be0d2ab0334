import pandas as pd
import pytest
import torch

from obert_lib import finetuning
from obert_lib.config import ConfigError
from obert_lib.finetuning import FGM, rdrop_loss


def test_fgm_perturbs_along_gradient_and_restores_exactly():
    emb = torch.nn.Embedding(5, 3)
    model = torch.nn.Module()
    model.get_input_embeddings = lambda: emb
    emb.weight.grad = torch.zeros(5, 3)
    emb.weight.grad[1, 0] = 2.0
    before = emb.weight.data.clone()
    fgm = FGM(model, epsilon=0.5)
    fgm.attack()
    delta = emb.weight.data - before
    assert torch.allclose(delta[1, 0], torch.tensor(0.5)) and delta.abs().sum().item() == pytest.approx(0.5)
    fgm.restore()
    assert torch.equal(emb.weight.data, before)


def test_rdrop_reduces_to_cross_entropy_for_identical_passes():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1])
    ce = torch.nn.functional.cross_entropy(logits, labels)
    assert torch.allclose(rdrop_loss(logits, logits, labels, alpha=4.0), ce)
    assert rdrop_loss(logits, logits.flip(1), labels, 1.0) > ce


def test_unknown_trick_is_a_config_error():
    with pytest.raises(ConfigError, match="trick: 'pgd' is not allowed"):
        finetuning.FinetuneConfig(**{}) and finetuning.run({"trick": "pgd"})


def test_ablation_runs_each_variant_and_seed(tiny_checkpoint, tmp_path):
    runs, summary = finetuning.run_ablation(
        {"checkpoint": str(tiny_checkpoint.checkpoints[-1]), "epochs": 1, "output_dir": str(tmp_path)},
        {"baseline": {"trick": "none"}, "fgm": {"trick": "fgm"}, "rdrop": {"trick": "rdrop"}},
        seeds=[0, 1],
        progress=False,
    )
    assert list(runs["variant"]) == ["baseline", "baseline", "fgm", "fgm", "rdrop", "rdrop"]
    assert list(summary["count"]) == [2, 2, 2]
    per_variant = runs.groupby("variant")["eval_accuracy"]  # the summary is the runs' mean and spread per variant
    assert summary.set_index("variant")["mean"].to_dict() == pytest.approx(per_variant.mean().to_dict())
    assert summary.set_index("variant")["std"].to_dict() == pytest.approx(per_variant.std().to_dict())
    table = pd.read_csv(tmp_path / "results.csv")
    assert len(table) == 6 and set(table["config.trick"]) == {"none", "fgm", "rdrop"}
    assert (tmp_path / "fgm-seed1" / "config.json").is_file()
