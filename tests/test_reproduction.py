"""The same-question reproduction test (r1eval.claims.reproduction) against scipy and by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from r1eval.claims.reproduction import ASSUMED_FIGURE_SAMPLES, PSEUDO_SAMPLES, same_questions


def test_variances_by_hand() -> None:
    correct, samples = np.array([3, 1, 2, 4]), np.array([4, 4, 4, 4])
    test = same_questions(correct, samples, 10 / 16, 8)  # the figure equals the score
    q = (correct + PSEUDO_SAMPLES) / (samples + 2 * PSEUDO_SAMPLES)
    w = q * (1 - q) * samples / (samples - 1)
    assert test.score == pytest.approx(10 / 16)
    assert test.run_variance == pytest.approx(float(np.sum(w / 4)) / 16)
    assert test.reported_variance == pytest.approx(float(np.sum(w / 8)) / 16)
    assert test.standard_error == pytest.approx(math.sqrt(float(np.sum(w)) * (1 / 4 + 1 / 8)) / 4)
    # a figure 30 points lower: its side's variance at the run's rates moved down by 0.3
    # (the question at 4/4 is no longer certain there), when that is larger
    lower = same_questions(correct, samples, 10 / 16 - 0.3, 8)
    moved = np.clip(q - 0.3, 0, 1)
    w_moved = moved * (1 - moved) * 4 / 3
    assert lower.reported_within == pytest.approx(max(float(w.mean()), float(w_moved.mean())))
    assert lower.run_variance == pytest.approx(test.run_variance)


@pytest.mark.parametrize(("reported", "margin"), [(0.5, 0.05), (0.6, 0.05), (0.66, 0.1)])
def test_p_values_match_scipy(reported: float, margin: float) -> None:
    rng = np.random.default_rng(5)
    samples = np.full(30, 16)
    correct = rng.binomial(16, rng.uniform(0.1, 0.9, 30))
    test = same_questions(correct, samples, reported, 64)
    d, se = test.difference, test.standard_error
    assert test.p_value() == pytest.approx(2 * norm.sf(abs(d) / se))
    tost = max(norm.sf((d + margin) / se), norm.cdf((d - margin) / se))
    assert test.p_equivalence(margin) == pytest.approx(tost)
    low, high = test.difference_interval(0.95)
    assert (low, high) == pytest.approx((d - norm.ppf(0.975) * se, d + norm.ppf(0.975) * se))
    # the tests and the intervals agree: TOST at 5% <=> the 90% interval inside (-m, m);
    # two-sided at 5% <=> 0 outside the 95% interval
    low90, high90 = test.difference_interval(0.90)
    assert test.equivalent(margin) == (-margin < low90 and high90 < margin)
    assert test.differs() == (not low <= 0 <= high)


def test_unknown_figure_k_is_assumed_and_one_sample_runs_use_the_bound() -> None:
    test = same_questions([1] * 30, [1] * 30, 0.9, None)
    assert test.samples_assumed and test.reported_samples == ASSUMED_FIGURE_SAMPLES == 1
    q = 30.5 / 31  # all right at K = 1: the bound q(1 - q) with half a pseudo-sample each way
    assert test.within == pytest.approx(q * (1 - q))
    assert test.run_variance > 0


def test_a_question_with_one_sample_takes_the_others_mean() -> None:
    full = same_questions([8, 4, 2], [8, 8, 8], 0.5, 64)
    short = same_questions([8, 4, 1], [8, 8, 1], 0.5, 64)
    q = (np.array([8, 4]) + PSEUDO_SAMPLES) / (8 + 2 * PSEUDO_SAMPLES)
    w = q * (1 - q) * 8 / 7
    assert short.within == pytest.approx(float(w.mean()))
    assert full.within != short.within


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="fraction"):
        same_questions([1], [2], 55.5, 64)
    with pytest.raises(ValueError, match="reported_samples"):
        same_questions([1], [2], 0.5, 0)
    with pytest.raises(ValueError, match="margin"):
        same_questions([1], [2], 0.5, 64).p_equivalence(0.0)


def test_coverage_and_error_rates_in_a_small_seeded_simulation() -> None:
    """30 questions of Beta-distributed difficulty, K = 16 in the run and 64 in the figure,
    both drawn from the same true rates: the 95% interval of the difference covers 0 about
    95% of the time (bench/verdicts.py runs the full grid)."""
    rng = np.random.default_rng(11)
    covered = reproduced = 0
    reps = 600
    for _ in range(reps):
        rates = rng.beta(0.8, 0.8, 30)
        run = rng.binomial(16, rates)
        figure = float(rng.binomial(64, rates).mean()) / 64
        test = same_questions(run, np.full(30, 16), figure, 64)
        low, high = test.difference_interval()
        covered += low <= 0 <= high
        reproduced += test.equivalent(0.05) and not test.differs()
    assert 0.93 <= covered / reps <= 0.975
    assert reproduced / reps > 0.5
