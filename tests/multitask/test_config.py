"""aux_tasks and uncertainty in a pretraining plan: impossible settings refused before any work, with exact messages."""

from __future__ import annotations

import re

import pytest

from obert_lib import config as cfgmod
from obert_lib import pretraining
from obert_lib.config import ConfigError
from obert_lib.multitask.config import AuxTaskConfig
from obert_lib.pretraining import PretrainConfig, SpeedConfig


def _plan(*tasks: dict, **top):
    return cfgmod.load(PretrainConfig, {"aux_tasks": list(tasks), **top})


def _refused(message: str, *tasks: dict, **top):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        _plan(*tasks, **top)


def test_defaults_are_plain_mlm_and_a_two_task_plan_reads():
    plain = PretrainConfig()
    assert plain.aux_tasks == [] and plain.uncertainty == "kendall"
    plan = _plan(
        {"name": "click", "path": "sample:click_pairs.jsonl", "classes": ["exposure", "click"]},
        {"name": "samedoc", "kind": "same_document", "micro_batch": 4},
        uncertainty="liebel",
    )
    click, samedoc = plan.aux_tasks
    assert isinstance(click, AuxTaskConfig) and click.kind == "pairs" and click.outputs == 2
    assert samedoc.outputs == 2 and samedoc.micro_batch == 4 and samedoc.max_length is None
    assert plan.uncertainty == "liebel"
    assert cfgmod.load(PretrainConfig, cfgmod.to_dict(plan)) == plan  # plan.json round trip
    regression = _plan({"name": "ctr", "path": "x.jsonl", "loss": "regression"}).aux_tasks[0]
    assert regression.outputs == 1


def test_impossible_settings_name_the_key_and_the_fix():
    _refused(
        "aux_tasks[0].name: '' is not a task name; use letters, digits and '_', starting with a letter (e.g. click)",
        {"kind": "same_document"},
    )
    _refused(
        "aux_tasks[0].name: 'mlm' is reserved for the metrics (['mlm', 'total']); pick another name",
        {"name": "mlm", "kind": "same_document"},
    )
    _refused("aux_tasks[0].path: task click (kind pairs) needs path: a JSONL file of pairs", {"name": "click"})
    _refused(
        "aux_tasks[0].path: task doc (kind same_document) is built from the corpus; remove path",
        {"name": "doc", "kind": "same_document", "path": "x.jsonl"},
    )
    _refused(
        "aux_tasks[0].loss: task doc (kind same_document) is a two-class task; leave loss (classification) and "
        "classes (2) out",
        {"name": "doc", "kind": "same_document", "classes": 3},
    )
    _refused(
        "aux_tasks[0].classes: task ctr is a regression (one output); remove classes",
        {"name": "ctr", "path": "x.jsonl", "loss": "regression", "classes": ["a", "b"]},
    )
    _refused("aux_tasks[0].classes: 1 classes; give >= 2 or the class names", {"name": "c", "path": "x", "classes": 1})
    _refused(
        "aux_tasks[0].classes: ['a', 'a']: give two or more distinct class names",
        {"name": "c", "path": "x", "classes": ["a", "a"]},
    )
    _refused(
        "aux_tasks[0].max_length: 4 is too short for [CLS] a [SEP] b [SEP]; use >= 8 (or leave it out)",
        {"name": "doc", "kind": "same_document", "max_length": 4},
    )
    _refused(
        "aux_tasks[0].micro_batch: must be >= 1 (or leave it out)",
        {"name": "doc", "kind": "same_document", "micro_batch": 0},
    )
    _refused(
        "aux_tasks[].name: names ['doc', 'doc'] repeat; give each task its own name",
        {"name": "doc", "kind": "same_document"},
        {"name": "doc", "kind": "same_document"},
    )
    _refused(
        "aux_tasks[0].kind: 'next_sentence' is not allowed; use one of ['pairs', 'same_document', 'sentence_order']",
        {"name": "doc", "kind": "next_sentence"},
    )
    _refused(
        "aux_tasks[0].path: task order (kind sentence_order) is built from the corpus; remove path",
        {"name": "order", "kind": "sentence_order", "path": "x.jsonl"},
    )
    _refused(
        "aux_tasks[0].loss: task order (kind sentence_order) is a two-class task; leave loss (classification) and "
        "classes (2) out",
        {"name": "order", "kind": "sentence_order", "loss": "regression"},
    )
    _refused("uncertainty: 'gradnorm' is not allowed; use one of ['kendall', 'liebel']", uncertainty="gradnorm")
    with pytest.raises(ConfigError, match=r"^aux_tasks\[0\]\.weight: unknown key in AuxTaskConfig; "):
        _plan({"name": "doc", "kind": "same_document", "weight": 1.0})


def test_a_missing_pairs_file_and_a_too_long_pair_are_refused_by_validate(tmp_path):
    missing = tmp_path / "nope.jsonl"
    plan = _plan({"name": "click", "path": str(missing)})
    message = f"aux_tasks[0].path: {missing} does not exist; give an existing JSONL file of pairs (docs/multitask.md)"
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        pretraining.validate(plan, SpeedConfig(), cuda_available=False)
    plan = _plan({"name": "doc", "kind": "same_document", "max_length": 512}, model={"max_positions": 128})
    with pytest.raises(ConfigError, match=re.escape("aux_tasks[0].max_length: 512 exceeds model.max_positions (128)")):
        pretraining.validate(plan, SpeedConfig(), cuda_available=False)
