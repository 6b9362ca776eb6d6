"""Seeded simulation of r1eval's verdicts: does `compare` answer "does it reproduce?", and does
`regress` keep its level when K differs?

For n questions (30 like AIME 2024, 500 like MATH-500) and K samples per question, each
simulated benchmark draws true per-question rates p_i from a Beta distribution (three shapes:
AIME-like, bimodal around 0.5; a strong model around 0.85; a mid-range one), then a run
(Binomial(K, p_i) per question) and a published figure measured on the same questions with
64 samples each. It reports, per setting:

- coverage: how often the run's same-question 95% interval (``SameQuestions.score_interval``)
  holds the true score on those questions, mean(p_i);
- reproduced: how often ``compare`` says ``reproduced`` (margin 5 points) when the figure was
  measured from the same rates; "over questions" is the same with the interval over questions
  (``stats.score_interval``), the verdict r1eval gave before;
- false reproduced: how often it says ``reproduced`` when the figure's true score is exactly
  the margin (5 points) away, the hardest case of a real gap;
- regress type I: how often ``regress`` finds a significant change (5%) between two runs of
  the same rates with K 1 (base) and 64 (candidate); the sign-flip test it used before is
  shown beside it;
- regress power: how often it finds a 5-point drop (candidate rates p_i - 0.05, clipped, then
  rescaled to an exact 5-point mean drop), with K in both runs.

Every p-value of the same-question test is recomputed with scipy.stats.norm and the largest
difference printed; the within-question permutation test's exact p-values are checked against
McNemar's (scipy.stats.binomtest) for K = 1.

    python bench/verdicts.py            # the table in bench/RESULTS.md (~10 minutes, 1 core)
    python bench/verdicts.py --smoke    # a few runs per setting, seconds
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, norm

from r1eval.claims.check import REPRODUCED, decide, decide_same_questions
from r1eval.claims.reproduction import same_questions
from r1eval.regress.permutation import within_question_permutation
from r1eval.scoring import stats

MARGIN = 0.05
FIGURE_K = 64
SHAPES = {"AIME-like Beta(0.6,0.6)": (0.6, 0.6), "strong Beta(3.4,0.6)": (3.4, 0.6),
          "mid Beta(2,2)": (2.0, 2.0)}


@dataclass
class Tally:
    runs: int = 0
    covered: int = 0
    reproduced: int = 0
    reproduced_over_questions: int = 0
    false_reproduced: int = 0
    scipy_gap: float = 0.0


def shifted(rates: np.ndarray, gap: float) -> np.ndarray:
    """Rates whose mean is exactly ``gap`` away from ``rates``' (down when the mean is above
    0.5, else up), shifting every rate by the same amount and clipping to [0, 1]."""
    direction = -1.0 if rates.mean() > 0.5 else 1.0
    target = rates.mean() + direction * gap
    low, high = 0.0, 1.0
    for _ in range(60):  # bisection on the shift
        mid = (low + high) / 2
        moved = np.clip(rates + direction * mid, 0, 1)
        if (moved.mean() - target) * direction < 0:
            low = mid
        else:
            high = mid
    return np.clip(rates + direction * high, 0, 1)


def reproduction(n: int, k: int, shape: tuple[float, float], reps: int,
                 rng: np.random.Generator) -> Tally:
    tally = Tally()
    samples = np.full(n, k)
    for _ in range(reps):
        rates = rng.beta(*shape, n)
        run = rng.binomial(k, rates)
        figure = float(rng.binomial(FIGURE_K, rates).mean()) / FIGURE_K
        test = same_questions(run, samples, figure, FIGURE_K)
        low, high = test.score_interval()
        tally.runs += 1
        tally.covered += low <= rates.mean() <= high
        tally.reproduced += decide_same_questions(test, MARGIN) == REPRODUCED
        outcomes = [[True] * c + [False] * (k - c) for c in run]
        over = stats.score_interval(outcomes, n_resamples=2_000)
        tally.reproduced_over_questions += decide(figure, over.low, over.high,
                                                  MARGIN) == REPRODUCED
        far = float(rng.binomial(FIGURE_K, shifted(rates, MARGIN)).mean()) / FIGURE_K
        far_test = same_questions(run, samples, far, FIGURE_K)
        tally.false_reproduced += decide_same_questions(far_test, MARGIN) == REPRODUCED
        d, se = test.difference, test.standard_error
        tally.scipy_gap = max(tally.scipy_gap,
                              abs(test.p_value() - 2 * norm.sf(abs(d) / se)),
                              abs(test.p_equivalence(MARGIN) - max(norm.sf((d + MARGIN) / se),
                                                                   norm.cdf((d - MARGIN) / se))))
    return tally


def sign_flip_p(differences: np.ndarray, draws: int, rng: np.random.Generator) -> float:
    """The sign-flip permutation test r1eval's regress used before (for comparison)."""
    nonzero = differences[differences != 0]
    if nonzero.size == 0:
        return 1.0
    signs = rng.choice([-1.0, 1.0], size=(draws, nonzero.size))
    hits = int(np.sum(np.abs(signs @ nonzero) >= abs(nonzero.sum()) * (1 - 1e-9)))
    return (1 + hits) / (1 + draws)


def regress_rate(n: int, base_k: int, cand_k: int, shape: tuple[float, float], drop: float,
                 reps: int, draws: int, rng: np.random.Generator,
                 old: bool = False) -> tuple[float, float | None]:
    """Share of significant results (5%) of the permutation test, and of the old sign-flip
    test when ``old``."""
    new_hits = old_hits = 0
    for rep in range(reps):
        rates = rng.beta(*shape, n)
        cand_rates = shifted(rates, drop) if drop else rates
        if drop and cand_rates.mean() > rates.mean():  # shifted() moves towards 0.5
            cand_rates = np.clip(2 * rates - cand_rates, 0, 1)
        base, cand = rng.binomial(base_k, rates), rng.binomial(cand_k, cand_rates)
        result = within_question_permutation(base, np.full(n, base_k), cand, np.full(n, cand_k),
                                             n_resamples=draws, seed=rep)
        new_hits += result.significant
        if old:
            old_hits += sign_flip_p(cand / cand_k - base / base_k, draws, rng) < 0.05
    return new_hits / reps, (old_hits / reps if old else None)


def mcnemar_check() -> float:
    """Largest gap between the permutation test's exact p at K = 1 and scipy's McNemar."""
    gap = 0.0
    for lost, gained in [(0, 5), (2, 9), (4, 4), (1, 12), (7, 3)]:
        base = [1] * lost + [0] * gained + [1] * 5
        cand = [0] * lost + [1] * gained + [1] * 5
        ones = [1] * len(base)
        p = within_question_permutation(base, ones, cand, ones).p_value
        expected = binomtest(min(lost, gained), lost + gained, 0.5).pvalue
        gap = max(gap, abs(p - expected))
    return gap


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def compare_table(sizes: tuple[int, ...], ks: tuple[int, ...], reps: int, regress_reps: int,
                  draws: int, rng: np.random.Generator) -> float:
    """The compare table (and regress power with K in both runs); returns the largest gap
    between the same-question test's p-values and scipy's."""
    print("| n | K | difficulty | coverage % | reproduced % | reproduced % over questions "
          "(before) | false reproduced % | regress power % (-5 pts, K vs K) |")
    print("|" + "---|" * 8)
    gap = 0.0
    for n in sizes:
        for k in ks:
            for name, shape in SHAPES.items():
                tally = reproduction(n, k, shape, reps, rng)
                gap = max(gap, tally.scipy_gap)
                power, _ = regress_rate(n, k, k, shape, MARGIN, regress_reps, draws, rng)
                runs = tally.runs
                print(f"| {n} | {k} | {name} | {pct(tally.covered / runs)} | "
                      f"{pct(tally.reproduced / runs)} | "
                      f"{pct(tally.reproduced_over_questions / runs)} | "
                      f"{pct(tally.false_reproduced / runs)} | {pct(power)} |", flush=True)
    return gap


def regress_table(sizes: tuple[int, ...], regress_reps: int, type_one_reps: int, draws: int,
                  rng: np.random.Generator) -> None:
    print("\n| n | difficulty | pairs of runs | regress type I %, K 1 vs 64 (permutation) | "
          "same, sign-flip (before) | regress power % (-5 pts, K 1 vs 64) |")
    print("|" + "---|" * 6)
    for n in sizes:
        pairs = type_one_reps if n <= 30 else regress_reps
        for name, shape in SHAPES.items():
            type_one, old = regress_rate(n, 1, 64, shape, 0.0, pairs, draws, rng, old=True)
            power, _ = regress_rate(n, 1, 64, shape, MARGIN, regress_reps, draws, rng)
            print(f"| {n} | {name} | {pairs} | {pct(type_one)} | {pct(old)} | {pct(power)} |",
                  flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few runs per setting")
    parser.add_argument("--reps", type=int, default=1000, help="benchmarks per setting")
    parser.add_argument("--regress-reps", type=int, default=400, dest="regress_reps")
    parser.add_argument("--type-one-reps", type=int, default=4000, dest="type_one_reps",
                        help="pairs of runs for regress's type I error at 30 questions (at 500, "
                        "--regress-reps)")
    parser.add_argument("--draws", type=int, default=1000,
                        help="permutation draws per regress test")
    parser.add_argument("--part", choices=("all", "compare", "regress"), default="all",
                        help="run only the compare table or only the regress one")
    parser.add_argument("--sizes", default="30,500",
                        help="question counts, comma-separated (default 30,500)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    reps, regress_reps, draws = args.reps, args.regress_reps, args.draws
    type_one_reps = args.type_one_reps
    sizes, ks = tuple(int(n) for n in args.sizes.split(",")), (4, 16, 64)
    if args.smoke:
        reps, regress_reps, type_one_reps, draws, sizes, ks = 20, 20, 20, 200, (30,), (4,)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    print(f"seed {args.seed}; {reps} benchmarks per setting for compare, {regress_reps} for "
          f"regress ({draws} permutation draws each); margin {100 * MARGIN:g} points; "
          f"figure measured with K={FIGURE_K} on the same questions\n")
    gap = 0.0
    if args.part in ("all", "compare"):
        gap = compare_table(sizes, ks, reps, regress_reps, draws, rng)
    if args.part in ("all", "regress"):
        regress_table(sizes, regress_reps, type_one_reps, draws, rng)
    if args.part in ("all", "compare"):
        print(f"\nlargest |p - scipy.stats.norm p| of the same-question test: {gap:.1e}")
    print(f"largest |p - scipy.stats.binomtest (McNemar)| of the permutation test at K = 1: "
          f"{mcnemar_check():.1e}")
    print(f"time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
