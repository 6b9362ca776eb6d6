"""Power calculations against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from r1eval.power import Design, detectable_difference, questions_needed, samples_needed

# (z_{0.975} + z_{0.8})^2 = (1.959964 + 0.841621)^2 = 7.848879
Z2 = 7.848879


def test_questions_needed_by_hand() -> None:
    design = Design(between=0.1, within=0.2)
    # variance at K=4: 0.1 + 0.2/4 = 0.15; n = 7.848879 * 0.15 / 0.05^2 = 470.93 -> 471
    assert questions_needed(design, 0.05, samples=4) == 471
    assert questions_needed(design, 0.05, samples=1) == math.ceil(Z2 * 0.3 / 0.0025)


def test_samples_needed_by_hand_and_when_none_suffices() -> None:
    design = Design(between=0.01, within=0.2)
    # 30 questions, delta 0.1: budget = 30 * 0.01 / 7.848879 = 0.038222; K = 0.2 / 0.028222
    assert samples_needed(design, 0.1, questions=30) == math.ceil(0.2 / (30 * 0.01 / Z2 - 0.01))
    # between alone (0.05) exceeds the budget: no number of samples helps with 30 questions
    assert samples_needed(Design(between=0.05, within=0.2), 0.1, questions=30) is None


def test_detectable_difference_inverts_questions_needed() -> None:
    design = Design(between=0.05, within=0.15)
    mde = detectable_difference(design, questions=500, samples=4)
    assert mde == pytest.approx(math.sqrt(Z2 * (0.05 + 0.15 / 4) / 500), rel=1e-6)
    assert questions_needed(design, mde, samples=4) in (500, 501)


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
