"""Tests of r1eval.scoring.stats: hand-computed golden values, and a coverage simulation.

Throughout, z = 1.959963985 is the 97.5% standard normal quantile and z² = 3.841458821.
"""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np
import pytest

from r1eval.scoring import stats
from r1eval.scoring.stats import (
    Interval,
    bootstrap_interval,
    cons_at_k,
    consensus_correct,
    effective_n,
    majority_vote,
    mean_pass_at_k,
    pass_at_k,
    per_question_pass1,
    score_interval,
    wilson_interval,
)

Outcomes = list[list[bool]]


def _width(interval: tuple[float, float]) -> float:
    return interval[1] - interval[0]


# ---------------------------------------------------------------------------------- pass@k


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 1, 0.4),  # 1 - C(3,1)/C(5,1) = 1 - 3/5 = 0.4
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7
        (10, 0, 5, 0.0),  # 1 - C(10,5)/C(10,5) = 0
        (4, 4, 4, 1.0),  # C(0,4) = 0, so 1 - 0/C(4,4) = 1
        (64, 1, 64, 1.0),  # C(63,64) = 0: every draw of all 64 samples holds the correct one
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6 = 0.5
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
    ],
)
def test_pass_at_k_hand_values(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("n", "c", "k"), [(64, 8, 8), (1000, 3, 500), (2000, 1000, 1000)])
def test_pass_at_k_matches_exact_rational_arithmetic(n: int, c: int, k: int) -> None:
    # C(2000, 1000) has about 600 digits: a float formula would overflow.
    exact = 1 - Fraction(comb(n - c, k), comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-12, abs=1e-15)


def test_pass_at_1_is_the_fraction_correct() -> None:
    for n in (1, 7, 64):
        for c in range(n + 1):
            assert pass_at_k(n, c, 1) == pytest.approx(c / n, abs=1e-12)


@pytest.mark.parametrize(("n", "c", "k"), [(4, 2, 5), (4, 2, 0), (4, 5, 1), (4, -1, 1), (0, 0, 1)])
def test_pass_at_k_rejects_bad_arguments(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_mean_pass_at_k_averages_over_questions() -> None:
    outcomes = [[True, False], [False, False], [True, True]]
    # k=1: (1/2 + 0 + 1) / 3 = 0.5
    assert mean_pass_at_k(outcomes, 1) == pytest.approx(0.5)
    # k=2: (1 - C(1,2)/C(2,2) = 1) + (1 - C(2,2)/C(2,2) = 0) + 1, over 3 questions = 2/3
    assert mean_pass_at_k(outcomes, 2) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        mean_pass_at_k(outcomes, 3)
    # available: a question short of k samples counts with pass@n of what it has
    assert mean_pass_at_k(outcomes, 3, available=True) == pytest.approx(2 / 3)
    assert mean_pass_at_k([[False] * 3, [True, False]], 3, available=True) == pytest.approx(0.5)


# ------------------------------------------------------------------------ per-question means


def test_per_question_pass1_with_unequal_sample_counts() -> None:
    outcomes = [[True, False, True, True], [False], [True, True], [False, True, False]]
    # 3/4, 0/1, 2/2, 1/3
    np.testing.assert_allclose(per_question_pass1(outcomes), [0.75, 0.0, 1.0, 1 / 3])
    assert per_question_pass1(outcomes).dtype == np.float64


@pytest.mark.parametrize("outcomes", [[], [[True], []]])
def test_per_question_pass1_rejects_missing_samples(outcomes: Outcomes) -> None:
    with pytest.raises(ValueError):
        per_question_pass1(outcomes)


# ------------------------------------------------------------------- majority vote, cons@k


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (["a", "b", "b"], "b"),
        (["b", "a", "a", "b"], "b"),  # 2-2 tie: "b" appeared first
        (["a", "b", "c"], "a"),  # 1-1-1 tie
        ([None, None, None, "x"], None),  # "no answer" is a vote like any other
        ([None, "c", None, "d", "d"], None),  # 2-2 tie between None and "d": None first
        (["d", "c", None, "d", None], "d"),
        ([None, None], None),
        ([], None),
    ],
)
def test_majority_vote(answers: list[str | None], expected: str | None) -> None:
    assert majority_vote(answers) == expected


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([("5", True), ("7", False), ("5", True)], True),
        ([("7", False), ("5", True), ("7", False)], False),  # a right sample, outvoted
        ([("7", False), ("5", True)], False),  # tie: "7" came first
        ([("5", True), ("7", False)], True),
        # most samples give no answer, a minority the right one: lost (as lighteval counts it)
        ([(None, False), (None, False), (None, False), ("5", True)], False),
        ([(None, False), ("5", True), ("5", True)], True),
        ([(None, False), (None, False)], False),  # no answer at all
        ([("5", True), ("5", True), ("5", False)], True),  # 2 of 3 verdicts on "5" correct
        ([("5", True), ("5", False)], False),  # 1 of 2 is not more than half
    ],
)
def test_consensus_correct(samples: list[tuple[str | None, bool]], expected: bool) -> None:
    assert consensus_correct(samples) is expected


def test_cons_at_k_is_the_fraction_of_questions_won() -> None:
    questions: list[list[tuple[str | None, bool]]] = [
        [("5", True), ("5", True), ("7", False)],
        [("1", False), ("2", True), ("1", False)],
        [(None, False)],
        [("3", True)],
    ]
    assert cons_at_k(questions) == pytest.approx(2 / 4)
    with pytest.raises(ValueError):
        cons_at_k([])
    with pytest.raises(ValueError):
        cons_at_k([[("1", True)], []])


# --------------------------------------------------------------------------------- Wilson


def test_wilson_p_half_n_30() -> None:
    # z²/n = 0.128048627, z²/2n = 0.064024314, denominator 1 + z²/n = 1.128048627
    # centre = (0.5 + 0.064024314) / 1.128048627 = 0.5
    # half = z * sqrt(0.25/30 + z²/(4*900)) / 1.128048627
    #      = 1.959963985 * sqrt(0.008333333 + 0.001067072) / 1.128048627
    #      = 1.959963985 * 0.096955687 / 1.128048627 = 0.190029654 / 1.128048627 = 0.168459
    # -> [0.5 - 0.168459, 0.5 + 0.168459] = [0.3315, 0.6685]
    low, high = wilson_interval(0.5, 30)
    assert low == pytest.approx(0.3315, abs=5e-5)
    assert high == pytest.approx(0.6685, abs=5e-5)


def test_wilson_p_0_8_n_30() -> None:
    # centre = (0.8 + 0.064024314) / 1.128048627 = 0.864024314 / 1.128048627 = 0.765946
    # half = 1.959963985 * sqrt(0.16/30 + 0.001067072) / 1.128048627
    #      = 1.959963985 * sqrt(0.006400405) / 1.128048627
    #      = 1.959963985 * 0.080002533 / 1.128048627 = 0.156802083 / 1.128048627 = 0.139003
    # -> [0.765946 - 0.139003, 0.765946 + 0.139003] = [0.6269, 0.9049]
    low, high = wilson_interval(0.8, 30)
    assert low == pytest.approx(0.6269, abs=5e-5)
    assert high == pytest.approx(0.9049, abs=5e-5)


def test_wilson_at_the_boundaries() -> None:
    # p = 1: centre - half = 1 / (1 + z²/n) = 30 / (30 + 3.841458821) = 0.886487
    low, high = wilson_interval(1.0, 30)
    assert high == 1.0
    assert low == pytest.approx(0.886487, abs=1e-6)
    # p = 0: centre + half = (z²/n) / (1 + z²/n) = 3.841458821 / 33.841458821 = 0.113513
    low, high = wilson_interval(0.0, 30)
    assert low == 0.0
    assert high == pytest.approx(0.113513, abs=1e-6)


def test_wilson_takes_a_fractional_n_and_narrows_as_n_grows() -> None:
    widths = [_width(wilson_interval(0.7, n)) for n in (10.0, 29.5, 30.0, 120.0)]
    assert widths == sorted(widths, reverse=True)
    assert len(set(widths)) == len(widths)


@pytest.mark.parametrize(
    ("p", "n", "confidence"), [(-0.1, 30, 0.95), (1.1, 30, 0.95), (0.5, 0, 0.95), (0.5, 30, 1.0)]
)
def test_wilson_rejects_bad_arguments(p: float, n: float, confidence: float) -> None:
    with pytest.raises(ValueError):
        wilson_interval(p, n, confidence)


# ------------------------------------------------------------------------------ bootstrap


def _alternating(n: int) -> list[float]:
    return [float(i % 2) for i in range(n)]


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    values = np.random.default_rng(3).random(30)
    assert bootstrap_interval(values, seed=1) == bootstrap_interval(values, seed=1)
    assert bootstrap_interval(values, seed=1) != bootstrap_interval(values, seed=2)


def test_bootstrap_contains_the_mean() -> None:
    values = np.random.default_rng(4).random(30) ** 3  # skewed
    low, high = bootstrap_interval(values)
    assert low < values.mean() < high


def test_bootstrap_width_shrinks_as_one_over_root_n() -> None:
    # Same mean 0.5 and spread; 4x the questions should halve the width:
    # about 2 * 1.96 * 0.5 / sqrt(n) = 0.196 for n=100 and 0.098 for n=400.
    small = _width(bootstrap_interval(_alternating(100)))
    large = _width(bootstrap_interval(_alternating(400)))
    assert 1.8 < small / large < 2.2
    assert small == pytest.approx(0.196, abs=0.01)


def test_bootstrap_collapses_when_every_question_agrees() -> None:
    # Why score_interval does not report the bootstrap alone.
    assert bootstrap_interval(np.ones(30)) == (1.0, 1.0)


def test_bootstrap_chunking_does_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    values = np.random.default_rng(5).random(500)
    whole = bootstrap_interval(values, n_resamples=1000)
    monkeypatch.setattr(stats, "_CHUNK_ELEMENTS", 7 * 500 + 3)  # chunks of 7 resamples
    assert bootstrap_interval(values, n_resamples=1000) == whole


@pytest.mark.parametrize(
    ("values", "kwargs"),
    [
        ([], {}),
        ([[0.5, 0.5]], {}),
        ([0.5], {"confidence": 0.0}),
        ([0.5], {"n_resamples": 0}),
    ],
)
def test_bootstrap_rejects_bad_arguments(values: list[float], kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        bootstrap_interval(values, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- effective n


def test_effective_n_for_single_samples_is_n_minus_1() -> None:
    # values 1,1,0,0: p = 0.5, s² = 4 * 0.25 / 3 = 1/3, n_eff = 4 * 0.25 / (1/3) = 3
    assert effective_n([1, 1, 0, 0], [1, 1, 1, 1]) == pytest.approx(3.0)
    # all-or-nothing questions with 8 samples each carry no more information
    assert effective_n([1, 1, 0, 0], [8, 8, 8, 8]) == pytest.approx(3.0)


def test_effective_n_hand_value() -> None:
    # values 0.25, 0.75: p = 0.5, s² = (0.25² + 0.25²) / 1 = 0.125, n_eff = 2 * 0.25 / 0.125 = 4
    assert effective_n([0.25, 0.75], [4, 4]) == pytest.approx(4.0)


def test_effective_n_is_clipped_to_the_number_of_samples() -> None:
    # values 0.5, 0.625: p = 0.5625, p(1-p) = 0.24609375, s² = 2 * 0.0625² / 1 = 0.0078125,
    # n_eff = 2 * 0.24609375 / 0.0078125 = 63, clipped to 8 + 8 = 16 samples
    assert effective_n([0.5, 0.625], [8, 8]) == pytest.approx(16.0)


@pytest.mark.parametrize("values", [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5]])
def test_effective_n_falls_back_to_the_number_of_questions(values: list[float]) -> None:
    assert effective_n(values, [4] * len(values)) == float(len(values))


def test_effective_n_with_pseudo_questions() -> None:
    # 30 questions all right: add one at 0 and one at 1 -> 31 ones and a zero,
    # p' = 31/32, s'² = 32 p'(1-p') / 31, n_eff = 30 p'(1-p') / s'² = 30 * 31/32 = 29.0625
    assert effective_n([1.0] * 30, [64] * 30, pseudo_questions=True) == pytest.approx(29.0625)
    # One sample wrong out of 1920: 29 questions at 1 and one at 63/64, p = 1 - 1/1920.
    # Deviations from p: 29 of 1/1920, one of -29/1920; sum of squares 870/1920²,
    # s² = 870 / (29 * 1920²) = 30/1920², n_eff = 30 * (1919/1920²) / (30/1920²) = 1919.
    values = [1.0] * 29 + [63 / 64]
    assert effective_n(values, [64] * 30) == pytest.approx(1919.0)
    # With the pseudo-questions it stays near the 30 questions.
    assert 29.0625 < effective_n(values, [64] * 30, pseudo_questions=True) < 30.0


def test_effective_n_rejects_mismatched_counts() -> None:
    with pytest.raises(ValueError):
        effective_n([0.5, 0.5], [4])
    with pytest.raises(ValueError):
        effective_n([0.5, 0.5], [4, 0])


# ------------------------------------------------------------------------- score interval


def test_score_interval_all_right_is_not_zero_width() -> None:
    # The bootstrap gives [1, 1]; Wilson at n_eff = 29.0625 (see above) gives
    # low = 29.0625 / (29.0625 + 3.841458821) = 0.883252.
    interval = score_interval([[True]] * 30)
    assert interval.low == pytest.approx(0.883252, abs=1e-6)
    assert interval.high == 1.0
    assert interval.low < 0.95


def test_score_interval_all_wrong() -> None:
    # high = z² / (29.0625 + z²) = 3.841458821 / 32.903958821 = 0.116748
    interval = score_interval([[False] * 8] * 30)
    assert interval.low == 0.0
    assert interval.high == pytest.approx(0.116748, abs=1e-6)


def test_score_interval_one_wrong_sample_does_not_collapse_it() -> None:
    # With the plain Kish n_eff (1919) the Wilson part would be [0.9971, 0.9999].
    outcomes = [[True] * 64] * 29 + [[True] * 63 + [False]]
    assert score_interval(outcomes).low < 0.9


def test_score_interval_contains_the_score_and_is_deterministic() -> None:
    rng = np.random.default_rng(6)
    outcomes = [(rng.random(rng.integers(1, 9)) < 0.6).tolist() for _ in range(30)]
    interval = score_interval(outcomes, seed=3)
    assert interval.low < per_question_pass1(outcomes).mean() < interval.high
    assert score_interval(outcomes, seed=3) == interval
    assert isinstance(interval, Interval)
    assert interval.method == "bootstrap+wilson"


def test_score_interval_is_the_envelope_of_bootstrap_and_wilson() -> None:
    rng = np.random.default_rng(7)
    outcomes = [(rng.random(8) < rng.beta(1.0, 1.0)).tolist() for _ in range(30)]
    values = per_question_pass1(outcomes)
    boot = bootstrap_interval(values, n_resamples=500, seed=2)
    n_eff = effective_n(values, [8] * 30, pseudo_questions=True)
    wilson = wilson_interval(float(values.mean()), n_eff)
    interval = score_interval(outcomes, seed=2, n_resamples=500)
    assert (interval.low, interval.high) == (min(boot[0], wilson[0]), max(boot[1], wilson[1]))


def test_score_interval_is_frozen() -> None:
    interval = score_interval([[True], [False]])
    with pytest.raises(AttributeError):
        interval.low = 0.0  # type: ignore[misc]


# -------------------------------------------------------------------- coverage simulation

N_QUESTIONS = 30
N_BENCHMARKS = 400

# (samples per question K, true population mean, Beta concentration a+b or None for
# questions that all share the same probability). The population mean is what a score
# on 30 questions estimates.
SCENARIOS = [
    (1, 0.3, None),
    (1, 0.5, None),
    (1, 0.8, None),
    (1, 0.95, None),
    (8, 0.3, 1.0),
    (8, 0.8, 1.0),
    (8, 0.8, 4.0),
    (8, 0.95, 1.0),
    (64, 0.9, 1.0),
]


def simulate_benchmarks(k: int, mean: float, concentration: float | None) -> list[Outcomes]:
    """N_BENCHMARKS seeded draws of a 30-question benchmark, K samples per question."""
    rng = np.random.default_rng([k, round(mean * 100), round((concentration or 0) * 10)])
    if concentration is None:
        probs = np.full((N_BENCHMARKS, N_QUESTIONS), mean)
    else:
        a, b = mean * concentration, (1 - mean) * concentration
        probs = rng.beta(a, b, size=(N_BENCHMARKS, N_QUESTIONS))
    correct = rng.random((N_BENCHMARKS, N_QUESTIONS, k)) < probs[..., None]
    return [bench.tolist() for bench in correct]


# Coverage measured on exactly these draws (400 benchmarks, 2,000 resamples), and mean width:
#
#                  bootstrap  Wilson at    envelope with  score_interval   width: envelope with
#   K  mean  a+b   only       Kish n_eff   Kish n_eff     (pseudo-qs)      Kish / score_interval
#   1  0.30  -     0.968      0.980        0.980          0.968            0.334 / 0.334
#   1  0.50  -     0.958      0.958        0.958          0.958            0.348 / 0.348
#   1  0.80  -     0.940      0.960        0.973          0.973            0.302 / 0.302
#   1  0.95  -     0.782      0.950        0.990          0.990            0.189 / 0.189
#   8  0.30  1     0.935      0.938        0.948          0.958            0.247 / 0.251
#   8  0.80  1     0.930      0.938        0.948          0.963            0.220 / 0.228
#   8  0.80  4     0.953      0.955        0.963          0.990            0.160 / 0.176
#   8  0.95  1     0.855      0.895        0.920          0.993            0.129 / 0.156
#   64 0.90  1     0.887      0.892        0.922          0.995            0.161 / 0.179
#
# The percentile bootstrap alone is too narrow at 30 questions; the envelope with the plain
# Kish n_eff still fails this test when difficulty varies and the score is high (last two
# rows); score_interval, whose n_eff adds two pseudo-questions, covers in every row.


@pytest.mark.parametrize(("k", "mean", "concentration"), SCENARIOS)
def test_score_interval_coverage(k: int, mean: float, concentration: float | None) -> None:
    benchmarks = simulate_benchmarks(k, mean, concentration)
    covered = 0
    for i, outcomes in enumerate(benchmarks):
        interval = score_interval(outcomes, seed=i, n_resamples=2000)
        covered += interval.low <= mean <= interval.high
    assert covered / len(benchmarks) >= 0.93
