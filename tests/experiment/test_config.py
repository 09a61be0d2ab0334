"""The experiment file is checked before any work: each mistake is one ConfigError naming the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from obert_lib import experiment
from obert_lib.cli import main
from obert_lib.config import ConfigError
from obert_lib.paths import REPO_ROOT

TINY = REPO_ROOT / "configs" / "experiments" / "tiny.yaml"
GPU = REPO_ROOT / "configs" / "experiments" / "obert_vs_char_gpu.yaml"


def _tiny(tmp_path: Path) -> dict:
    data = yaml.safe_load(TINY.read_text(encoding="utf-8"))
    data["output_dir"] = str(tmp_path / "exp")
    return data


ERRORS = [
    (
        {"tokenz": 5},
        "tokenz: unknown key in ExperimentConfig; did you mean 'tokens'? valid keys are ['baseline', 'corpus', "
        "'finetune', 'output_dir', 'plan', 'plan_overrides', 'preset', 'seeds', 'tokens', 'variants', 'zeroshot']",
    ),
    ({"variants.char.stages.0.seq_len": 4}, "variants.char: stages[0].seq_len: 4 is too short; use >= 8"),
    (
        {"variants.char.seed": 3},
        "variants.char.seed: is set by the experiment (corpus_dir, output_dir, seed, results_table); remove it",
    ),
    ({"baseline": "words"}, "baseline: 'words' is not a variant; use one of ['char', 'obert']"),
    ({"tokens": 0}, "tokens: 0 training tokens is impossible; give a budget >= 1 or null for the plans' own lengths"),
    (
        {"tokens": 100},
        "variants.obert: stages.1.mask.schedule: the budget of 100 tokens leaves stage 1 1 steps, too few for its 2 "
        "schedule points (from_step scaled to [0, 0]); raise tokens",
    ),
    ({"seeds": [0, 0]}, "seeds: [0, 0] lists a seed twice; list each once"),
    (
        {"corpus.dir": "/tmp"},
        "corpus.dir: give exactly one of corpus.dir (an existing preprocessed corpus) or corpus.config (a corpus "
        "preset, YAML or mapping to build one), e.g. corpus: {config: default}",
    ),
    (
        {"zeroshot.tasks": ["eprstmt", "nope"]},
        "zeroshot.tasks: 'nope' is not a FewCLUE task; use one of ['bustm', 'chid', 'cluewsc', 'csl', 'csldcp', "
        "'eprstmt', 'iflytek', 'ocnli', 'tnews']",
    ),
    ({"zeroshot.split": "test"}, "zeroshot.split: test is unlabelled (no intervals); use dev_0 or dev_few_all"),
    (
        {"finetune.base.model.checkpoint": "x"},
        "finetune.base.model.checkpoint: is set by the experiment (each variant's pretrained checkpoint); remove it",
    ),
    ({"runtime.workers": 0}, "runtime.workers: 0 processes is impossible; use >= 1"),
    ({"runtime.speed.zero_stage": 5}, "runtime.speed.zero_stage: 5 is not a ZeRO stage; use 0, 1, 2 or 3"),
    ({"runtime.ray.num_cpuz": 1}, "runtime.ray.num_cpuz: unknown key in RayOptions; did you mean 'num_cpus'?"),
]


@pytest.mark.parametrize("overrides, message", ERRORS, ids=[next(iter(o)) for o, _ in ERRORS])
def test_mistakes_are_named_before_any_work(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as exc:
        cfg, runtime = experiment.load_experiment(_tiny(tmp_path), **overrides)
        experiment.check(cfg, runtime, cuda=False)
    assert str(exc.value).startswith(message)
    assert not (tmp_path / "exp").exists()  # nothing was written


CHECKED = [
    ({"runtime.speed.precision": "bf16"}, "runtime.speed.precision: bf16 needs a CUDA GPU; use fp32 on CPU"),
    (
        {"zeroshot.split": "dev_9"},
        "zeroshot.split: {sample}/eprstmt/dev_9.json does not exist; give a split that sample:fewclue has for eprstmt "
        "(dev_0 in the sample, dev_few_all in shared:fewclue) or drop the task",
    ),
    (
        {"finetune.base.train.epochz": 1},
        "finetune.base.train.epochz: unknown key in TrainConfig; did you mean 'epochs'?",
    ),
    (
        {"corpus": {"dir": "{tmp}"}},
        "corpus.dir: {tmp} holds no preprocessed corpus (no stats.json); run `obert preprocess` into it, or give "
        "corpus.config to build one here",
    ),
]


@pytest.mark.parametrize("overrides, message", CHECKED, ids=[next(iter(o)) for o, _ in CHECKED])
def test_what_check_finds_before_any_work(tmp_path, overrides, message):
    from obert_lib.paths import sample_path

    overrides = {k: ({"dir": str(tmp_path)} if v == {"dir": "{tmp}"} else v) for k, v in overrides.items()}
    message = message.format(sample=sample_path("fewclue"), tmp=tmp_path)
    cfg, runtime = experiment.load_experiment(_tiny(tmp_path), **overrides)
    with pytest.raises(ConfigError) as exc:
        experiment.check(cfg, runtime, cuda=False)
    assert str(exc.value).startswith(message)


def test_cli_prints_the_mistake_on_one_line_and_exits_2(tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(_tiny(tmp_path)), encoding="utf-8")
    assert main(["experiment", "run", str(path), "--set", "tokens=0"]) == 2
    assert capsys.readouterr().err.startswith("obert experiment: error: tokens: 0 training tokens is impossible")
    assert main(["experiment", "run", str(path), "--runtime", "workerz=2"]) == 2
    assert "runtime.workerz: unknown key in ExperimentRuntime" in capsys.readouterr().err
    assert main(["experiment", "report", "--config", str(path), str(tmp_path / "other.yaml")]) == 2
    assert "differ; give the experiment file once" in capsys.readouterr().err


def test_the_budget_gives_every_variant_the_same_tokens(tmp_path):
    cfg, runtime = experiment.load_experiment(_tiny(tmp_path), tokens=16384)
    specs = experiment.pretrain_specs(cfg, runtime, cuda=False)
    assert [s.name for s in specs] == ["char-seed0", "obert-seed0"]
    assert [sum(st.stage_tokens for st in s.plan.stages) for s in specs] == [16384, 16384]
    char, obert = (s.plan.stages for s in specs)
    assert [(st.steps, st.warmup_steps) for st in char] == [(16, 2)]  # twice the file's 8 steps, warm-up kept at 1/8
    assert [st.steps for st in obert] == [12, 4]  # the plan's 3:1 split of positions kept
    assert [e.from_step for e in obert[1].mask.schedule] == [0, 2]  # schedule points move with the stage's steps
    assert len({s.plan.output_dir for s in specs}) == 2 and all("seed0-" in s.plan.output_dir for s in specs)
    assert {s.plan.corpus_dir for s in specs} == {str((tmp_path / "exp" / "corpus").resolve())}  # one corpus


def test_the_gpu_example_is_a_valid_experiment():
    cfg, runtime = experiment.load_experiment(GPU, **{"runtime.speed.precision": "fp32"})  # bf16 asks the GPU
    runtime.gpus = 8
    specs = experiment.pretrain_specs(cfg, runtime, cuda=True)
    assert [s.variant for s in specs] == ["char", "words", "obert", "motian"]
    assert {sum(st.stage_tokens for st in s.plan.stages) for s in specs} == {cfg.tokens}
    assert {s.plan.model.preset for s in specs} == {"100M"}
    assert (
        cfg.zeroshot.tasks == list(experiment.load_experiment(GPU)[0].zeroshot.tasks) and len(cfg.zeroshot.tasks) == 9
    )
    motian = specs[-1].plan
    assert (motian.model.layer_norm, motian.model.position) == ("pre", "relative")
    assert motian.stages[1].mask.synonym.enabled and not motian.stages[0].mask.synonym.enabled


def test_a_changed_corpus_gives_every_variant_a_new_folder(tmp_path):
    folders = {}
    for name, overrides in (("file", {}), ("fewer", {"corpus.overrides": {"max_documents": 100}})):
        cfg, runtime = experiment.load_experiment(_tiny(tmp_path), **overrides)
        folders[name] = [s.plan.output_dir for s in experiment.pretrain_specs(cfg, runtime, cuda=False)]
    assert not set(folders["file"]) & set(folders["fewer"])  # a rebuilt corpus is never mistaken for the old one
