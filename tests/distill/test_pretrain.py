"""Pretraining-stage distillation on CPU through DeepSpeed: the tiny pretraining checkpoint (2 layers) as teacher,
a student whose loss falls and whose saved copy loads as a masked LM; a BERT-layout teacher into a wider fresh
student (projection) under ZeRO-3; a run killed with SIGKILL and rerun matches an uninterrupted one; config errors
with their exact messages, raised before anything is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from obert_lib import config as cfgmod
from obert_lib import distill
from obert_lib.cli import main
from obert_lib.config import ConfigError
from obert_lib.distill.pretrain import truncate
from obert_lib.model import load_masked_lm
from obert_lib.pretraining import resume_point
from tests.pretraining.kill import LAUNCHER_ENV, run_and_kill

STEPS = 24  # measured: the loss's last-5 mean is ~35% of its first-5 mean after 24 steps (docs/distillation.md)


def config(teacher, corpus, tmp_path, **pretrain) -> dict:
    train = {"seq_len": 32, "global_batch": 8, "micro_batch": 8, "steps": STEPS, "lr": 2e-3, "warmup_steps": 2}
    section = {"corpus_dir": str(corpus), "train": train, **pretrain}
    return {"stage": "pretrain", "teacher": {"checkpoint": str(teacher)}, "student": {"layers": 1},
            "kd": {"temperature": 2.0}, "pretrain": section, "output_dir": str(tmp_path / "distill")}  # fmt: skip


@pytest.fixture(scope="module")
def teacher(tiny_checkpoint):
    return tiny_checkpoint.checkpoints[-1]


@pytest.fixture(scope="module")
def corpus(sample_corpus):
    return sample_corpus.output_dir


@pytest.fixture(scope="module")
def fresh_run(teacher, corpus, tmp_path_factory):
    """A fresh tiny-preset student (seed 1: seed 0 would draw the teacher's own initial weights, which six
    pretraining steps barely moved) learns KD + hidden + attention MSE through DeepSpeed ZeRO-2 (the default)."""
    tmp = tmp_path_factory.mktemp("pretrain_distill")
    cfg = config(teacher, corpus, tmp, seed=1, weights={"kd": 1.0, "hidden": 1.0, "attention": 1.0})
    cfg["student"] = {"layers": None, "preset": "tiny"}
    return distill.run(cfg, progress=False), tmp


def test_the_student_loss_falls_and_every_part_is_logged(fresh_run):
    r, _ = fresh_run
    h = r.history
    assert list(h["step"]) == list(range(1, STEPS + 1)) and r.metrics["steps"] == STEPS
    assert h[["loss", "kd", "hidden", "attention", "mlm", "teacher_mlm"]].notna().all().all()
    # the total is the weighted sum of its parts (mlm weight 0: logged, not trained on), step by step
    assert torch.allclose(torch.tensor(h["loss"]), torch.tensor(h["kd"] + h["hidden"] + h["attention"]))
    for part in ("loss", "kd", "hidden", "attention"):  # measured ratios: 0.35, 0.30, 0.34, 0.41
        first, last = h[part].head(5).mean(), h[part].tail(5).mean()
        assert last < 0.6 * first, (part, first, last)
    saved = pd.read_csv(r.output_dir / "metrics.csv")
    assert list(saved.columns) == list(distill.pretrain.COLUMNS) and len(saved) == STEPS
    assert saved["loss"].tolist() == pytest.approx(h["loss"].tolist())
    assert r.metrics["layer_map"] == [[0, 0], [1, 1], [2, 2]] and r.metrics["final_loss"] == h["loss"].tail(5).mean()


def test_the_saved_student_is_a_masked_lm_that_matches_the_one_in_memory(fresh_run):
    r, _ = fresh_run
    assert (r.student_dir / "model.safetensors").is_file() and (r.student_dir / "tokenizer.json").is_file()
    loaded = load_masked_lm(r.student_dir).eval()
    assert loaded.config.num_hidden_layers == 2 and loaded.config.hidden_size == 64
    ids = torch.tensor([[2, 100, 200, 300, 3]])
    with torch.no_grad():
        expected = r.student.eval()(input_ids=ids).logits
        assert torch.equal(loaded(input_ids=ids).logits, expected)
    saved_cfg = json.loads((r.output_dir / "config.json").read_text(encoding="utf-8"))
    assert saved_cfg["stage"] == "pretrain" and saved_cfg["data"] is None
    assert cfgmod.load(distill.DistillConfig, saved_cfg).pretrain.weights.attention == 1.0  # round trip


def test_one_results_row_and_a_finished_run_is_not_redone(fresh_run, teacher, corpus):
    r, tmp = fresh_run
    table = pd.read_csv(r.output_dir / "results.csv")
    assert list(table["stage"]) == ["distill/pretrain"]
    assert table["metric.final_loss"].iloc[0] == pytest.approx(r.metrics["final_loss"])
    # the same config again: the finished result, read back, nothing trained and no second row
    again = distill.run(json.loads((r.output_dir / "config.json").read_text(encoding="utf-8")), progress=False)
    assert again.metrics == r.metrics and again.history["loss"].tolist() == r.history["loss"].tolist()
    assert len(pd.read_csv(r.output_dir / "results.csv")) == 1
    with pytest.raises(ConfigError, match=r"output_dir: .* holds a finished distillation run of another config \("):
        distill.run(config(teacher, corpus, tmp), progress=False)


def test_truncation_keeps_the_bottom_or_the_uniformly_spaced_layers(teacher):
    model = load_masked_lm(teacher)
    for pick, kept in (("bottom", 0), ("uniform", 1)):  # 2 -> 1 layer: bottom keeps layer 1, uniform layer 2
        student = truncate(model, 1, pick)
        assert student.config.num_hidden_layers == 1 and len(model.bert.encoder.layer) == 2
        a, b = student.bert.encoder.layer[0].state_dict(), model.bert.encoder.layer[kept].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
        # the MLM decoder stays tied to the copied word embeddings
        assert student.cls.predictions.decoder.weight is student.bert.embeddings.word_embeddings.weight


def test_a_killed_run_rerun_with_its_config_resumes_to_the_uninterrupted_runs_losses(teacher, corpus, tmp_path):
    """SIGKILL after a resume point, then the same config again: every step once, the losses, lr and final student
    of an uninterrupted run (accumulation 2, dropout and masking draws restored from the resume point)."""
    from safetensors.torch import load_file

    train = {"seq_len": 32, "global_batch": 16, "micro_batch": 8, "steps": 30, "lr": 2e-3, "warmup_steps": 4}
    cfg = config(teacher, corpus, tmp_path, train=train, checkpoint_every=3, weights={"mlm": 0.5})
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_ENV}

    def args(name: str) -> list[str]:  # every run in a fresh process (see test_task.run_cli for why)
        path = tmp_path / f"{name}.yaml"
        path.write_text(json.dumps({**cfg, "output_dir": str(tmp_path / name)}), encoding="utf-8")
        return [sys.executable, "-m", "obert_lib.cli", "distill", "--config", str(path), "--runtime", "progress=false"]

    subprocess.run(args("reference"), env=env, check=True, stdout=subprocess.DEVNULL)
    reference = distill.run({**cfg, "output_dir": str(tmp_path / "reference")}, progress=False)  # read back
    assert not (tmp_path / "reference" / "checkpoints").exists()  # a finished run keeps no resume points

    out = tmp_path / "killed"
    run_and_kill(args("killed"), out, global_step=6)
    point = resume_point(out)
    assert point["global_step"] >= 6 and point["global_step"] % 3 == 0 and not (out / "metrics.json").exists()

    changed = {**cfg, "output_dir": str(out), "kd": {"temperature": 3.0}}
    with pytest.raises(
        ConfigError, match=r"unfinished distillation run of another config \(kd.temperature: 2.0 -> 3.0\)"
    ):
        distill.run(changed, progress=False)
    subprocess.run(args("killed"), env=env, check=True, stdout=subprocess.DEVNULL)
    resumed = distill.run(str(tmp_path / "killed.yaml"), progress=False)  # the finished run, read back
    metrics = pd.read_csv(out / "metrics.csv", float_precision="round_trip")
    assert list(metrics["step"]) == list(range(1, 31))  # every step exactly once
    columns = ["loss", "kd", "hidden", "mlm", "teacher_mlm", "mlm_accuracy", "lr"]
    diff = (metrics[columns] - reference.history[columns]).abs().max().max()
    assert diff < 1e-5, metrics[["step", "loss"]].assign(reference=reference.history["loss"])
    assert resumed.history["loss"].tolist() == metrics["loss"].tolist()
    final, expected = (
        load_file(str(out / "student" / "model.safetensors")),
        load_file(str(reference.student_dir / "model.safetensors")),
    )
    assert max(float((final[k] - expected[k]).abs().max()) for k in expected) < 1e-5
    assert not (out / "checkpoints").exists() and len(pd.read_csv(out / "results.csv")) == 1


def bert_teacher(folder, tokenizer):
    """A random 2-layer BERT-layout BertForMaskedLM (width 32) saved with the corpus tokenizer."""
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    shape = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
    model = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), max_position_embeddings=64, **shape))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_a_bert_layout_teacher_into_a_wider_fresh_student_under_zero3(corpus, tmp_path):
    from obert_lib.pretraining.preflight import load_tokenizer

    teacher = bert_teacher(tmp_path / "bert", load_tokenizer(corpus))
    cfg = config(teacher, corpus, tmp_path, zero_stage=3, train={"seq_len": 32, "global_batch": 8,
                 "micro_batch": 4, "steps": 3, "warmup_steps": 1})  # fmt: skip
    cfg["student"] = {"layers": None, "preset": "tiny"}  # 2 layers, width 64: a 64 -> 32 projection
    r = distill.run(cfg, progress=False)
    assert r.history["loss"].notna().all() and r.metrics["steps"] == 3
    student = load_masked_lm(r.student_dir)
    assert (student.config.hidden_size, student.config.num_hidden_layers) == (64, 2)
    # ZeRO-3 partitions weights: a save from the bare module would hold empty tensors
    assert student.bert.embeddings.word_embeddings.weight.shape == (student.config.vocab_size, 64)


def test_the_cli_runs_a_truncated_student_with_the_hard_mlm_loss(teacher, corpus, tmp_path, capsys):
    train = {"seq_len": 32, "global_batch": 16, "micro_batch": 8, "steps": 2, "warmup_steps": 1}  # accumulation 2
    cfg = config(teacher, corpus, tmp_path, train=train, zero_stage=0, weights={"mlm": 0.5})
    path = tmp_path / "distill.yaml"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    assert main(["distill", "--config", str(path), "--set", "kd.t_squared=false", "--runtime", "progress=false"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["steps"] == 2 and printed["student_layers"] == 1 and printed["layer_map"] == [[0, 0], [1, 2]]
    assert json.loads((tmp_path / "distill" / "config.json").read_text(encoding="utf-8"))["kd"]["t_squared"] is False
    h = pd.read_csv(tmp_path / "distill" / "metrics.csv")
    assert torch.allclose(torch.tensor(h["loss"]), torch.tensor(h["kd"] + h["hidden"] + 0.5 * h["mlm"]))
    assert h["attention"].isna().all()  # weight 0: not computed


KEYS = str(["checkpoint_every", "corpus_dir", "deepspeed_config", "layer_map", "precision", "seed", "train", "weights",
            "zero_stage"])  # fmt: skip


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"data": {"task": "tnews"}},
            "data: is read by stage task only; pretrain.corpus_dir names the corpus (remove data, or set stage: task)",
        ),
        (
            {"max_length": 64},
            "max_length: is read by stage task only; pretrain.train.seq_len sets the sequence "
            "length (remove max_length, or set stage: task)",
        ),
        (
            {"kd": {"alpha": 0.9}},
            "kd.alpha: is read by stage task only; the pretrain stage weighs its terms with "
            "pretrain.weights (kd, hidden, mlm, attention)",
        ),
        (
            {"stage": "task"},
            "pretrain: is read by stage pretrain only; set stage: pretrain, or remove the section for a task-stage run",
        ),
        (
            {"pretrain": {"wieghts": {}}},
            f"pretrain.wieghts: unknown key in PretrainDistillConfig; did you mean 'weights'? valid keys are {KEYS}",
        ),
        (
            {"pretrain": {"weights": {"kd": -1}}},
            "pretrain.weights.kd: -1.0 is negative; a loss weight must be >= 0 (0 turns the term off)",
        ),
        (
            {"pretrain": {"weights": {"kd": 0, "hidden": 0}}},
            "pretrain.weights.kd / hidden / mlm / attention: all "
            "weights are 0, so there is nothing to train on; give at least one a weight > 0",
        ),
        (
            {"pretrain": {"layer_map": [[0, 0, 1]]}},
            "pretrain.layer_map[0]: [0, 0, 1] is not a (student, teacher) "
            "pair; write each entry as [student_layer, teacher_layer]",
        ),
        ({"pretrain": {"zero_stage": 4}}, "pretrain.zero_stage: 4 is not allowed; use one of [0, 1, 2, 3]"),
        (
            {"pretrain": {"checkpoint_every": -1}},
            "pretrain.checkpoint_every: -1 steps is impossible; use N >= 1 for a resume point every N optimiser "
            "steps, or 0 for none",
        ),
    ],
)
def test_impossible_settings_in_the_config_itself(change, message):
    cfg = {"stage": "pretrain", "pretrain": {}}
    for key, value in change.items():
        cfg[key] = value
    with pytest.raises(ConfigError) as err:
        cfgmod.load(distill.DistillConfig, cfg)
    assert str(err.value) == message


@pytest.mark.parametrize(
    "change, message",
    [
        ({"student": {"layers": 3}}, "student.layers: 3 is more than the teacher's 2 layers"),
        (
            {"pretrain": {"layer_map": [[0, 0], [1, 5]]}},
            "pretrain.layer_map: layer map: pair (1, 5) is outside "
            "student layers 0..1 / teacher layers 0..2 (0 is the embedding output)",
        ),
        (
            {"student": {"layers": None, "preset": "small"}},
            "pretrain.layer_map: layer map: a 4-layer student cannot map uniformly onto a 2-layer teacher "
            "(null asks for the uniform map; give [student, teacher] pairs)",
        ),
        (
            {
                "student": {"layers": None, "preset": "small"},
                "pretrain": {"weights": {"hidden": 0, "attention": 1}, "layer_map": [[4, 2]]},
            },
            "pretrain.weights.attention: the teacher has 2 attention heads and the student "
            "4; score maps are compared head by head (TinyBERT), so use a student with 2 heads or set the weight to 0",
        ),
        (
            {"pretrain": {"train": {"seq_len": 256}}},
            "pretrain.train.seq_len: 256 exceeds the teacher's max_position_embeddings (128); lower it to <= 128",
        ),
        (
            {"pretrain": {"train": {"global_batch": 12}}},
            "pretrain.train.global_batch: 12 is not micro_batch (8) x "
            "accumulation x data_parallel_size (1); use 8 or 16, or change micro_batch",
        ),
        ({"pretrain": {"precision": "fp16"}}, "pretrain.precision: fp16 needs a CUDA GPU; use fp32 on CPU"),
    ],
)
def test_impossible_settings_against_the_teacher_are_refused_before_work(teacher, corpus, tmp_path, change, message):
    if "precision" in change.get("pretrain", {}) and torch.cuda.is_available():
        pytest.skip("fp16 is possible on this machine")
    cfg = config(teacher, corpus, tmp_path)
    for key, value in change.items():
        if key == "pretrain":
            train = {**cfg["pretrain"]["train"], **value.get("train", {})}
            cfg["pretrain"] = {**cfg["pretrain"], **value, "train": train}
        else:
            cfg[key] = {**cfg[key], **value}
    with pytest.raises(ConfigError) as err:
        distill.run(cfg, progress=False)
    assert str(err.value) == message
    assert not (tmp_path / "distill").exists()  # refused before anything was written


def test_missing_teacher_corpus_and_positional_attention_are_named(teacher, corpus, tmp_path):
    from obert_lib.model import ModelConfig, build_masked_lm
    from obert_lib.pretraining.preflight import load_tokenizer

    cfg = config(tmp_path / "nowhere", corpus, tmp_path)
    with pytest.raises(ConfigError, match=r"^teacher.checkpoint: .*nowhere does not exist"):
        distill.run(cfg, progress=False)
    cfg = config(teacher, tmp_path / "no-corpus", tmp_path)
    with pytest.raises(ConfigError, match=r"^pretrain.corpus_dir: .*no-corpus does not exist; .*--set pretrain"):
        distill.run(cfg, progress=False)
    tokenizer = load_tokenizer(corpus)  # a relative-position teacher: its scores carry a bias hooks cannot see
    relative = build_masked_lm(ModelConfig(position="relative"), len(tokenizer), tokenizer.pad_token_id)
    relative.save_pretrained(tmp_path / "relative")
    tokenizer.save_pretrained(tmp_path / "relative")
    cfg = config(tmp_path / "relative", corpus, tmp_path, weights={"attention": 1.0})
    with pytest.raises(ConfigError, match="^pretrain.weights.attention: the teacher uses relative positions"):
        distill.run(cfg, progress=False)
    assert not (tmp_path / "distill").exists()


def test_the_example_config_loads():
    from obert_lib.paths import REPO_ROOT

    cfg = cfgmod.load(distill.DistillConfig, REPO_ROOT / "configs" / "distill" / "pretrain_tiny.yaml")
    assert cfg.stage == "pretrain" and cfg.student.layers == 1 and cfg.pretrain.weights.hidden == 1.0
