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

    def variance(self, samples: int) -> float:
        """Variance of one question's estimate from ``samples`` samples."""
        return self.between + self.within / samples

    @classmethod
    def from_outcomes(cls, outcomes: Sequence[Sequence[bool]]) -> Design:
        """Estimated from a run's per-question outcomes (one bool per sample)."""
        means, within = _parts(outcomes)
        observed = float(np.var(means, ddof=1)) if len(means) > 1 else 0.0
        return _design(observed, within, outcomes)

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
        return _design(observed, within, [*base, *candidate])

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
    """Per-question means, and per-question unbiased within variances divided by k_i."""
    if not outcomes or any(len(q) == 0 for q in outcomes):
        raise ValueError("every question needs at least one sample")
    counts = np.array([len(q) for q in outcomes], dtype=np.float64)
    means = np.array([sum(q) / len(q) for q in outcomes], dtype=np.float64)
    # p(1-p) * k/(k-1) is unbiased for a question's Bernoulli variance; undefined for k = 1.
    with np.errstate(divide="ignore", invalid="ignore"):
        unbiased = np.where(counts > 1, means * (1 - means) * counts / (counts - 1), np.nan)
    return means, unbiased / counts


def _design(observed: float, within_over_k: np.ndarray, outcomes: Sequence[Sequence[bool]]
            ) -> Design:
    counts = np.array([len(q) for q in outcomes], dtype=np.float64)
    if np.isnan(within_over_k).any():
        # With one sample per question the two parts cannot be told apart: count it all as
        # between questions (conservative: more samples are then never credited).
        note = "one sample per question: between and within variance not separable"
        return Design(between=observed, within=0.0, note=note)
    within_term = float(within_over_k.mean())  # mean of w_i / k_i
    k = float(counts.mean())
    between = max(0.0, observed - within_term)
    return Design(between=between, within=within_term * k, note="estimated from a run")


def _z_sum(alpha: float, power: float) -> float:
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError("alpha and power must be in (0, 1)")
    normal = NormalDist()
    return normal.inv_cdf(1.0 - alpha / 2.0) + normal.inv_cdf(power)


def questions_needed(
    design: Design, delta: float, samples: int, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Questions needed, at ``samples`` per question, to detect a difference ``delta``."""
    if delta <= 0:
        raise ValueError("delta must be positive")
    return max(1, math.ceil(_z_sum(alpha, power) ** 2 * design.variance(samples) / delta**2))


def samples_needed(
    design: Design, delta: float, questions: int, alpha: float = 0.05, power: float = 0.8
) -> int | None:
    """Samples per question needed with ``questions`` questions; None if no number suffices
    (the spread between questions alone hides a difference of ``delta``)."""
    if delta <= 0 or questions < 1:
        raise ValueError("delta must be positive and questions at least 1")
    budget = questions * delta**2 / _z_sum(alpha, power) ** 2  # allowed per-question variance
    if design.between >= budget:
        return None
    if design.within == 0.0:
        return 1
    return max(1, math.ceil(design.within / (budget - design.between)))


def detectable_difference(
    design: Design, questions: int, samples: int, alpha: float = 0.05, power: float = 0.8
) -> float:
    """The smallest difference detected with probability ``power`` (minimum detectable effect)."""
    return _z_sum(alpha, power) * math.sqrt(design.variance(samples) / questions)
