"""The fine-tuning stage end to end on tiny configs: every task kind, the tricks switched from the config,
DeepSpeed ZeRO-2, the best checkpoint, exact resume after a kill, refusals before training."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from obert_lib import finetuning
from obert_lib.cli import main
from obert_lib.config import ConfigError
from obert_lib.finetuning import model as ftmodel


def config(tiny_checkpoint, tmp_path, name="run", **sections) -> dict:
    cfg = {"model": {"checkpoint": str(tiny_checkpoint.checkpoints[-1])}, "train": {"epochs": 2},
           "output_dir": str(tmp_path / name)}  # fmt: skip
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return cfg


@pytest.mark.parametrize(
    "task,data",
    [
        ("eprstmt", {}),  # classification
        ("bustm", {}),  # sentence pair
        ("chid", {"train_split": "dev_0"}),  # multiple choice (the sample has no chid train split)
    ],
)
def test_each_task_kind_trains_keeps_its_best_model_and_writes_a_results_row(tiny_checkpoint, tmp_path, task, data):
    r = finetuning.run(config(tiny_checkpoint, tmp_path, data={"task": task, **data}), progress=False)
    m = r.metrics
    assert 0 <= m["eval_metric"] <= 1 and m["steps"] == 2 * -(-m["n_train"] // 8) and m["seconds_per_step"] > 0
    assert list(r.history["epoch"]) == [1, 2] and m["eval_metric"] == r.history["eval_metric"].max()
    best = r.output_dir / "best"
    info = json.loads((best / "finetune.json").read_text(encoding="utf-8"))
    assert info["epoch"] == m["best_epoch"] and not (r.output_dir / "resume").exists()
    model, _ = ftmodel.load(best)
    state = load_file(best / "model.safetensors")
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())  # saved and loaded exactly
    table = pd.read_csv(r.output_dir / "results.csv")
    assert list(table["stage"]) == [f"finetune/{task}"] and table["metric.eval_metric"].iloc[0] == m["eval_metric"]


def test_tagging_on_a_conll_file_reports_span_f1(tiny_checkpoint, tmp_path):
    data = tmp_path / "ner"
    data.mkdir()
    sentence = [("北", "B-LOC"), ("京", "I-LOC"), ("很", "O"), ("好", "O")]
    text = "\n".join(f"{c} {t}" for c, t in sentence) + "\n\n"
    for split in ("train", "dev"):
        (data / f"{split}.txt").write_text(text * 4, encoding="utf-8")
    cfg = config(tiny_checkpoint, tmp_path, data={"task": "conll", "data_dir": str(data), "train_split": "train",
                                                  "eval_split": "dev"})  # fmt: skip
    r = finetuning.run(cfg, progress=False)
    assert r.metrics["metric"] == "span_f1" and 0 <= r.metrics["eval_metric"] <= 1


def test_every_trick_runs_from_the_config_and_is_recorded(tiny_checkpoint, tmp_path):
    tricks = {"fgm": {"enabled": True}, "noisytune": {"enabled": True}, "msd": {"enabled": True},
              "lexical": {"enabled": True}}  # fmt: skip
    r = finetuning.run(config(tiny_checkpoint, tmp_path, tricks=tricks, model={"freeze_layers": 1}), progress=False)
    assert r.metrics["tricks"] == ["fgm", "noisytune", "msd", "lexical"] and r.metrics["frozen_parameters"] > 0
    for name, extra in (("pgd", {"pgd": {"enabled": True}}), ("rdrop", {"rdrop": {"enabled": True}})):
        r = finetuning.run(config(tiny_checkpoint, tmp_path, name, tricks=extra), progress=False)
        assert r.metrics["tricks"] == [name]


def test_fgm_under_deepspeed_zero2_changes_the_run(tiny_checkpoint, tmp_path):
    """The perturbation really happens under ZeRO-2: the same seeded run with FGM ends elsewhere."""
    train = {"engine": "deepspeed", "zero_stage": 2, "epochs": 1}
    plain = finetuning.run(config(tiny_checkpoint, tmp_path, "plain", train=train), progress=False)
    fgm = finetuning.run(config(tiny_checkpoint, tmp_path, "fgm", train=train, tricks={"fgm": {"enabled": True}}),
                         progress=False)  # fmt: skip
    assert fgm.metrics["train_loss"] != plain.metrics["train_loss"]
    a = load_file(plain.output_dir / "best" / "model.safetensors")
    b = load_file(fgm.output_dir / "best" / "model.safetensors")
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_a_killed_run_resumes_exactly(tiny_checkpoint, tmp_path, monkeypatch):
    from obert_lib.finetuning import trainer

    cfg = config(tiny_checkpoint, tmp_path, "killed", train={"epochs": 3, "resume_every": 1},
                 tricks={"fgm": {"enabled": True}})  # fmt: skip
    whole = finetuning.run({**cfg, "output_dir": str(tmp_path / "whole")}, progress=False)
    real, calls = trainer.train_step, {"n": 0}

    def killed_at_step_3(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "train_step", killed_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        finetuning.run(cfg, progress=False)
    assert (tmp_path / "killed" / "resume").is_dir() and not (tmp_path / "killed" / "metrics.json").exists()
    monkeypatch.setattr(trainer, "train_step", real)
    resumed = finetuning.run(cfg, progress=False)
    assert resumed.metrics["steps"] == whole.metrics["steps"]
    assert list(resumed.history["train_loss"]) == list(whole.history["train_loss"])
    a = load_file(whole.output_dir / "best" / "model.safetensors")
    b = load_file(resumed.output_dir / "best" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.bad_input
def test_a_finished_run_is_returned_not_retrained_and_never_overwritten(tiny_checkpoint, tmp_path, monkeypatch):
    from obert_lib.finetuning import trainer

    cfg = config(tiny_checkpoint, tmp_path, train={"epochs": 1})
    first = finetuning.run(cfg, progress=False)
    before = (tmp_path / "run" / "metrics.json").read_bytes()
    monkeypatch.setattr(trainer, "train_step", None)  # any training would fail
    again = finetuning.run(cfg, progress=False)
    assert again.metrics == first.metrics and again.history.equals(first.history)
    with pytest.raises(ConfigError, match="holds a finished fine-tuning run of another config"):
        finetuning.run({**cfg, "train": {"epochs": 2}}, progress=False)
    assert (tmp_path / "run" / "metrics.json").read_bytes() == before
    monkeypatch.undo()
    assert finetuning.run({**cfg, "train": {"epochs": 2}, "overwrite": True}, progress=False).metrics["epochs_run"] == 2


@pytest.mark.bad_input
def test_a_checkpoint_fine_tuned_for_another_task_is_refused_and_one_for_this_task_continues(tiny_checkpoint, tmp_path):
    first = finetuning.run(config(tiny_checkpoint, tmp_path, "epr", train={"epochs": 1}), progress=False)
    best = str(first.output_dir / "best")
    with pytest.raises(ConfigError, match=r"was fine-tuned for eprstmt \(classification, 2 labels\), not for bustm"):
        finetuning.run(config(tiny_checkpoint, tmp_path, "b", model={"checkpoint": best}, data={"task": "bustm"}))
    assert not (tmp_path / "b" / "config.json").exists()
    again = finetuning.run(config(tiny_checkpoint, tmp_path, "more", model={"checkpoint": best}), progress=False)
    assert again.metrics["steps"] > 0


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "sets,needle",
    [
        (["tricks.pgd.enabled=true", "tricks.fgm.enabled=true"], "enable one of them"),
        (["tricks.fgm.epsilon=0"], "tricks.fgm.epsilon"),
        (["tricks.awp.enabled=true"], "tricks.awp: unknown key"),
        (["tricks.pgd.step=2"], "tricks.pgd.step: unknown key in PGDConfig; did you mean 'steps'"),
        (["train.zero_stage=2"], "ZeRO needs engine: deepspeed"),
        (["train.precision=fp16"], "needs a GPU"),
        (["data.task=cmnli"], "cmnli"),
        (["model.max_length=4096"], "max_length"),
    ],
)
def test_impossible_settings_are_one_line_before_training(capsys, tiny_checkpoint, tmp_path, sets, needle):
    argv = ["finetune", "--set", f"model.checkpoint={tiny_checkpoint.checkpoints[-1]}"]
    argv += ["--set", f"output_dir={tmp_path / 'out'}", "--runtime", "progress=false"]
    for item in sets:
        argv += ["--set", item]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("obert finetune: error: ") and needle in err[-1], err
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_the_pos_auxiliary_task_and_the_resolved_config_beside_the_best_model(tiny_checkpoint, tmp_path):
    tricks = {"lexical": {"enabled": True, "kind": "pos"}}
    r = finetuning.run(config(tiny_checkpoint, tmp_path, train={"epochs": 1}, tricks=tricks), progress=False)
    info = json.loads((r.output_dir / "best" / "finetune.json").read_text(encoding="utf-8"))
    assert info["config"]["tricks"]["lexical"]["kind"] == "pos" and info["lexical"] > 2  # the segmenter's POS tags
    model, _ = ftmodel.load(r.output_dir / "best")
    assert model.lexical_head.num_tags == info["lexical"]
