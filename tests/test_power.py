"""Power calculations against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from r1eval.scoring.power import Design, detectable_difference, questions_needed, samples_needed

# (z_{0.975} + z_{0.8})^2 = (1.959964 + 0.841621)^2 = 7.848879
Z2 = 7.848879


def _t2(df: int) -> float:
    """(t_{0.975, df} + t_{0.8, df})^2 from scipy, the reference for the t-based plans."""
    return float((student_t.ppf(0.975, df) + student_t.ppf(0.8, df)) ** 2)


def _smallest_n(ratio: float) -> int:
    n = 2
    while _t2(n - 1) * ratio > n:
        n += 1
    return n


def test_questions_needed_uses_t_quantiles() -> None:
    design = Design(between=0.1, within=0.2)
    # variance at K=4: 0.1 + 0.2/4 = 0.15; the z plan says 471, the t plan a little more
    assert questions_needed(design, 0.05, samples=4) == _smallest_n(0.15 / 0.05**2)
    assert questions_needed(design, 0.05, samples=4) > math.ceil(Z2 * 0.15 / 0.0025)
    assert questions_needed(design, 0.2, samples=1) == _smallest_n(0.3 / 0.2**2)


def test_samples_needed_with_t_quantiles_and_when_none_suffices() -> None:
    design = Design(between=0.01, within=0.2)
    # 30 questions, delta 0.1: budget = 30 * 0.01 / (t + t)^2 at 29 degrees of freedom
    budget = 30 * 0.01 / _t2(29)
    assert samples_needed(design, 0.1, questions=30) == math.ceil(0.2 / (budget - 0.01))
    # between alone (0.05) exceeds the budget: no number of samples helps with 30 questions
    assert samples_needed(Design(between=0.05, within=0.2), 0.1, questions=30) is None


def test_detectable_difference_inverts_questions_needed() -> None:
    design = Design(between=0.05, within=0.15)
    mde = detectable_difference(design, questions=500, samples=4)
    assert mde == pytest.approx(math.sqrt(_t2(499) * (0.05 + 0.15 / 4) / 500), rel=1e-4)
    assert questions_needed(design, mde, samples=4) in (500, 501)


def test_planned_power_holds_in_simulation_at_30_questions() -> None:
    """The plan's 80% is what a t test over 30 questions delivers (normal quantiles promised
    80% where the simulation gave 76-77%)."""
    rng = np.random.default_rng(7)
    design = Design(between=0.02, within=0.15)
    delta = detectable_difference(design, questions=30, samples=4)
    sd = math.sqrt(design.variance(4))
    reps = 20_000
    x = rng.normal(delta, sd, size=(reps, 30))
    t = x.mean(axis=1) / (x.std(axis=1, ddof=1) / math.sqrt(30))
    power = float(np.mean(np.abs(t) > student_t.ppf(0.975, 29)))
    assert power == pytest.approx(0.8, abs=0.02)


def test_one_question_with_one_sample_does_not_zero_the_within_variance() -> None:
    """The issue's case: one failed-request question left with one sample made the within
    variance 0 and a plan of 9 samples per question became 1."""
    rng = np.random.default_rng(3)
    outcomes = [list(rng.random(8) < p) for p in rng.uniform(0.2, 0.8, 30)]
    full = Design.from_outcomes(outcomes)
    one_short = Design.from_outcomes([outcomes[0][:1], *outcomes[1:]])
    assert one_short.within == pytest.approx(full.within, rel=0.1)
    assert "questions with >= 2 samples" in one_short.note
    assert samples_needed(one_short, 0.1, 30) == pytest.approx(samples_needed(full, 0.1, 30),
                                                                rel=0.25)


def test_design_from_outcomes_separates_between_and_within() -> None:
    # Questions always right or always wrong: all variance is between questions.
    all_or_nothing = [[True] * 8] * 10 + [[False] * 8] * 10
    d = Design.from_outcomes(all_or_nothing)
    assert d.within == 0.0 and d.between == pytest.approx(np.var([1] * 10 + [0] * 10, ddof=1))
    # Every question a coin flip with 4 of 8 right: no between variance, within = 0.25 * 8/7.
    coin = [[True, False] * 4] * 20
    d = Design.from_outcomes(coin)
    assert d.between == 0.0 and d.within == pytest.approx(0.25 * 8 / 7)


def test_design_with_one_sample_per_question_is_conservative() -> None:
    d = Design.from_outcomes([[True]] * 6 + [[False]] * 4)
    assert d.within == 0.0 and d.between == pytest.approx(np.var([1] * 6 + [0] * 4, ddof=1))
    assert "not separable" in d.note


def test_paired_design_uses_differences() -> None:
    base = [[True] * 4] * 5 + [[False] * 4] * 5
    same = [list(q) for q in base]
    d = Design.for_paired(base, same)  # identical runs: no spread of differences at all
    assert d.between == 0.0 and d.within == 0.0
    with pytest.raises(ValueError):
        Design.for_paired(base, same[:-1])


def test_assumed_design_states_its_assumption() -> None:
    d = Design.assumed(0.8, between_share=0.25)
    assert d.between == pytest.approx(0.04) and d.within == pytest.approx(0.12)
    assert "assumed" in d.note
