"""Multi-task pretraining through the real pretraining.run on CPU DeepSpeed: ZeRO 0/2/3, killed and resumed runs match
an uninterrupted one, and a plan without aux tasks trains exactly as before."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file

import obert_lib.model  # noqa: F401  (registers model_type "obert" with the Auto classes)
from obert_lib import config as cfgmod
from obert_lib import pretraining
from obert_lib.pretraining.resume import mark_stage_done
from obert_lib.pretraining.run_dir import METRIC_COLUMNS, RunDir
from tests.pretraining.kill import run_and_kill

TASKS = [
    {"name": "click", "kind": "pairs", "path": "sample:click_pairs.jsonl"},
    {"name": "samedoc", "kind": "same_document", "micro_batch": 4},
]
TASK_COLUMNS = ["loss/total"] + [  # WeightedLoss.metrics' order
    f"{kind}/{task}" for task in ("mlm", "click", "samedoc") for kind in ("loss", "weight", "log_var")
]


def _plan(corpus, out, stage_steps=(3, 3), **extra):
    steps = {f"stages.{i}.steps": n for i, n in enumerate(stage_steps)}
    warmup = {f"stages.{i}.warmup_steps": 1 for i in range(len(stage_steps))}
    return pretraining.load_plan(
        "tiny", corpus_dir=str(corpus), output_dir=str(out), aux_tasks=TASKS, **steps, **warmup, **extra
    )


def _fixed_corpus(out):
    """20 documents of 4 paragraphs of random ids with word and phrase spans and a 1,000-token vocabulary, written
    without the corpus pipeline, so that changes to the corpus stage never move the numbers below."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from transformers import BertTokenizer

    rng = np.random.default_rng(20)
    rows = []
    for d in range(20):
        for p in range(4):
            n = int(rng.integers(20, 70))
            rows.append(
                {
                    "doc_id": f"d{d:02d}",
                    "source": "test",
                    "paragraph": p,
                    "text": "",
                    "input_ids": rng.integers(5, 1000, size=n).tolist(),
                    "word_spans": [[k, k + 2] for k in range(0, n - 1, 2)],
                    "phrase_spans": [[k, k + 4] for k in range(0, n - 3, 4)],
                }
            )
    (out / "shards").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), out / "shards" / "part-00000.parquet")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"t{i}" for i in range(995)]
    BertTokenizer(vocab={t: i for i, t in enumerate(tokens)}).save_pretrained(out / "tokenizer")
    return out


def test_a_plan_without_aux_tasks_trains_exactly_as_before(tmp_path):
    """The tiny plan (3 + 3 steps, ZeRO 2) on a fixed corpus: the numbers the trainer gave before aux tasks existed
    (commit bcd3a32 and this one agreed to the last bit on the 2-core CI machine), the same metrics columns and no
    multitask files."""
    plan = pretraining.load_plan(
        "tiny",
        corpus_dir=str(_fixed_corpus(tmp_path / "corpus")),
        output_dir=str(tmp_path / "run"),
        **{"stages.0.steps": 3, "stages.1.steps": 3, "stages.0.warmup_steps": 1, "stages.1.warmup_steps": 1},
    )
    assert plan.aux_tasks == []
    result = pretraining.run(plan, {"checkpoint_every": 0}, progress=False)
    metrics = result.metrics
    assert list(metrics.columns) == METRIC_COLUMNS
    assert list(pd.read_csv(result.output_dir / "metrics.csv").columns) == METRIC_COLUMNS
    before = [
        6.91089129447937,
        6.938960075378418,
        6.922632932662964,
        6.917886734008789,
        6.931506872177124,
        6.943370819091797,
    ]
    assert np.allclose(metrics["loss"], before, rtol=0, atol=1e-5), metrics["loss"].tolist()
    assert metrics["tokens"].tolist() == [777, 701, 806, 324, 416, 370]  # the same batches
    final = load_file(str(result.checkpoints[-1] / "model.safetensors"))
    assert sum(float(v.double().abs().sum()) for v in final.values()) == pytest.approx(3170.1828236861793, rel=1e-6)
    assert sum(float(v.double().sum()) for v in final.values()) == pytest.approx(369.7507001091857, abs=1e-3)
    assert not list(result.output_dir.rglob("multitask.*"))


def test_two_tasks_train_the_same_under_zero_0_2_and_3_and_stages_save_the_plain_masked_lm(sample_corpus, tmp_path):
    from transformers import AutoModelForMaskedLM

    results = {}
    for zero in (0, 2, 3):
        plan = _plan(sample_corpus.output_dir, tmp_path / f"zero{zero}")
        results[zero] = pretraining.run(plan, {"zero_stage": zero, "checkpoint_every": 0}, progress=False)
    metrics = results[2].metrics
    assert list(metrics.columns) == METRIC_COLUMNS + TASK_COLUMNS
    assert list(pd.read_csv(results[2].output_dir / "metrics.csv").columns) == METRIC_COLUMNS + TASK_COLUMNS
    assert np.isfinite(metrics[TASK_COLUMNS].to_numpy()).all()
    assert (metrics["loss"] == metrics["loss/mlm"]).all()
    for task in ("mlm", "click", "samedoc"):  # weight = exp(-s): every task is a classification under kendall
        assert np.allclose(metrics[f"weight/{task}"], np.exp(-metrics[f"log_var/{task}"]), rtol=1e-6)
    total = sum(
        metrics[f"weight/{t}"] * metrics[f"loss/{t}"] + metrics[f"log_var/{t}"] / 2 for t in ("mlm", "click", "samedoc")
    )
    assert np.allclose(metrics["loss/total"], total, rtol=1e-5)
    assert metrics["log_var/click"].iloc[-1] != 0  # the s_i were trained
    for zero in (0, 3):
        other = results[zero].metrics
        assert np.allclose(other[TASK_COLUMNS], metrics[TASK_COLUMNS], rtol=0, atol=1e-5), zero

    for zero, result in results.items():
        first, second = result.checkpoints
        lm = AutoModelForMaskedLM.from_pretrained(second)  # strict keys: the plain masked LM
        assert type(lm).__name__ == "OBertForMaskedLM"
        assert lm.bert.embeddings.word_embeddings.weight.shape[1] == 64  # whole under ZeRO-3 too
        saved = [load_file(str(path / "multitask.safetensors"))["weighting.log_vars"] for path in (first, second)]
        # stage 2 warm-started from stage 1's s_i: its first step's s_i are stage 1's last ones
        stage2 = result.metrics[result.metrics["stage"] == 2].iloc[0]
        assert stage2["log_var/click"] == pytest.approx(float(saved[0][1]), abs=1e-7), zero
        assert saved[1].dtype == torch.float32 and not torch.equal(saved[0], saved[1])


def _state(path) -> dict:
    return {**load_file(str(path / "model.safetensors")), **load_file(str(path / "multitask.safetensors"))}


def _same_run(out, reference) -> None:
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics["global_step"]) == list(reference.metrics["global_step"])  # every step exactly once
    columns = ["loss", "mlm_accuracy", "lr", *TASK_COLUMNS]
    diff = (metrics[columns] - reference.metrics[columns]).abs().max().max()
    assert diff < 1e-5, metrics[["global_step", "loss/total"]].assign(reference=reference.metrics["loss/total"])
    final, expected = _state(reference.checkpoints[-1]), _state(RunDir(out).stage_checkpoints()[-1])
    assert final.keys() == expected.keys()
    assert max(float((final[k] - expected[k]).abs().max()) for k in final) < 1e-5


@pytest.mark.parametrize("zero", [2, 3])
def test_a_killed_two_task_run_resumes_to_the_uninterrupted_runs_losses_weights_and_final_weights(
    sample_corpus, tmp_path, zero
):
    corpus = sample_corpus.output_dir
    speed = {"checkpoint_every": 2, "zero_stage": zero}
    reference = pretraining.run(_plan(corpus, tmp_path / "reference", (6, 4)), speed, progress=False)
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(yaml.safe_dump(cfgmod.to_dict(_plan(corpus, tmp_path / "unused", (6, 4)))), encoding="utf-8")
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "obert_lib.cli", "pretrain", "--plan", str(plan_file), "--output", str(out)]
    args += ["--speed", "checkpoint_every=2", "--speed", f"zero_stage={zero}"]
    run_and_kill(args, out, global_step=4)  # kill after the step-4 resume point of stage 1
    point = pretraining.resume_point(out)
    assert point["global_step"] >= 4

    resumed = pretraining.run(_plan(corpus, out, (6, 4)), speed, progress=False, resume=True)
    assert resumed.status == "finished"
    _same_run(out, reference)


def test_a_run_resumed_at_a_stage_boundary_warm_starts_the_heads_and_log_variances(sample_corpus, tmp_path):
    """Resuming at the start of stage 2 builds it from stage 1's checkpoint: masked LM, heads and s_i."""
    corpus = sample_corpus.output_dir
    reference = pretraining.run(_plan(corpus, tmp_path / "reference"), {"checkpoint_every": 0}, progress=False)
    out = tmp_path / "boundary"
    shutil.copytree(reference.output_dir, out)
    run_dir = RunDir(out)
    shutil.rmtree(run_dir.stage_checkpoints()[-1])  # as if the run had stopped right after stage 1
    mark_stage_done(run_dir, 1, 3, finished=False)
    resumed = pretraining.run(_plan(corpus, out), {"checkpoint_every": 0}, progress=False, resume=True)
    assert resumed.status == "finished"
    _same_run(out, reference)


def test_a_sentence_order_task_trains_beside_the_others_on_the_sample_corpus(sample_corpus, tmp_path):
    """kind sentence_order through the real trainer: its columns are logged, finite, and start at the plain sum."""
    tasks = [*TASKS, {"name": "order", "kind": "sentence_order", "micro_batch": 4}]
    plan = pretraining.load_plan(
        "tiny",
        corpus_dir=str(sample_corpus.output_dir),
        output_dir=str(tmp_path / "run"),
        aux_tasks=tasks,
        **{"stages.0.steps": 2, "stages.1.steps": 2, "stages.0.warmup_steps": 1, "stages.1.warmup_steps": 1},
    )
    metrics = pretraining.run(plan, {"checkpoint_every": 0}, progress=False).metrics
    columns = [f"{kind}/order" for kind in ("loss", "weight", "log_var")]
    assert set(columns) <= set(metrics.columns) and np.isfinite(metrics[columns].to_numpy()).all()
    assert metrics["weight/order"].iloc[0] == 1.0 and 0.3 < metrics["loss/order"].iloc[0] < 1.2  # ~ln 2 at first
