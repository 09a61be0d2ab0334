"""The bootstrap interval of an accuracy and of the score, the paired bootstrap and the exact McNemar test:
exact at the ends, the textbook width in the middle, seeded."""

import time

import numpy as np
import pytest

from obert_lib.evaluation.statistics import (
    bootstrap_ci,
    mcnemar_exact,
    paired_bootstrap,
    paired_bootstrap_score,
    score_ci,
)


def test_all_right_or_all_wrong_has_no_spread():
    assert bootstrap_ci(np.ones(50, dtype=bool)) == (1.0, 1.0)
    assert bootstrap_ci(np.zeros(50, dtype=bool)) == (0.0, 0.0)


def test_half_right_of_400_rows_gives_the_normal_approximation_width():
    correct = np.arange(400) % 2 == 0  # accuracy 0.5: 0.5 +- 1.96 * sqrt(0.25 / 400) = 0.5 +- 0.049
    low, high = bootstrap_ci(correct)
    assert low == pytest.approx(0.451, abs=0.005) and high == pytest.approx(0.549, abs=0.005)
    narrower = bootstrap_ci(correct, level=0.5)  # 0.5 +- 0.674 * 0.025
    assert narrower[0] == pytest.approx(0.483, abs=0.005) and narrower[1] == pytest.approx(0.517, abs=0.005)


def test_the_same_seed_gives_the_same_interval_and_bad_input_is_refused():
    correct = np.arange(90) % 3 == 0
    assert bootstrap_ci(correct, seed=4) == bootstrap_ci(correct, seed=4)
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_ci(np.array([], dtype=bool))
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(correct, level=1.5)


def test_score_ci_is_a_point_when_every_task_is_all_right_or_all_wrong_and_brackets_the_score_otherwise():
    tasks = {"a": np.ones(30), "b": np.zeros(10), "c": np.ones(5)}
    assert score_ci(tasks) == pytest.approx((2 / 3, 2 / 3))
    mixed = {"a": np.arange(400) % 2 == 0, "b": np.ones(400)}  # score 0.75; the spread is half of task a's
    low, high = score_ci(mixed)
    assert low == pytest.approx(0.75 - 0.0245, abs=0.004) and high == pytest.approx(0.75 + 0.0245, abs=0.004)
    assert score_ci(mixed, seed=3) == score_ci(mixed, seed=3)


def test_paired_bootstrap_of_identical_runs_gives_no_difference_and_p_one():
    correct = np.arange(200) % 3 == 0
    assert paired_bootstrap(correct, correct) == {"diff": 0.0, "ci95": (0.0, 0.0), "p_value": 1.0}


def test_paired_bootstrap_of_a_clear_difference_and_its_seed():
    a = np.zeros(100)
    b = (np.arange(100) < 30).astype(float)  # B right on 30 rows A got wrong, the same elsewhere
    result = paired_bootstrap(a, b, resamples=2000, seed=1)
    assert result["diff"] == pytest.approx(0.3)
    assert result["p_value"] < 0.01
    low, high = result["ci95"]  # 0.3 +- 1.96 * sqrt(0.3 * 0.7 / 100)
    assert low == pytest.approx(0.21, abs=0.02) and high == pytest.approx(0.39, abs=0.02)
    assert paired_bootstrap(a, b, resamples=2000, seed=1) == result
    assert paired_bootstrap(b, a, resamples=2000, seed=1)["diff"] == pytest.approx(-0.3)


def test_paired_bootstrap_resamples_pairs_like_drawing_row_indices():
    rng = np.random.default_rng(0)
    a, b = rng.random(300) < 0.6, rng.random(300) < 0.7
    idx = rng.integers(0, 300, size=(4000, 300))  # the textbook version: the same row indices for A and B
    brute = np.quantile(b[idx].mean(1) - a[idx].mean(1), [0.025, 0.975])
    low, high = paired_bootstrap(a, b)["ci95"]
    assert low == pytest.approx(brute[0], abs=0.01) and high == pytest.approx(brute[1], abs=0.01)


def test_paired_bootstrap_is_fast_for_a_large_test_set():
    rng = np.random.default_rng(0)
    a, b = rng.random(3000) < 0.6, rng.random(3000) < 0.62
    start = time.perf_counter()
    paired_bootstrap(a, b, resamples=10_000)
    paired_bootstrap_score({str(t): a for t in range(9)}, {str(t): b for t in range(9)}, resamples=10_000)
    assert time.perf_counter() - start < 1.0


def test_paired_bootstrap_score_averages_the_task_differences():
    a = {"x": np.zeros(50), "y": np.ones(20)}
    b = {"x": np.ones(50), "y": np.ones(20)}  # +1 on x, 0 on y: the score rises by 0.5 with no spread at all
    assert paired_bootstrap_score(a, b) == {"diff": 0.5, "ci95": (0.5, 0.5), "p_value": 0.0}
    assert paired_bootstrap_score(a, a)["p_value"] == 1.0
    b["x"] = np.arange(50) < 10  # +0.2 on x
    result = paired_bootstrap_score(a, b, seed=2)
    assert result["diff"] == pytest.approx(0.1) and result == paired_bootstrap_score(a, b, seed=2)


def test_mcnemar_exact_on_known_tables():
    assert mcnemar_exact(np.zeros(5), np.ones(5)) == {"b01": 5, "b10": 0, "p_value": 0.0625}  # 2 / 2**5
    same = np.array([1, 0, 1, 1, 0, 0])
    assert mcnemar_exact(same, same) == {"b01": 0, "b10": 0, "p_value": 1.0}
    a = np.array([1, 1, 0, 0, 1, 0])
    b = np.array([0, 0, 1, 1, 1, 0])  # b01 = b10 = 2
    assert mcnemar_exact(a, b)["p_value"] == 1.0
    a = np.r_[np.ones(2), np.zeros(8), np.ones(40)]
    b = np.r_[np.zeros(2), np.ones(8), np.ones(40)]  # 2 vs 8: 2 * (1 + 10 + 45) / 1024
    assert mcnemar_exact(a, b) == {"b01": 8, "b10": 2, "p_value": pytest.approx(0.109375)}


@pytest.mark.bad_input
def test_paired_tests_refuse_unpaired_or_non_binary_outcomes():
    with pytest.raises(ValueError, match="same rows"):
        paired_bootstrap(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="0/1"):
        mcnemar_exact(np.array([0.5, 1.0]), np.ones(2))
    with pytest.raises(ValueError, match="same tasks"):
        paired_bootstrap_score({"x": np.ones(2)}, {"y": np.ones(2)})
    with pytest.raises(ValueError, match="non-empty"):
        score_ci({"x": np.array([])})
