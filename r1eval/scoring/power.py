"""How many questions or samples it takes to tell a difference apart: power calculations.

A task's score is a mean over questions of per-question estimates. With K samples per question
the variance of one question's estimate splits in two (law of total variance):

    Var = between + within / K

``between`` is how much the questions' true rates differ (no number of samples removes it);
``within`` is the mean Bernoulli variance p_i(1 - p_i) of one sample of a question. The mean
over n questions then has variance (between + within / K) / n, and a two-sided test at level
``alpha`` detects a difference ``delta`` with probability ``power`` when

    (z_{1-alpha/2} + z_{power})^2 * (between + within / K) / n <= delta^2.

The same holds for paired differences between two runs (``Design.for_paired``), where
``between`` is the spread of the true per-question differences.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from r1eval.scoring import stats

__all__ = [
    "Design",
    "detectable_difference",
    "questions_needed",
    "samples_needed",
]


@dataclass(frozen=True)
class Design:
    """Variance parts of a per-question estimate: ``between + within / K``."""

    between: float
    within: float
    note: str = ""
    #: The test is a z test (the same-question test, whose variance rests on thousands of
    #: samples), not a t test over questions.
    normal: bool = False

    def variance(self, samples: int) -> float:
        """Variance of one question's estimate from ``samples`` samples."""
        return self.between + self.within / samples

    @classmethod
    def from_outcomes(cls, outcomes: Sequence[Sequence[bool]]) -> Design:
        """Estimated from a run's per-question outcomes (one bool per sample)."""
        means, within = _parts(outcomes)
        observed = float(np.var(means, ddof=1)) if len(means) > 1 else 0.0
        return _design(observed, within, np.array([len(q) for q in outcomes]))

    @classmethod
    def for_paired(
        cls, base: Sequence[Sequence[bool]], candidate: Sequence[Sequence[bool]]
    ) -> Design:
        """Estimated from two runs on the same questions (aligned lists), for the difference
        candidate - base; ``within`` is the sum of both runs' within-question variances."""
        if len(base) != len(candidate):
            raise ValueError("paired outcomes need the same questions in both runs")
        base_means, base_within = _parts(base)
        cand_means, cand_within = _parts(candidate)
        differences = cand_means - base_means
        observed = float(np.var(differences, ddof=1)) if len(differences) > 1 else 0.0
        within = base_within + cand_within
        counts = (np.array([len(q) for q in base]) + np.array([len(q) for q in candidate])) / 2
        return _design(observed, within, counts)

    @classmethod
    def same_questions(cls, within: float, figure_samples: int,
                       figure_within: float | None = None) -> Design:
        """The design of a run's score minus a figure measured on the same questions with
        ``figure_samples`` per question (``r1eval.claims.reproduction``): the questions are common,
        so only sampling within them is left; the figure's part, ``figure_within`` (default
        ``within``) / ``figure_samples``, does not shrink with the run's K and is carried as
        ``between``."""
        figure = within if figure_within is None else figure_within
        return cls(between=figure / figure_samples, within=within,
                   note=f"same questions, figure measured with K={figure_samples}", normal=True)

    @classmethod
    def assumed(cls, p: float, between_share: float = 0.5) -> Design:
        """A stated assumption when no run is at hand: a score ``p`` whose Bernoulli variance
        p(1-p) is split ``between_share`` between questions and the rest within them."""
        if not 0.0 <= p <= 1.0 or not 0.0 <= between_share <= 1.0:
            raise ValueError("p and between_share must be in [0, 1]")
        total = p * (1.0 - p)
        note = (f"assumed: score {p:.2f}, {between_share:.0%} of its variance between "
                "questions")
        return cls(between=between_share * total, within=(1 - between_share) * total, note=note)

    def paired(self, correlation: float) -> Design:
        """The design of the per-question difference between two models that each look like
        this one, when their true per-question rates correlate ``correlation`` over questions.

        Var(q_i - p_i) = 2 (1 - correlation) between (what the two models share about which
        questions are hard cancels), and each run adds its own ``within`` (K samples in each).
        """
        if not 0.0 <= correlation <= 1.0:
            raise ValueError("correlation must be in [0, 1]")
        note = f"{self.note}; per-question rates of the two models correlated {correlation:g}"
        return Design(between=2.0 * (1.0 - correlation) * self.between,
                      within=2.0 * self.within, note=note)


def _parts(outcomes: Sequence[Sequence[bool]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-question means, and per-question unbiased within variances divided by k_i (NaN for
    a question with one sample: its within variance cannot be estimated)."""
    if not outcomes or any(len(q) == 0 for q in outcomes):
        raise ValueError("every question needs at least one sample")
    counts = np.array([len(q) for q in outcomes], dtype=np.float64)
    correct = np.array([sum(q) for q in outcomes], dtype=np.float64)
    return correct / counts, stats.within_variances(correct, counts) / counts


def _design(observed: float, within_over_k: np.ndarray, samples: np.ndarray) -> Design:
    """Between and within parts from the observed variance of per-question estimates.

    The within part is estimated only from questions with two or more samples (a single
    sample says nothing about it; counting such a question as 0 once made one failed request
    turn a plan of 9 samples per question into 1). With none, it cannot be told from the
    between part and all is counted as between (conservative: more samples never credited).
    """
    counts = samples.astype(np.float64)  # samples per question (mean of two runs' if paired)
    estimable = ~np.isnan(within_over_k)
    if not estimable.any():
        note = "one sample per question: between and within variance not separable"
        return Design(between=observed, within=0.0, note=note)
    # mean over estimable questions of w_i (= (w_i / k_i) * k_i), and the mean of 1 / k_i over
    # all questions, which is what the observed variance carries
    within = float(np.mean(within_over_k[estimable] * counts[estimable]))
    within_term = within * float(np.mean(1.0 / counts))
    between = max(0.0, observed - within_term)
    note = "estimated from a run"
    if not estimable.all():
        note += f" (within variance from the {int(estimable.sum())} questions with >= 2 samples)"
    return Design(between=between, within=within, note=note)


def _quantile_sum(alpha: float, power: float, questions: int | None = None) -> float:
    """z_{1-alpha/2} + z_{power}, or with Student t quantiles at ``questions`` - 1 degrees of
    freedom: the test over n questions is a t test, and normal quantiles promise 80% power
    where a simulation at n = 30 gave 76-77%."""
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError("alpha and power must be in (0, 1)")
    if questions is None or questions < 2:
        normal = NormalDist()
        return normal.inv_cdf(1.0 - alpha / 2.0) + normal.inv_cdf(power)
    df = questions - 1
    return stats.t_quantile(1.0 - alpha, df) + stats.t_quantile(2.0 * power - 1.0, df)


def _df_questions(design: Design, questions: int) -> int | None:
    return None if design.normal else questions


def questions_needed(
    design: Design, delta: float, samples: int, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Questions needed, at ``samples`` per question, to detect a difference ``delta`` (the
    smallest n whose t-quantile plan reaches ``power``)."""
    if delta <= 0:
        raise ValueError("delta must be positive")
    ratio = design.variance(samples) / delta**2
    n = max(1, math.ceil(_quantile_sum(alpha, power) ** 2 * ratio))
    if design.normal:
        return n
    while n < 10_000_000 and _quantile_sum(alpha, power, n) ** 2 * ratio > n:
        n += max(1, n // 50)  # t quantiles shrink towards z: a few steps from the z answer
    while n > 2 and _quantile_sum(alpha, power, n - 1) ** 2 * ratio <= n - 1:
        n -= 1
    return n


def samples_needed(
    design: Design, delta: float, questions: int, alpha: float = 0.05, power: float = 0.8
) -> int | None:
    """Samples per question needed with ``questions`` questions; None if no number suffices
    (the spread between questions alone hides a difference of ``delta``)."""
    if delta <= 0 or questions < 1:
        raise ValueError("delta must be positive and questions at least 1")
    quantiles = _quantile_sum(alpha, power, _df_questions(design, questions))
    budget = questions * delta**2 / quantiles**2  # allowed per-question variance
    if design.between >= budget:
        return None
    if design.within == 0.0:
        return 1
    return max(1, math.ceil(design.within / (budget - design.between)))


def detectable_difference(
    design: Design, questions: int, samples: int, alpha: float = 0.05, power: float = 0.8
) -> float:
    """The smallest difference detected with probability ``power`` (minimum detectable effect)."""
    quantiles = _quantile_sum(alpha, power, _df_questions(design, questions))
    return quantiles * math.sqrt(design.variance(samples) / questions)
