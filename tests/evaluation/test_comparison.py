"""compare_runs on tiny hand-written run folders: exact accuracies and differences, and one-line refusals."""

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest

from obert_lib.config import ConfigError, DataError
from obert_lib.evaluation.comparison import COLUMNS, compare_runs, plot_comparison, write_comparison

matplotlib.use("Agg")

SPLIT, DATA_DIR = "dev_few_all", "shared/data/fewclue"


def write_run(root, name, tasks, split=SPLIT, data_dir=DATA_DIR):
    """A run folder: tasks maps task -> (ids, gold, correct); accuracy None writes an unlabelled task."""
    run = root / name
    run.mkdir()
    metrics = {"score": None, "split": split, "data_dir": data_dir, "checkpoint": f"ckpt/{name}", "tasks": {}}
    for task, (ids, gold, correct) in tasks.items():
        (run / task).mkdir()
        labelled = correct is not None
        rows = [
            {"id": i, "gold": g if labelled else "", "pred": g, "correct": "" if not labelled else int(c)}
            for i, g, c in zip(ids, gold, correct if labelled else [None] * len(ids))
        ]
        pd.DataFrame(rows, columns=["id", "gold", "pred", "correct"]).to_csv(run / task / "scores.csv", index=False)
        accuracy = 100 * float(np.mean(correct)) if labelled else None
        metrics["tasks"][task] = {"accuracy": accuracy, "n": len(ids), "ci95": [0, 100]}
    (run / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return run


IDS_E = [0, 1, 2, 3, 3, 5, 6, 7, 8, 9]  # ids repeat in FewCLUE: rows are matched by position
GOLD_E = ["Positive", "Negative"] * 5
IDS_B, GOLD_B = [10, 11, 12, 13], ["0", "1", "1", "0"]


@pytest.fixture
def two_runs(tmp_path):
    base = write_run(
        tmp_path,
        "base",
        {"eprstmt": (IDS_E, GOLD_E, [1, 1, 1, 1, 1, 1, 0, 0, 0, 0]), "bustm": (IDS_B, GOLD_B, [1, 0, 0, 0])},
    )
    other = write_run(
        tmp_path,
        "new",
        {
            "bustm": (IDS_B, GOLD_B, [1, 1, 1, 0]),
            "eprstmt": (IDS_E, GOLD_E, [1, 1, 1, 1, 1, 0, 1, 1, 1, 0]),
            "csl": ([1, 2], ["0", "1"], [1, 0]),
        },
    )
    return base, other


def test_compare_two_runs_gives_the_exact_accuracies_and_differences(two_runs):
    df = compare_runs(two_runs, resamples=2000)
    assert list(df.columns) == COLUMNS
    assert df["task"].tolist() == ["eprstmt", "bustm", "score"]  # the baseline's order, then the score
    assert df["baseline"].unique().tolist() == ["base"] and df["other"].unique().tolist() == ["new"]
    assert df["n"].tolist() == [10, 4, 14]
    assert df["accuracy_baseline"].tolist() == pytest.approx([60.0, 25.0, 42.5])
    assert df["accuracy_other"].tolist() == pytest.approx([80.0, 75.0, 77.5])
    assert df["diff"].tolist() == pytest.approx([20.0, 50.0, 35.0])
    assert (df["diff_ci95_low"] <= df["diff"]).all() and (df["diff"] <= df["diff_ci95_high"]).all()
    # eprstmt: 3 rows won, 1 lost: 2 * P[Bin(4, 1/2) <= 1] = 2 * 5 / 16; bustm: 2 won, 0 lost: 2 / 4
    assert df["p_mcnemar"].tolist()[:2] == pytest.approx([0.625, 0.5])
    assert np.isnan(df["p_mcnemar"].iloc[2])
    assert df["p_bootstrap"].between(0, 1).all()
    assert df.attrs["left_out"] == ["csl"]
    assert compare_runs(two_runs, resamples=2000).equals(df)  # seeded


def test_a_run_against_itself_differs_by_nothing(two_runs):
    df = compare_runs([two_runs[0], two_runs[0]], names=["A", "A again"], resamples=500)
    assert df["other"].unique().tolist() == ["A again"]
    assert df["diff"].tolist() == [0.0, 0.0, 0.0]
    assert df["diff_ci95_low"].tolist() == [0.0, 0.0, 0.0] and df["diff_ci95_high"].tolist() == [0.0, 0.0, 0.0]
    assert df["p_bootstrap"].tolist() == [1.0, 1.0, 1.0] and df["p_mcnemar"].tolist()[:2] == [1.0, 1.0]
    assert df.attrs["left_out"] == []


def test_three_runs_compare_each_with_the_first_on_the_tasks_all_share(two_runs, tmp_path):
    third = write_run(tmp_path, "third", {"eprstmt": (IDS_E, GOLD_E, [0] * 10)})
    df = compare_runs([*two_runs, third], resamples=500)
    assert df[["task", "other"]].values.tolist() == [
        ["eprstmt", "new"],
        ["score", "new"],
        ["eprstmt", "third"],
        ["score", "third"],
    ]
    assert df["diff"].tolist() == pytest.approx([20.0, 20.0, -60.0, -60.0])
    assert df.attrs["left_out"] == ["bustm", "csl"]


def test_write_and_plot_the_comparison(two_runs, tmp_path):
    df = compare_runs(two_runs, resamples=500)
    path = write_comparison(df, tmp_path / "out" / "comparison.csv")
    back = pd.read_csv(path)
    assert list(back.columns) == COLUMNS and back["diff"].tolist() == pytest.approx(df["diff"].tolist())
    fig = plot_comparison(df)
    ax = fig.axes[0]
    assert "差异 difference" in ax.get_title()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["eprstmt", "bustm", "score"]
    assert any(t.get_text().startswith("p=") for t in ax.texts)


def one_line_error(exc_type, runs, **kwargs) -> str:
    with pytest.raises(exc_type) as info:
        compare_runs(runs, resamples=100, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.bad_input
def test_runs_on_a_different_split_or_data_are_refused(two_runs, tmp_path):
    base, _ = two_runs
    tasks = {"eprstmt": (IDS_E, GOLD_E, [1] * 10)}
    other = write_run(tmp_path, "test_split", tasks, split="test_public")
    message = one_line_error(DataError, [base, other])
    assert str(base) in message and str(other) in message and "split" in message
    other = write_run(tmp_path, "elsewhere", tasks, data_dir="other/fewclue")
    assert "data_dir" in one_line_error(DataError, [base, other])


@pytest.mark.bad_input
def test_runs_on_different_rows_are_refused_naming_the_task(two_runs, tmp_path):
    base, _ = two_runs
    ids = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]  # row 5 (line 6) has id 4 where the baseline has 3
    other = write_run(tmp_path, "other_ids", {"eprstmt": (ids, GOLD_E, [1] * 10)})
    message = one_line_error(DataError, [base, other])
    assert str(base) in message and str(other) in message and "eprstmt" in message and "ids" in message
    other = write_run(tmp_path, "fewer", {"eprstmt": (IDS_E[:8], GOLD_E[:8], [1] * 8)})
    assert "number of rows (10 vs 8)" in one_line_error(DataError, [base, other])


@pytest.mark.bad_input
def test_a_missing_file_is_named(two_runs, tmp_path):
    base, other = two_runs
    (other / "bustm" / "scores.csv").unlink()
    assert str(other / "bustm" / "scores.csv") in one_line_error(DataError, [base, other])
    assert str(tmp_path / "nowhere" / "metrics.json") in one_line_error(DataError, [base, tmp_path / "nowhere"])


@pytest.mark.bad_input
def test_unlabelled_runs_and_bad_arguments_are_refused(two_runs, tmp_path):
    base, _ = two_runs
    unlabelled = write_run(tmp_path, "unlabelled", {"eprstmt": (IDS_E, [""] * 10, None)})
    message = one_line_error(DataError, [base, unlabelled])
    assert "eprstmt" in message and "accuracy null" in message
    assert "at least one run" in one_line_error(ConfigError, [base])
    assert "one name per run" in one_line_error(ConfigError, list(two_runs), names=["only one"])
