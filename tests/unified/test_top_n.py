"""Top-N against full fine-tuning: the unlabelled pretraining text, the ablation's variants, the accuracy table
read back from hand-written ablation files, counted compute against the layer count, and the figures."""

from __future__ import annotations

import json

import matplotlib
import pandas as pd
import pytest

from obert_lib.config import ConfigError, DataError
from obert_lib.unified import top_n

matplotlib.use("Agg")


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def test_unlabeled_corpus_groups_short_texts_and_drops_idiom_blanks(tmp_path):
    _write(tmp_path / "tnews" / "unlabeled.json", [{"sentence": f"标题{i}", "id": i} for i in range(12)])
    _write(tmp_path / "chid" / "unlabeled.json", [{"content": "他#idiom#地走了。", "id": 0}, {"content": " ", "id": 1}])
    out = top_n.unlabeled_corpus(tmp_path, tmp_path / "out" / "corpus.jsonl", tasks=["tnews", "chid"])
    docs = [json.loads(line) for line in (tmp_path / "out" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    assert (out["documents"], out["texts"]) == (3, 13)  # 10 + 2 titles; one chid passage, the blank one dropped
    assert docs[0] == {"id": "tnews-0", "text": "\n".join(f"标题{i}" for i in range(10))}
    assert docs[1] == {"id": "tnews-10", "text": "标题10\n标题11"}
    assert docs[2] == {"id": "chid-0", "text": "他地走了。"}


@pytest.mark.bad_input
def test_unlabeled_corpus_refuses_tasks_without_unlabelled_text_and_missing_files(tmp_path):
    with pytest.raises(ConfigError, match=r"tasks: \['iflytek'\] ship no unlabeled.json"):
        top_n.unlabeled_corpus(tmp_path, tmp_path / "c.jsonl", tasks=["iflytek"])
    with pytest.raises(DataError, match="tnews/unlabeled.json: missing"):
        top_n.unlabeled_corpus(tmp_path, tmp_path / "c.jsonl", tasks=["tnews"])


def test_ablation_config_lists_full_and_one_variant_per_n():
    cfg = top_n.ablation_config({"train": {"epochs": 1}}, ["tnews"], [1, 6, 3], layers=12, seeds=[0, 1])
    assert cfg["variants"] == {
        "full": {},
        "top6": {"model.freeze_layers": 6},
        "top3": {"model.freeze_layers": 9},
        "top1": {"model.freeze_layers": 11},
    }
    assert (cfg["baseline"], cfg["seeds"], cfg["tasks"]) == ("full", [0, 1], ["tnews"])


@pytest.mark.bad_input
@pytest.mark.parametrize("tops", [[12], [-1], [], [True]])
def test_ablation_config_refuses_n_outside_the_encoder(tops):
    with pytest.raises(ConfigError, match=r"tops: .* must be integers in \[0, 11\]"):
        top_n.ablation_config({}, ["tnews"], tops, layers=12)


def _ablation_dir(tmp_path):
    """A finished top-N ablation as run_ablation writes it: config, summary and runs (two seeds)."""
    variants = {"full": {}, "top3": {"model.freeze_layers": 9}, "top1": {"model": {"freeze_layers": 11}}}
    (tmp_path / "ablation_config.json").write_text(json.dumps({"variants": variants}), encoding="utf-8")
    summary = pd.DataFrame([
        {"task": "tnews", "variant": "full", "n": 2, "mean": 0.50, "std": 0.02, "delta": 0.0, "p_t": float("nan"),
         "p_wilcoxon": float("nan"), "seconds_per_step": 0.2},
        {"task": "tnews", "variant": "top1", "n": 2, "mean": 0.40, "std": 0.01, "delta": -0.1, "p_t": 0.03,
         "p_wilcoxon": 0.5, "seconds_per_step": 0.1},
        {"task": "tnews", "variant": "top3", "n": 2, "mean": 0.45, "std": 0.03, "delta": -0.05, "p_t": 0.2,
         "p_wilcoxon": 0.5, "seconds_per_step": 0.12},
    ])  # fmt: skip
    summary.to_csv(tmp_path / "summary.csv", index=False)
    runs = pd.DataFrame([{"task": t, "variant": "top1", "seed": s, "status": "ran", "run_dir": f"runs/{t}/top1/s{s}"}
                         for t in ("tnews", "iflytek") for s in (0, 1)])  # fmt: skip
    runs.to_csv(tmp_path / "runs.csv", index=False)
    return tmp_path


def test_accuracy_table_reads_n_from_each_variants_freeze_layers(tmp_path):
    table = top_n.accuracy_table(_ablation_dir(tmp_path), layers=12)
    assert list(table["variant"]) == ["full", "top3", "top1"] and list(table["N"]) == [12, 3, 1]
    text = top_n.format_accuracy(table)
    assert list(text["dev accuracy %"]) == ["50.0 ± 2.0", "45.0 ± 3.0", "40.0 ± 1.0"]
    assert list(text["Δ vs full"]) == ["", "-5.0", "-10.0"] and list(text["paired t p"]) == ["", "0.200", "0.030"]
    fig = top_n.plot_accuracy_vs_top(table, 12)
    assert [tuple(t.get_text() for t in fig.axes[0].get_legend().get_texts())] == [("tnews",)]


@pytest.mark.bad_input
def test_accuracy_table_needs_a_finished_ablation_and_enough_layers(tmp_path):
    with pytest.raises(DataError, match="summary.csv: missing; run the ablation first"):
        top_n.accuracy_table(tmp_path, layers=12)
    with pytest.raises(ConfigError, match="layers: 4 is fewer than a variant's model.freeze_layers"):
        top_n.accuracy_table(_ablation_dir(tmp_path), layers=4)


def test_task_checkpoints_pick_one_variant_and_seed(tmp_path):
    dirs = top_n.task_checkpoints(_ablation_dir(tmp_path), "top1", 1)
    assert dirs == {"tnews": tmp_path / "runs/tnews/top1/s1/best", "iflytek": tmp_path / "runs/iflytek/top1/s1/best"}
    with pytest.raises(ConfigError, match="no finished run of 'top3' with seed 0"):
        top_n.task_checkpoints(tmp_path, "top3", 0)


def test_counted_compute_equals_the_layer_count_and_sits_below_obert_theory():
    grid = top_n.compute_grid((4, 64, 2, 256), tasks=(1, 3), tops=(1, 2, 6))
    assert list(zip(grid["T"], grid["N"])) == [(1, 1), (1, 2), (3, 1), (3, 2)]  # N = 6 > L = 4 left out
    # the heads (64 x 2 per task, on both sides) are the only FLOPs outside the layers: < 0.1% here
    assert ((grid["measured"] - grid["layers"]).abs() < 1e-3).all()
    assert grid.loc[3, "layers"] == pytest.approx((4 - 2 + 3 * 2) / 12)
    assert grid.loc[3, "theory"] == pytest.approx((4 + 3 * 2) / 12) and (grid["theory"] > grid["measured"]).all()
    assert len(top_n.plot_compute(grid).axes[0].lines) == 4  # measured and theory per N


def test_checkpoint_layers(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"num_hidden_layers": 12}), encoding="utf-8")
    assert top_n.checkpoint_layers(tmp_path) == 12
    with pytest.raises(ConfigError, match="config.json is missing"):
        top_n.checkpoint_layers(tmp_path / "nothing")


def test_markdown_table_of_the_formatted_accuracies(tmp_path):
    table = top_n.format_accuracy(top_n.accuracy_table(_ablation_dir(tmp_path), layers=12))
    lines = top_n.markdown(table).splitlines()
    assert lines[0] == "| task | variant | N trained | seeds | dev accuracy % | Δ vs full | paired t p |"
    assert lines[1] == "| --- | --- | ---: | ---: | --- | --- | --- |"
    assert lines[3] == "| tnews | top3 | 3 | 2 | 45.0 ± 3.0 | -5.0 | 0.200 |" and len(lines) == 5
