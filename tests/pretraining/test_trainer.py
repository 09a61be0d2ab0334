import json

import torch

from obert_lib.pretraining import latest_checkpoint


def test_two_stage_run_writes_loadable_checkpoints(tiny_checkpoint):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    r = tiny_checkpoint
    assert [p.name for p in r.checkpoints] == ["stage-1-seq64", "stage-2-seq128"]
    assert latest_checkpoint(r.output_dir) == r.checkpoints[-1]
    m = r.metrics
    assert list(m["stage"]) == [1, 1, 1, 2, 2, 2] and list(m["global_step"]) == [1, 2, 3, 4, 5, 6]
    assert m["lr"].iloc[0] == 0.0 and m["lr"].iloc[:3].is_monotonic_increasing and m["lr"].max() > 0  # warm-up from 0
    assert m["loss"].notna().all() and (m["tokens_per_s"] > 0).all()
    for ckpt in r.checkpoints:
        for name in (
            "model.safetensors",
            "config.json",
            "tokenizer.json",
            "plan.json",
            "speed.json",
            "deepspeed/latest",
        ):
            assert (ckpt / name).exists(), (ckpt, name)
    plan = json.loads((r.checkpoints[0] / "plan.json").read_text())
    assert plan["stages"][0]["steps"] == 3 and plan["model"]["preset"] == "tiny"
    model = AutoModelForMaskedLM.from_pretrained(r.checkpoints[-1])
    tk = AutoTokenizer.from_pretrained(r.checkpoints[-1])
    out = model(**tk("北京是首都", return_tensors="pt"))
    assert out.logits.shape[-1] == len(tk) and torch.isfinite(out.logits).all()


def test_stage_two_warm_starts_from_stage_one(tiny_checkpoint):
    from transformers import AutoModelForMaskedLM

    a = AutoModelForMaskedLM.from_pretrained(tiny_checkpoint.checkpoints[0]).state_dict()
    b = AutoModelForMaskedLM.from_pretrained(tiny_checkpoint.checkpoints[1]).state_dict()
    key = "bert.embeddings.word_embeddings.weight"
    diff = (a[key] - b[key]).abs().max().item()
    assert 0 < diff < 0.1  # trained further for a few small steps, not re-initialised


def test_results_table_has_a_row_per_stage(tiny_checkpoint):
    import pandas as pd

    df = pd.read_csv(tiny_checkpoint.output_dir / "results.csv")
    assert list(df["stage"]) == ["pretrain/seq64", "pretrain/seq128"]
    assert df["data_hash"].nunique() == 1 and "config.stage.mask.strategy" in df.columns


def test_stage_mask_schedule_knowledge_and_embedding_synonyms_drive_the_collator(sample_corpus, tmp_path):
    from obert_lib import pretraining

    mask = {
        "schedule": [{"from_step": 0, "mixture": {"word": 1}}, {"from_step": 2, "mixture": {"entity": 1, "clause": 1}}],
        "knowledge": {"enabled": True, "summary_budget": 16},
        "synonym": {"enabled": True, "source": "embeddings", "top_k": 4},
    }
    plan = pretraining.load_plan(
        "tiny",
        corpus_dir=str(sample_corpus.output_dir),
        output_dir=str(tmp_path),
        **{
            "stages": [
                {
                    "name": "kw",
                    "seq_len": 48,
                    "global_batch": 8,
                    "micro_batch": 8,
                    "steps": 3,
                    "warmup_steps": 1,
                    "mask": mask,
                }
            ]
        },
    )
    result = pretraining.run(plan, {"checkpoint_every": 0}, progress=False)
    assert list(result.metrics["strategy"]) == ["schedule"] * 3
    assert result.metrics["loss"].notna().all()


def test_tensorboard_gets_every_step(tiny_checkpoint):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tiny_checkpoint.output_dir / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4, 5, 6]
    assert {"train/lr", "train/mlm_accuracy", "train/tokens_per_s"} <= set(events.Tags()["scalars"])


def test_divergence_stops_the_run_with_the_step_and_keeps_the_last_checkpoint(sample_corpus, tmp_path):
    import pytest

    from obert_lib import pretraining
    from obert_lib.pretraining.guards import TrainingDiverged

    # stage 2 at lr 1e9: weights explode within a few steps and the loss becomes NaN/inf (fp32: no loss scale)
    plan = pretraining.load_plan(
        "tiny",
        corpus_dir=str(sample_corpus.output_dir),
        output_dir=str(tmp_path),
        **{
            "stages.0.steps": 2,
            "stages.1.steps": 20,
            "stages.0.warmup_steps": 1,
            "stages.1.warmup_steps": 1,
            "stages.1.lr": 1e9,
        },
    )
    with pytest.raises(TrainingDiverged, match="step"):
        pretraining.run(plan, {"checkpoint_every": 0}, progress=False)
    status = json.loads((tmp_path / "run.json").read_text())
    assert status["status"] == "diverged" and "step" in status["message"]
    assert latest_checkpoint(tmp_path).name == "stage-1-seq64"


def test_packed_stage_fills_sequences(sample_corpus, tmp_path):
    from obert_lib import pretraining

    plan = pretraining.load_plan(
        "tiny",
        corpus_dir=str(sample_corpus.output_dir),
        output_dir=str(tmp_path),
        **{
            "stages": [
                {
                    "name": "packed",
                    "seq_len": 128,
                    "global_batch": 4,
                    "micro_batch": 4,
                    "steps": 2,
                    "warmup_steps": 1,
                    "packing": "first_fit",
                }
            ]
        },
    )
    packed = pretraining.run(plan, {"checkpoint_every": 0}, progress=False).metrics
    plan.stages[0].packing, plan.output_dir = "none", str(tmp_path / "unpacked")
    single = pretraining.run(plan, {"checkpoint_every": 0}, progress=False).metrics
    # real tokens per sequence ([CLS] ... [SEP]): packed rows fill most of the 128, single paragraphs do not
    per_sequence = lambda m: m["tokens"].mean() / 4  # noqa: E731
    assert per_sequence(packed) > 110 > per_sequence(single) * 1.2
