"""The ablation runner (issue 16): plan and hashes, resumable runs with a stub run function in this process, in
worker processes and on a local Ray instance, failures kept to their run, exact paired statistics, figures,
and one-line config errors."""

from __future__ import annotations

import hashlib
import json
import math
import types
from pathlib import Path

import pandas as pd
import pytest

from obert_lib.config import ConfigError
from obert_lib.finetuning import ablation
from obert_lib.finetuning.ablation_stats import (
    paired_t,
    summarise_ablation,
    t_two_sided_p,
    wilcoxon_exact,
)

BASE_SCORE = {"eprstmt": 0.5, "bustm": 0.25}
FGM_GAIN = {0: 0.125, 1: 0.0625, 2: 0.1875}  # per seed: mean 0.125, std 0.0625 -> t = 2*sqrt(3) with 2 df


def fake_run(cfg: dict, progress: bool = True):
    """A deterministic stand-in for obert_lib.finetuning.run: the score follows task, tricks and seed.

    eval_metric = task base + seed/32 + FGM gain of the seed (fgm) + (seed - 1)/16 (rdrop); seconds per
    step 0.5, doubled by FGM and times 1.5 by R-Drop. Raises when train.explode_on_seed is the seed."""
    task, seed = cfg["data"]["task"], cfg["train"]["seed"]
    if cfg["train"].get("explode_on_seed") == seed:
        raise RuntimeError(f"exploded on seed {seed}")
    tricks = cfg.get("tricks", {})
    fgm = tricks.get("fgm", {}).get("enabled", False)
    rdrop = tricks.get("rdrop", {}).get("enabled", False)
    score = BASE_SCORE[task] + seed / 32 + (FGM_GAIN[seed] if fgm else 0.0) + ((seed - 1) / 16 if rdrop else 0.0)
    sps = 0.5 * (2.0 if fgm else 1.0) * (1.5 if rdrop else 1.0)
    Path(cfg["output_dir"], "model.txt").write_text("weights", encoding="utf-8")
    return types.SimpleNamespace(
        metrics={"eval_metric": score, "seconds_per_step": sps, "steps": 10}, output_dir=Path(cfg["output_dir"])
    )


def counting(calls: list):
    """fake_run that also appends (task, variant key, seed) of each call to `calls` (same process only)."""

    def run(cfg, progress=True):
        tricks = cfg.get("tricks", {})
        calls.append((cfg["data"]["task"], json.dumps(tricks, sort_keys=True), cfg["train"]["seed"]))
        return fake_run(cfg, progress)

    return run


def ablation_cfg(out: Path, **extra) -> dict:
    return {
        "base": {"model": {"checkpoint": "tiny"}, "train": {"epochs": 1, "lr": 1e-3}},
        "tasks": ["eprstmt", "bustm"],
        "variants": {
            "baseline": {},
            "fgm": {"tricks.fgm.enabled": True},
            "rdrop": {"tricks": {"rdrop": {"enabled": True}}},
        },
        "seeds": [0, 1, 2],
        "output_dir": str(out),
        **extra,
    }


# ---------------------------------------------------------------- plan


def test_plan_resolves_each_run_and_names_its_folder_by_the_config_hash(tmp_path):
    specs = ablation.plan(ablation_cfg(tmp_path))
    assert [(s.task, s.variant, s.seed) for s in specs][:4] == [
        ("eprstmt", "baseline", 0),
        ("eprstmt", "baseline", 1),
        ("eprstmt", "baseline", 2),
        ("eprstmt", "fgm", 0),
    ]
    assert len(specs) == 18
    fgm1 = specs[4]
    assert fgm1.overrides == {"tricks.fgm.enabled": True, "data.task": "eprstmt", "train.seed": 1}
    expected = {
        "model": {"checkpoint": "tiny"},
        "train": {"epochs": 1, "lr": 1e-3, "seed": 1},
        "tricks": {"fgm": {"enabled": True}},
        "data": {"task": "eprstmt"},
    }
    canonical = json.dumps(expected, sort_keys=True, separators=(",", ":"))
    assert fgm1.config_hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert fgm1.run_dir == tmp_path / "runs" / "eprstmt" / "fgm" / f"seed1-{fgm1.config_hash[:8]}"
    assert fgm1.config == {**expected, "output_dir": str(fgm1.run_dir)}
    assert len({s.config_hash for s in specs}) == 18 and len({s.run_dir for s in specs}) == 18


def test_plan_hash_is_stable_across_key_order_and_output_dir(tmp_path):
    first = ablation.plan(ablation_cfg(tmp_path / "a"))
    reordered = ablation_cfg(tmp_path / "b")
    reordered["base"] = {"train": {"lr": 1e-3, "epochs": 1}, "model": {"checkpoint": "tiny"}, "output_dir": "x"}
    second = ablation.plan(reordered)
    assert [s.config_hash for s in first] == [s.config_hash for s in second]
    assert [s.run_dir.relative_to(tmp_path / "a") for s in first] == [
        s.run_dir.relative_to(tmp_path / "b") for s in second
    ]
    changed = ablation.plan(ablation_cfg(tmp_path / "a", base={"train": {"epochs": 2, "lr": 1e-3}}))
    assert not {s.config_hash for s in first} & {s.config_hash for s in changed}


def test_yaml_with_base_config_beside_it_and_per_task_overrides(tmp_path):
    (tmp_path / "finetune.yaml").write_text("train:\n  epochs: 2\ndata:\n  train_split: train_0\n", encoding="utf-8")
    (tmp_path / "ablation.yaml").write_text(
        "base_config: finetune.yaml\n"
        "tasks:\n  tnews: {data.train_split: train_few_all}\n  eprstmt:\n"
        "variants: {baseline: {}, pgd: {tricks.pgd.enabled: true}}\n"
        "baseline: baseline\nseeds: [3]\n"
        f"output_dir: {tmp_path / 'out'}\n",
        encoding="utf-8",
    )
    specs = ablation.plan(tmp_path / "ablation.yaml")
    assert [(s.task, s.variant, s.seed) for s in specs] == [
        ("tnews", "baseline", 3),
        ("tnews", "pgd", 3),
        ("eprstmt", "baseline", 3),
        ("eprstmt", "pgd", 3),
    ]
    assert specs[1].config["data"] == {"train_split": "train_few_all", "task": "tnews"}
    assert specs[1].config["train"] == {"epochs": 2, "seed": 3}
    assert specs[3].config["data"] == {"train_split": "train_0", "task": "eprstmt"}
    assert specs[3].config["tricks"] == {"pgd": {"enabled": True}}


# ---------------------------------------------------------------- running


FGM_STD = math.sqrt(14 / 2048)  # std of the fgm scores per task: deviations -1/32, -2/32, 3/32 around the mean


def check_tables(result, out: Path):
    runs, summary = result.runs, result.summary
    assert list(runs[["task", "variant", "seed"]].itertuples(index=False, name=None))[:3] == [
        ("eprstmt", "baseline", 0),
        ("eprstmt", "baseline", 1),
        ("eprstmt", "baseline", 2),
    ]
    assert list(summary[["task", "variant"]].itertuples(index=False, name=None)) == [
        (t, v) for t in ("eprstmt", "bustm") for v in ("baseline", "fgm", "rdrop")
    ]
    row = summary.set_index(["task", "variant"])
    assert row.loc[("eprstmt", "baseline"), ["n", "mean", "std", "delta"]].tolist() == [3, 0.53125, 0.03125, 0.0]
    assert row.loc[("eprstmt", "fgm"), "mean"] == 0.65625
    assert row.loc[("bustm", "fgm"), "delta"] == 0.125
    assert row.loc[("bustm", "fgm"), "std"] == pytest.approx(FGM_STD, rel=1e-12)
    assert row.loc[("bustm", "fgm"), "p_t"] == pytest.approx(1 - 2 * math.sqrt(3) / math.sqrt(14), rel=1e-9)
    assert row.loc[("bustm", "fgm"), "p_wilcoxon"] == 0.25
    assert row.loc[("bustm", "rdrop"), ["delta", "t", "p_t", "p_wilcoxon"]].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert row.loc[("eprstmt", "fgm"), "cost_ratio"] == 2.0
    assert row.loc[("eprstmt", "rdrop"), "cost_ratio"] == 1.5
    assert math.isnan(row.loc[("eprstmt", "baseline"), "p_t"])
    assert pd.read_csv(out / "runs.csv")["eval_metric"].tolist() == runs["eval_metric"].tolist()
    assert len(pd.read_csv(out / "summary.csv")) == 6
    saved = json.loads((out / "ablation_config.json").read_text())
    assert saved["baseline"] == "baseline" and saved["tasks"] == {"eprstmt": {}, "bustm": {}}


def test_eighteen_runs_then_a_rerun_runs_nothing_and_a_lost_done_file_reruns_one(tmp_path):
    calls: list = []
    result = ablation.run_ablation(ablation_cfg(tmp_path), run_fn=counting(calls), progress=False)
    assert len(calls) == 18 and len(set(calls)) == 18
    assert set(result.runs["status"]) == {"ran"} and len(result.runs) == 18
    check_tables(result, tmp_path)
    first_runs = result.runs

    calls.clear()
    again = ablation.run_ablation(ablation_cfg(tmp_path), run_fn=counting(calls), progress=False)
    assert calls == []
    assert set(again.runs["status"]) == {"cached"}
    pd.testing.assert_frame_equal(again.summary, result.summary)
    columns = ["task", "variant", "seed", "hash", "run_dir", "eval_metric", "seconds_per_step", "steps"]
    pd.testing.assert_frame_equal(again.runs[columns], first_runs[columns])

    victim = ablation.plan(ablation_cfg(tmp_path))[7]  # eprstmt / rdrop / seed 1
    victim.done_file.unlink()
    once_more = ablation.run_ablation(ablation_cfg(tmp_path), run_fn=counting(calls), progress=False)
    assert calls == [("eprstmt", json.dumps({"rdrop": {"enabled": True}}), 1)]
    assert once_more.runs["status"].tolist() == ["cached"] * 7 + ["ran"] + ["cached"] * 10
    assert json.loads(victim.done_file.read_text())["metrics"]["eval_metric"] == 0.53125


def test_two_worker_processes_give_the_tables_of_one_and_keep_a_failure_to_its_run(tmp_path):
    def cfg(out):
        c = ablation_cfg(out)
        c["variants"]["boom"] = {"train.explode_on_seed": 1}
        return c

    warning = r"^2 of 24 ablation runs failed \(first: runs/eprstmt/boom/seed1-"
    with pytest.warns(UserWarning, match=warning):
        one = ablation.run_ablation(cfg(tmp_path / "one"), workers=1, run_fn=fake_run, progress=False)
    with pytest.warns(UserWarning, match=warning):
        two = ablation.run_ablation(cfg(tmp_path / "two"), workers=2, run_fn=fake_run, progress=False)
    pd.testing.assert_frame_equal(two.summary, one.summary)
    pd.testing.assert_frame_equal(two.runs.drop(columns="wall_seconds"), one.runs.drop(columns="wall_seconds"))
    failed = two.runs[two.runs["status"] == "failed"]
    assert failed[["task", "variant", "seed", "error"]].values.tolist() == [
        ["eprstmt", "boom", 1, "RuntimeError: exploded on seed 1"],
        ["bustm", "boom", 1, "RuntimeError: exploded on seed 1"],
    ]
    assert len(list((tmp_path / "two" / "runs").glob("*/*/*/done.json"))) == 22
    assert two.summary.set_index(["task", "variant"]).loc[("bustm", "fgm"), "delta"] == 0.125


def test_a_failing_run_is_recorded_and_the_others_complete(tmp_path):
    cfg = ablation_cfg(tmp_path, tasks=["bustm"])
    cfg["variants"]["boom"] = {"train.explode_on_seed": 1}
    with pytest.warns(UserWarning, match=r"^1 of 12 ablation runs failed \(first: runs/bustm/boom/seed1-"):
        result = ablation.run_ablation(cfg, run_fn=fake_run, progress=False)
    failed = result.runs[result.runs["status"] == "failed"]
    assert failed[["variant", "seed", "error"]].values.tolist() == [["boom", 1, "RuntimeError: exploded on seed 1"]]
    assert (result.runs["status"] == "ran").sum() == 11
    boom_dir = tmp_path / failed["run_dir"].iloc[0]
    assert not (boom_dir / "done.json").exists()
    assert json.loads((boom_dir / "error.json").read_text())["error"] == "RuntimeError: exploded on seed 1"
    boom = result.summary.set_index("variant").loc["boom"]
    assert boom[["n", "n_pairs", "failed", "delta"]].tolist() == [2, 2, 1, 0.0]

    calls: list = []
    with pytest.warns(UserWarning, match="^1 of 12 ablation runs failed"):
        ablation.run_ablation(cfg, run_fn=counting(calls), progress=False)
    assert [c[2] for c in calls] == [1]  # only the failed run is tried again


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_ray_executor_matches_local(local_ray, tmp_path):
    on_ray = ablation.run_ablation(
        ablation_cfg(tmp_path / "ray", ray={"num_cpus": 1}), workers=2, executor="ray", run_fn=fake_run, progress=False
    )
    check_tables(on_ray, tmp_path / "ray")
    local = ablation.run_ablation(ablation_cfg(tmp_path / "local"), run_fn=fake_run, progress=False)
    pd.testing.assert_frame_equal(on_ray.summary, local.summary)
    pd.testing.assert_frame_equal(on_ray.runs.drop(columns="wall_seconds"), local.runs.drop(columns="wall_seconds"))
    assert local_ray.is_initialized()  # an instance the caller started is left running
    rerun = ablation.run_ablation(ablation_cfg(tmp_path / "ray", executor="ray"), run_fn=fake_run, progress=False)
    assert set(rerun.runs["status"]) == {"cached"}


# ---------------------------------------------------------------- statistics


def test_t_distribution_p_values():
    assert t_two_sided_p(2.0, 4) == pytest.approx(0.1161, abs=1e-4)
    assert t_two_sided_p(2.776, 4) == pytest.approx(0.05, abs=1e-4)
    assert t_two_sided_p(3.0, 1) == pytest.approx(1 - 2 / math.pi * math.atan(3.0), rel=1e-12)  # Cauchy
    assert t_two_sided_p(5.0, 2) == pytest.approx(1 - 5 / math.sqrt(27), rel=1e-12)  # 1 - t/sqrt(2 + t²)
    assert t_two_sided_p(0.0, 7) == 1.0 and t_two_sided_p(-2.0, 4) == t_two_sided_p(2.0, 4)


def test_paired_tests_on_hand_made_differences():
    assert paired_t([0.75, 0.75, 1.0], [0.5, 0.25, 0.5]) == pytest.approx((5.0, 1 - 5 / math.sqrt(27)), rel=1e-12)
    assert wilcoxon_exact([1, 2, 3], [0, 0, 0]) == 0.25  # 2 of the 8 sign assignments are as extreme
    assert wilcoxon_exact([1, 2, 3, 4, 5], [0] * 5) == 2 / 32
    assert wilcoxon_exact([1, -2, 3, 0], [0] * 4) == 6 / 8  # the zero dropped; W+ = 4 of 6
    assert wilcoxon_exact([1, 1, 2], [0, 0, 0]) == 0.25  # tied ranks 1.5, 1.5, 3
    assert all(math.isnan(v) for v in (*paired_t([1.0], [0.0]), wilcoxon_exact([1.0], [0.0])))
    assert all(math.isnan(v) for v in (*paired_t([1, 2], [1, 2]), wilcoxon_exact([1, 2], [1, 2])))
    assert paired_t([2, 3], [1, 2]) == (math.inf, 0.0)


def hand_made_runs() -> pd.DataFrame:
    rows = [("t", "base", s, m, 1.0) for s, m in enumerate([0.5, 0.25, 0.5])]
    rows += [("t", "fgm", s, m, c) for s, (m, c) in enumerate([(0.75, 2.0), (0.75, 2.0), (1.0, 2.5)])]
    rows += [("t", "pgd", s, m, 4.0) for s, m in enumerate([0.5, 0.5])]  # seed 2 missing: 2 pairs
    rows += [("t", "bad", 0, None, None)]
    runs = pd.DataFrame(rows, columns=["task", "variant", "seed", "eval_metric", "seconds_per_step"])
    return runs.assign(status=["ran"] * 8 + ["failed"])


def test_summary_exact_on_hand_made_runs():
    summary = summarise_ablation(hand_made_runs(), baseline="base").set_index("variant")
    assert summary.loc["base", ["baseline", "n", "mean", "delta", "cost_ratio"]].tolist() == [
        True,
        3,
        1.25 / 3,
        0.0,
        1.0,
    ]
    assert summary.loc["base", "std"] == pytest.approx(math.sqrt(1 / 48), rel=1e-12)
    fgm = summary.loc["fgm"]
    assert fgm[["n", "n_pairs", "failed"]].tolist() == [3, 3, 0]
    assert fgm["mean"] == pytest.approx(2.5 / 3, rel=1e-12) and fgm["std"] == pytest.approx(
        math.sqrt(1 / 48), rel=1e-12
    )
    assert fgm["delta"] == pytest.approx(1.25 / 3, rel=1e-12) and fgm["t"] == pytest.approx(5.0, rel=1e-12)
    assert fgm["p_t"] == pytest.approx(1 - 5 / math.sqrt(27), rel=1e-12) and fgm["p_wilcoxon"] == 0.25
    assert fgm["seconds_per_step"] == pytest.approx(6.5 / 3, rel=1e-12)
    assert fgm["cost_ratio"] == pytest.approx(6.5 / 3, rel=1e-12)  # mean seconds per step over the baseline's (1.0)
    pgd = summary.loc["pgd"]
    assert pgd[["n", "n_pairs", "mean", "cost_ratio"]].tolist() == [2, 2, 0.5, 4.0]
    assert pgd["delta"] == pytest.approx(0.5 - 1.25 / 3, rel=1e-12)
    assert pgd["p_t"] == pytest.approx(t_two_sided_p(0.25 / 0.25, 1), rel=1e-12)  # d = [0, 0.25]: t = 1, 1 df
    bad = summary.loc["bad"]
    assert bad[["n", "n_pairs", "failed"]].tolist() == [0, 0, 1] and math.isnan(bad["mean"]) and math.isnan(bad["p_t"])


# ---------------------------------------------------------------- figures


def test_figures_have_their_axes_and_mark_significant_cells(tmp_path):
    from matplotlib.figure import Figure

    from obert_lib.finetuning.ablation_plots import export_figures, plot_ablation_bars, plot_ablation_delta

    summary = summarise_ablation(hand_made_runs(), baseline="base")
    bars = plot_ablation_bars(summary)
    assert isinstance(bars, Figure) and [ax.get_title() for ax in bars.axes] == ["t"]
    assert bars.axes[0].get_ylabel() == "eval_metric 验证集指标 dev metric"
    assert bars.axes[0].get_xlabel() == "变体 variant"
    assert [t.get_text() for t in bars.axes[0].get_xticklabels()] == ["base", "fgm", "pgd", "bad"]
    delta = plot_ablation_delta(summary)
    heat = delta.axes[0]
    assert (heat.get_xlabel(), heat.get_ylabel()) == ("变体 variant", "任务 task")
    assert [t.get_text() for t in heat.get_xticklabels()] == ["fgm", "pgd", "bad"]
    assert [t.get_text() for t in heat.texts] == ["+0.417*", "+0.083", "n/a"]
    assert heat.get_title() == "相对基线的变化 Δ vs baseline (* paired t p < 0.05)"
    paths = export_figures(summary, tmp_path)
    assert sorted(p.name for p in paths) == [
        "ablation_bars.png",
        "ablation_bars.svg",
        "ablation_delta.png",
        "ablation_delta.svg",
    ]


# ---------------------------------------------------------------- bad input


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "change, message",
    [
        ({"seed": [0]}, "seed: unknown key in AblationConfig; did you mean 'seeds'?"),
        ({"seeds": []}, "seeds: no seeds; list at least one, e.g. seeds: [0, 1, 2]"),
        ({"seeds": [0, 0]}, "seeds: seed 0 is listed twice; list each seed once"),
        ({"tasks": []}, "tasks: no tasks; list at least one, e.g. tasks: [eprstmt, bustm]"),
        ({"variants": {}}, "variants: no variants; give at least one"),
        ({"baseline": "none"}, "baseline: 'none' is not a variant; use one of ['baseline', 'fgm', 'rdrop']"),
        ({"variants": {"a": {"train.seed": 3}}}, "variants.a.train.seed: is set by the ablation"),
        ({"tasks": {"tnews": {"data": {"task": "x"}}}}, "tasks.tnews.data.task: is set by the ablation"),
        ({"variants": {"../up": {}}}, "variants.../up: is not usable as a folder name"),
        ({"base_config": "x.yaml"}, "base_config: give either base (a mapping) or base_config (a file), not both"),
        ({"workers": 0}, "workers: 0 processes is impossible; use >= 1"),
        ({"executor": "slurm"}, "executor: 'slurm' is not allowed; use one of ['local', 'ray']"),
    ],
)
def test_bad_ablation_config_is_one_line(tmp_path, change, message):
    with pytest.raises(ConfigError) as info:
        ablation.run_ablation(ablation_cfg(tmp_path, **change), run_fn=fake_run, progress=False)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    assert not (tmp_path / "runs").exists()


@pytest.mark.bad_input
def test_a_missing_base_config_file_is_one_line(tmp_path):
    cfg = {**ablation_cfg(tmp_path), "base_config": str(tmp_path / "missing.yaml")}
    del cfg["base"]
    with pytest.raises(
        ConfigError, match=r"^base_config file .*missing.yaml does not exist; pass an existing YAML file$"
    ):
        ablation.plan(cfg)


@pytest.mark.bad_input
def test_a_run_fn_without_the_metric_fails_that_run(tmp_path):
    def no_metric(cfg, progress=True):
        return types.SimpleNamespace(metrics={"accuracy": 1.0}, output_dir=cfg["output_dir"])

    cfg = ablation_cfg(tmp_path, tasks=["bustm"], seeds=[0], variants={"baseline": {}})
    with pytest.warns(UserWarning, match="1 of 1 ablation runs failed"):
        result = ablation.run_ablation(cfg, run_fn=no_metric, progress=False)
    assert result.runs["error"].tolist() == [
        "ValueError: the run's metrics hold no 'eval_metric'; set metric: to one of ['accuracy']"
    ]


# ---------------------------------------------------------------- the real fine-tuning run


def test_real_ablation_two_tasks_three_variants_three_seeds_then_a_rerun_runs_nothing(tiny_checkpoint, tmp_path):
    cfg = ablation_cfg(tmp_path)
    cfg["base"] = {
        "model": {"checkpoint": str(tiny_checkpoint.checkpoints[-1]), "max_length": 64},
        "train": {"epochs": 1},
    }
    result = ablation.run_ablation(cfg, progress=False)
    assert result.runs["status"].tolist() == ["ran"] * 18
    assert result.runs["eval_metric"].between(0, 1).all() and (result.runs["steps"] > 0).all()
    assert (result.summary["n"] == 3).all() and len(result.summary) == 6
    assert (result.summary.loc[result.summary["baseline"], "cost_ratio"] == 1.0).all()
    assert len(list((tmp_path / "runs").glob("*/*/*/done.json"))) == 18
    again = ablation.run_ablation(cfg, progress=False)
    assert again.runs["status"].tolist() == ["cached"] * 18
    pd.testing.assert_frame_equal(again.summary, result.summary)
