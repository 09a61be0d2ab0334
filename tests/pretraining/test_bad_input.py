"""Mistakes in a pretraining run's inputs: one CLI line (exit 2) naming the key and the fix, before any work."""

import json
import time

import pytest

from obert_lib import pretraining
from obert_lib.cli import main
from obert_lib.config import ConfigError, UserError

pytestmark = pytest.mark.bad_input


def _pretrain(capsys, *args) -> tuple[int, str]:
    code = main(["pretrain", *args])
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize("layout", ["missing", "no tokenizer", "no shards"])
def test_a_corpus_dir_that_is_not_a_corpus_is_one_line_before_any_loading(tmp_path, capsys, layout):
    corpus = tmp_path / "nocorpus"
    if layout != "missing":
        (corpus / "shards").mkdir(parents=True)
    if layout == "no shards":
        (corpus / "tokenizer").mkdir()
        (corpus / "tokenizer" / "vocab.txt").write_text("[PAD]\n[UNK]\n", encoding="utf-8")
    started = time.monotonic()
    code, err = _pretrain(capsys, "--plan", "tiny", "--set", f"corpus_dir={corpus}", "--output", str(tmp_path / "out"))
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("obert pretrain: error: corpus_dir:") and "obert preprocess" in err and str(corpus) in err
    assert time.monotonic() - started < 10  # no Hub requests, no model or DeepSpeed start-up
    assert not (tmp_path / "out").exists()  # nothing written


def test_shape_keys_under_a_preset_are_refused_with_the_fix_and_honoured_under_custom(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"model\.layers: 4 differs from preset 'tiny'.*preset=custom"):
        pretraining.load_plan("tiny", **{"model.layers": 4, "model.hidden": 128})
    code, err = _pretrain(
        capsys, "--plan", "tiny", "--set", "model.layers=4", "--set", "model.hidden=128", "--output", str(tmp_path)
    )
    assert code == 2 and "model.preset=custom" in err and len(err.splitlines()) == 1
    custom = pretraining.load_plan("tiny", **{"model.preset": "custom", "model.layers": 4, "model.hidden": 128})
    assert (custom.model.layers, custom.model.hidden, custom.model.heads, custom.model.ffn) == (4, 128, 2, 256)
    same = pretraining.load_plan("tiny", **{"model.layers": 2})  # repeating the preset's value (as plan.json does)
    assert same.model.layers == 2


def test_a_corpus_too_small_for_a_stage_is_found_before_deepspeed_starts(sample_corpus, tmp_path, monkeypatch):
    import deepspeed

    from obert_lib.corpus import load_shards
    from obert_lib.masking import pack_rows

    def no_start(*args, **kwargs):
        raise AssertionError("DeepSpeed started before the stage sizes were checked")

    monkeypatch.setattr(deepspeed, "initialize", no_start)
    rows = load_shards(sample_corpus.output_dir).to_pylist()
    packed = sum(1 for _ in pack_rows(rows, 128 - 2, "first_fit"))
    assert packed + 1 <= len(rows)  # enough paragraphs, too few packed sequences
    stages = [
        {"name": "short", "seq_len": 64, "global_batch": 8, "micro_batch": 8, "steps": 1, "warmup_steps": 0},
        {
            "name": "packed",
            "seq_len": 128,
            "global_batch": packed + 1,
            "micro_batch": packed + 1,
            "steps": 1,
            "warmup_steps": 0,
            "packing": "first_fit",
        },
    ]
    plan = pretraining.load_plan(
        "tiny", corpus_dir=str(sample_corpus.output_dir), output_dir=str(tmp_path), stages=stages
    )
    with pytest.raises(UserError) as info:
        pretraining.run(plan, progress=False)
    message = str(info.value)
    assert message.startswith(f"stages[1] (packed): the corpus gives {packed} sequences packed")
    assert f"micro_batch {packed + 1}" in message and "lower stages[1].micro_batch" in message


def test_a_resume_pointer_outside_the_run_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    root = out / "checkpoints" / "resume"
    root.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere" / "step-4"
    elsewhere.mkdir(parents=True)
    for target in ("../../../elsewhere/step-4", str(elsewhere)):
        (root / "latest.json").write_text(json.dumps({"path": target, "stage": 0, "stage_step": 4, "global_step": 4}))
        with pytest.raises(UserError, match="resume reads only inside its own run folder"):
            pretraining.resume_point(out)
        code, err = _pretrain(capsys, "--plan", "tiny", "--output", str(out), "--resume")
        assert code == 2 and "resume reads only inside its own run folder" in err
    (root / "step-4").symlink_to(elsewhere)  # a well-formed name that links out of the folder
    (root / "latest.json").write_text(json.dumps({"path": "step-4", "stage": 0, "stage_step": 4, "global_step": 4}))
    with pytest.raises(UserError, match="not a folder inside"):
        pretraining.resume_point(out)


def test_a_diverged_run_is_its_own_exit_status_with_the_guard_message(tmp_path, capsys, monkeypatch):
    from obert_lib.pretraining.guards import TrainingDiverged

    def diverge(*args, **kwargs):
        raise TrainingDiverged("step 7: loss is nan; lower stages[i].lr", step=7, history=[])

    monkeypatch.setattr(pretraining, "run", diverge)
    code, err = _pretrain(capsys, "--plan", "tiny", "--output", str(tmp_path / "out"))
    assert code == pretraining.EXIT_DIVERGED == 4
    assert err == "obert pretrain: diverged: step 7: loss is nan; lower stages[i].lr"


def test_an_output_that_is_or_lies_inside_a_file_is_one_line(sample_corpus, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("keep me", encoding="utf-8")
    for out, needle in ((afile, f"output_dir: {afile} is a file"), (afile / "run", f"is inside {afile}")):
        code, err = _pretrain(
            capsys, "--plan", "tiny", "--set", f"corpus_dir={sample_corpus.output_dir}", "--output", str(out)
        )
        assert code == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert afile.read_text(encoding="utf-8") == "keep me"
