"""Does a run reproduce a figure measured on the same questions? The same-question test.

A published pass@1 on AIME 2024 was measured on the same 30 questions a run asks. Which 30
questions were asked, and how hard each is, is then common to both numbers and cancels: what
separates the run's score ``S`` from the figure ``F`` when the model is the same is only the
sampling within questions, on both sides. With ``p_i`` question i's true rate, ``k_i`` the
run's samples of it and ``K_f`` the figure's samples per question, over ``n`` questions,

    Var(S - F) = sum_i p_i (1 - p_i) / k_i / n^2  +  sum_i p_i (1 - p_i) / K_f / n^2

Both parts are estimated from the run: ``p_i (1 - p_i)`` from each question's samples with a
tenth of a pseudo-sample of each outcome (``stats.within_variances``); a question with one
sample gets the mean of the others, and a run with one sample per question the bound p(1 - p)
of its score, with half a pseudo-sample each way. Without the pseudo-samples, questions whose
few samples all agree claim zero variance: at 30 questions the interval then covered 61-92%
at K = 4 and 85% at K = 16 for scores near 0.1 or 0.95-0.99; with them, 94-100% in every
setting simulated (up to 1.4 times as wide at K = 4, under 1.1 times at K = 64). ``K_f`` is
the source's (``protocol.samples`` in the registry); when the source does not state it, 1 is
assumed (the widest), and the result says so. On the figure's side p_i (1 - p_i) is the larger
of the run's estimate and the same with the run's rates moved to the figure's mean (see
``_moved_within``).

The difference ``d = S - F`` is then normal to a good approximation (a sum over hundreds to
thousands of samples) and tested two ways at level ``alpha``:

- two-sided, "no difference": ``|d| > z_{1-alpha/2} se`` means ``below`` / ``above``;
- two one-sided tests at the margin ``m`` (equivalence, TOST): ``d - z_{1-alpha} se > -m`` and
  ``d + z_{1-alpha} se < m``, i.e. the 1 - 2 alpha interval of ``d`` lies inside ``(-m, m)``,
  means ``reproduced``.

This answers "would the model, run again on these questions, score what the source printed?",
not "how able is the model on problems like these?": that second question has the interval over
questions (``stats.score_interval``), which no number of samples narrows. The seeded
simulation in ``bench/verdicts.py`` checks the coverage and the error rates (bench/RESULTS.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from r1eval.scoring import stats

__all__ = ["ASSUMED_FIGURE_SAMPLES", "PSEUDO_SAMPLES", "SameQuestions", "outcome_counts",
           "same_questions"]

#: The figure's samples per question when its source does not say (the widest assumption).
ASSUMED_FIGURE_SAMPLES = 1

#: Pseudo-samples of each outcome per question in the within-question variance (see above).
PSEUDO_SAMPLES = 0.1

_NORMAL = NormalDist()


@dataclass(frozen=True)
class SameQuestions:
    """A run's score ``score`` against a figure ``reported`` (fractions) on the same questions.

    ``run_variance`` and ``reported_variance`` are the variances of the two scores from
    sampling within questions (the questions held fixed); ``within`` is the mean over
    questions of the estimated p_i (1 - p_i); ``reported_samples`` the figure's K, and
    ``samples_assumed`` whether the source left it unstated.
    """

    score: float
    reported: float
    n_questions: int
    within: float
    run_variance: float
    reported_samples: int
    samples_assumed: bool
    reported_within: float  # mean p_i (1 - p_i) on the figure's side (see same_questions)

    @property
    def reported_variance(self) -> float:
        return self.reported_within / self.reported_samples / self.n_questions

    @property
    def difference(self) -> float:
        return self.score - self.reported

    @property
    def standard_error(self) -> float:
        return math.sqrt(self.run_variance + self.reported_variance)

    def score_interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Where the run's score would fall again on these questions (clipped to [0, 1])."""
        half = _z(0.5 + confidence / 2) * math.sqrt(self.run_variance)
        return max(0.0, self.score - half), min(1.0, self.score + half)

    def difference_interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Interval for the run's true score minus the figure's, both sides' sampling in it."""
        half = _z(0.5 + confidence / 2) * self.standard_error
        return self.difference - half, self.difference + half

    def p_value(self) -> float:
        """Two-sided p-value for "the run and the figure measure the same score"."""
        if self.standard_error == 0.0:
            return 1.0 if self.difference == 0.0 else 0.0
        return 2.0 * (1.0 - _NORMAL.cdf(abs(self.difference) / self.standard_error))

    def p_equivalence(self, margin: float) -> float:
        """TOST p-value for "the two differ by less than ``margin``" (the larger of the two
        one-sided p-values)."""
        if margin <= 0:
            raise ValueError("margin must be positive")
        gap = margin - abs(self.difference)
        if self.standard_error == 0.0:
            return 0.0 if gap > 0 else 1.0
        return 1.0 - _NORMAL.cdf(gap / self.standard_error)

    def differs(self, alpha: float = 0.05) -> bool:
        return self.p_value() < alpha

    def equivalent(self, margin: float, alpha: float = 0.05) -> bool:
        return self.p_equivalence(margin) < alpha


def same_questions(
    correct: npt.ArrayLike,
    samples: npt.ArrayLike,
    reported: float,
    reported_samples: int | None,
) -> SameQuestions:
    """The same-question comparison of a run (``correct`` of ``samples`` per question) with a
    figure ``reported`` (a fraction) measured with ``reported_samples`` per question (None:
    unknown, ``ASSUMED_FIGURE_SAMPLES`` is used)."""
    c = np.asarray(correct, dtype=np.float64)
    k = np.asarray(samples, dtype=np.float64)
    if c.ndim != 1 or c.size == 0:
        raise ValueError("same_questions needs at least one question")
    if not 0.0 <= reported <= 1.0:
        raise ValueError(f"reported must be a fraction in [0, 1], got {reported}")
    if reported_samples is not None and reported_samples < 1:
        raise ValueError(f"reported_samples must be >= 1, got {reported_samples}")
    rates = c / k
    score = float(rates.mean())
    w = _filled(stats.within_variances(c, k, PSEUDO_SAMPLES), c, k)
    n = c.size
    return SameQuestions(
        score=score, reported=reported, n_questions=n, within=float(w.mean()),
        run_variance=float(np.sum(w / k)) / n**2,
        reported_samples=reported_samples or ASSUMED_FIGURE_SAMPLES,
        samples_assumed=reported_samples is None,
        reported_within=max(float(w.mean()), _moved_within(c, k, w, reported - score)),
    )


def _moved_within(c: stats.FloatArray, k: stats.FloatArray, w: stats.FloatArray,
                  shift: float) -> float:
    """Mean p_i (1 - p_i) with the run's rates moved by ``shift`` to the figure's mean.

    The figure's per-question rates are unknown; when the figure is off the run's score, the
    questions the run always (or never) solves need not be so for the figure, and their
    variance on its side is not 0. Taking the larger of this and the run's own estimate kept
    false ``reproduced`` at 5% where the figure's true score was exactly the margin away.
    """
    estimable = k > 1
    if not estimable.any():
        return float(w.mean())
    q = (c[estimable] + PSEUDO_SAMPLES) / (k[estimable] + 2 * PSEUDO_SAMPLES)
    moved = np.clip(q + shift, 0.0, 1.0)
    return float(np.mean(moved * (1 - moved) * k[estimable] / (k[estimable] - 1)))


def outcome_counts(outcomes: Sequence[Sequence[bool]]) -> tuple[list[int], list[int]]:
    """Correct counts and sample counts per question, from per-sample outcomes."""
    return [sum(q) for q in outcomes], [len(q) for q in outcomes]


def _filled(w: stats.FloatArray, c: stats.FloatArray, k: stats.FloatArray) -> stats.FloatArray:
    """Questions with one sample take the mean estimate of the others. With none estimable,
    the bound q(1 - q) (mean p_i (1 - p_i) <= p(1 - p), Jensen), at q = (correct + 1/2) /
    (samples + 1) so that a run with every sample right does not claim zero variance."""
    missing = np.isnan(w)
    if not missing.any():
        return w
    if (~missing).any():
        fill = float(w[~missing].mean())
    else:
        q = (float(c.sum()) + 0.5) / (float(k.sum()) + 1.0)
        fill = q * (1.0 - q)
    return np.where(missing, fill, w)


def _z(p: float) -> float:
    return _NORMAL.inv_cdf(p)
