"""The bootstrap interval of an accuracy: exact at the ends, the textbook width in the middle, seeded."""

import numpy as np
import pytest

from obert_lib.evaluation.statistics import bootstrap_ci


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
