"""A paired permutation test of two runs on the same questions, valid whatever their K, and
the interval that inverts it (so the p-value and the interval never disagree).

Under "no difference" (the candidate answers each question as the base does), a question's
``k_b + k_c`` graded samples from the two runs are exchangeable: which ``k_c`` of them came
from the candidate is a matter of chance. The test re-deals them: per question, the number
of correct samples falling to the candidate is hypergeometric (the question's total correct,
``k_b + k_c`` samples, ``k_c`` drawn), independently across questions; the statistic is the
mean over questions of candidate pass@1 minus base pass@1. This keeps its level when K
differs between the runs, which the sign-flip test (symmetric per-question differences) did
not: identical models, 30 questions, K 1 vs 64 failed the gate 10.2% of the time at 5%. With
one sample per question in each run it is the sign-flip test, i.e. McNemar's exact test.

The reference distribution is enumerated when it has at most 2^16 outcomes, else drawn
(``n_resamples`` draws, seeded; the p-value (1 + hits) / (1 + draws) never gives 0). The
interval is the set of shifts ``delta`` that the same test would not reject were the observed
difference moved by ``delta``: ``D ± h``, with ``h`` the smallest distance the test calls
significant. By construction, p <= alpha exactly when 0 lies outside the interval. It is an
interval on these questions (as is the test): how another sample of questions would move the
difference is the job of ``stats.paired_interval``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from r1eval.scoring import stats

if TYPE_CHECKING:
    from r1eval.regress.pairing import Pairing, QuestionRecord

__all__ = ["PermutationResult", "inverted_interval", "paired_test", "within_question_permutation"]

_EXACT_OUTCOMES = 1 << 16
_CHUNK_ELEMENTS = 1 << 22
_TOLERANCE = 1e-9  # float sums of equal sets may differ in the last bits


@dataclass(frozen=True)
class PermutationResult:
    """The observed difference (candidate - base, a fraction), its two-sided p-value, and the
    interval ``[low, high]`` at ``1 - alpha`` from the same test."""

    difference: float
    p_value: float
    low: float
    high: float
    exact: bool
    alpha: float

    @property
    def significant(self) -> bool:
        return self.p_value <= self.alpha


def within_question_permutation(
    base_correct: npt.ArrayLike,
    base_samples: npt.ArrayLike,
    candidate_correct: npt.ArrayLike,
    candidate_samples: npt.ArrayLike,
    alpha: float = 0.05,
    n_resamples: int = 20_000,
    seed: int = 0,
) -> PermutationResult:
    """The test and its interval for two runs' per-question counts (aligned arrays)."""
    bc, bk, cc, ck = (np.asarray(a, dtype=np.int64) for a in
                      (base_correct, base_samples, candidate_correct, candidate_samples))
    if not bc.shape == bk.shape == cc.shape == ck.shape or bc.ndim != 1 or bc.size == 0:
        raise ValueError("one count per question in both runs, at least one question")
    if np.any(bk < 1) or np.any(ck < 1) or np.any(bc < 0) or np.any(cc < 0) \
            or np.any(bc > bk) or np.any(cc > ck):
        raise ValueError("each question needs 0 <= correct <= samples, samples >= 1")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    n = bc.size
    observed = float(np.mean(cc / ck - bc / bk))
    total = bc + cc
    # Questions whose re-dealing can change nothing (all right or all wrong) add a constant 0.
    moving = (total > 0) & (total < bk + ck)
    t, kb, kc = total[moving], bk[moving], ck[moving]
    low_x, high_x = np.maximum(0, t - kb), np.minimum(kc, t)
    # the number of joint outcomes, as a sum of logs (a product overflows at MATH-500 sizes)
    log_outcomes = float(np.sum(np.log((high_x - low_x + 1).astype(np.float64))))
    if log_outcomes <= np.log(_EXACT_OUTCOMES):
        values, weights = _exact(t, kb, kc, low_x, high_x, n)
        level, exact = alpha, True
    else:
        draws = _drawn(t, kb, kc, n, n_resamples, np.random.default_rng(seed))
        values, weights = draws, np.full(draws.size, 1.0 / draws.size)
        level, exact = (alpha * (1 + draws.size) - 1) / draws.size, False
    magnitude = np.abs(values)
    hits = float(weights[magnitude >= abs(observed) * (1 - _TOLERANCE)].sum())
    p_value = hits if exact else (1 + hits * values.size) / (1 + values.size)
    half = _critical(magnitude, weights, level)
    return PermutationResult(
        difference=observed, p_value=min(1.0, p_value),
        low=max(-1.0, observed - half), high=min(1.0, observed + half), exact=exact,
        alpha=alpha,
    )


def _critical(magnitude: np.ndarray, weights: np.ndarray, level: float) -> float:
    """The largest |D*| whose tail P(|D*| >= it) exceeds ``level``: an observed |D| beyond it
    is significant, at or below it not (infinite when nothing can be significant)."""
    order = np.argsort(-magnitude, kind="stable")
    ranked, tail = magnitude[order], np.cumsum(weights[order])
    # tail at each distinct value: the weight of everything at least that large
    last_of_value = np.r_[ranked[1:] != ranked[:-1], True]
    values, tails = ranked[last_of_value], tail[last_of_value]
    above = values[tails > level + 1e-12]
    return float(above.max()) * (1 + _TOLERANCE) if above.size else np.inf


def _exact(t: np.ndarray, kb: np.ndarray, kc: np.ndarray, low_x: np.ndarray,
           high_x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every value of the statistic with its probability, by convolving the questions'
    hypergeometric distributions (at most 2^16 combined outcomes)."""
    sums, probs = np.zeros(1), np.ones(1)
    for ti, bi, ci, lo, hi in zip(t, kb, kc, low_x, high_x, strict=True):
        x = np.arange(lo, hi + 1)
        pmf = np.array([_hypergeometric(int(xi), int(ti), int(bi), int(ci)) for xi in x])
        values = x / ci - (ti - x) / bi
        sums = (sums[:, None] + values[None, :]).ravel()
        probs = (probs[:, None] * pmf[None, :]).ravel()
    return sums / n, probs


def _hypergeometric(x: int, total: int, kb: int, kc: int) -> float:
    """P(x of the ``total`` correct samples fall among the candidate's ``kc`` of kb + kc)."""
    from math import comb
    return comb(total, x) * comb(kb + kc - total, kc - x) / comb(kb + kc, kc)


def _drawn(t: np.ndarray, kb: np.ndarray, kc: np.ndarray, n: int, n_resamples: int,
           rng: np.random.Generator) -> np.ndarray:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    rows = max(1, _CHUNK_ELEMENTS // max(1, t.size))
    parts = []
    for start in range(0, n_resamples, rows):
        size = (min(rows, n_resamples - start), t.size)
        x = rng.hypergeometric(np.broadcast_to(t, size), np.broadcast_to(kb + kc - t, size),
                               np.broadcast_to(kc, size))
        parts.append((x / kc - (t - x) / kb).sum(axis=1) / n)
    return np.concatenate(parts) if parts else np.zeros(1)


# The test applied to the questions of a pairing of two runs (``r1eval.regress.pairing``).


def _counts(records: Sequence[QuestionRecord]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([sum(r.outcomes) for r in records]),
            np.array([len(r.outcomes) for r in records]))


def paired_test(pairing: Pairing, index: Sequence[int], alpha: float
                ) -> tuple[str, PermutationResult]:
    """The within-question permutation test of the questions ``index``, and its name (McNemar's
    exact test when every question has one sample in each run: the same p-value)."""
    base = [pairing.base[i] for i in index]
    cand = [pairing.candidate[i] for i in index]
    result = within_question_permutation(*_counts(base), *_counts(cand), alpha=alpha)
    if all(len(r.outcomes) == 1 for r in (*base, *cand)):
        return "McNemar exact", result
    how = "exact" if result.exact else "20,000 draws"
    return f"within-question permutation ({how})", result


def inverted_interval(result: PermutationResult) -> stats.Interval:
    """The test's interval, as the statistics' interval type."""
    return stats.Interval(result.low, result.high, "permutation test inverted")
