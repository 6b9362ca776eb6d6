"""The variance a power calculation plans with, estimated from runs or assumed (``r1eval power``).

For the paired comparison of ``r1eval regress``, one question's difference between two runs has
variance ``between + within / K`` (``r1eval.scoring.power``):

- two runs of the task (a base and a candidate): measured from their paired differences;
- one run: estimated from its per-question outcomes, with an assumed correlation between the
  two models' per-question rates (with one sample per question only its score is used);
- no run: a stated assumption (a score and the share of the variance between questions).

For the same-question test of ``r1eval compare`` against a figure measured with ``K_f`` samples
per question, only the variance within questions counts (``Design.same_questions``), taken
from the run when it has K >= 2, else assumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from r1eval.errors import UsageError
from r1eval.scoring.power import Design
from r1eval.store.loading import Run
from r1eval.store.outcomes import logged_samples_per_question, outcomes_by_question

__all__ = ["Assumptions", "estimate_design", "run_outcomes", "run_samples_per_question"]


@dataclass(frozen=True)
class Assumptions:
    """What is assumed where runs do not say: the correlation of the two models' per-question
    rates, a pass@1 (0-1) and the share of the variance between questions."""

    correlation: float = 0.9
    score: float = 0.5
    between_share: float = 0.5

    def single(self) -> Design:
        """One model's variance parts, assumed."""
        return Design.assumed(self.score, self.between_share)


def run_outcomes(run: Run, task: str) -> list[tuple[bool, ...]]:
    """The outcomes of each graded question of ``task`` in ``run`` (``UsageError`` if none)."""
    outcomes = list(outcomes_by_question(run.samples, task).values())
    if not outcomes:
        raise UsageError(f"{run.path} has no graded sample of {task}")
    return outcomes


def run_samples_per_question(run: Run, task: str) -> int:
    """The run's K for ``task`` (``UsageError`` when it has no graded sample of it)."""
    run_outcomes(run, task)
    return logged_samples_per_question(run.samples, task)


def estimate_design(
    runs: Sequence[Run], task: str, assumptions: Assumptions, figure_samples: int | None = None
) -> Design:
    """The design from zero, one or two (base, candidate) runs; with ``figure_samples``, the
    same-question test against a figure measured with that many samples per question."""
    if figure_samples is not None:
        if len(runs) > 1:
            raise UsageError("--figure-samples takes at most one --from run")
        return _against_figure(runs[0] if runs else None, task, figure_samples, assumptions)
    if len(runs) == 2:
        return _from_pair(runs[0], runs[1], task)
    if len(runs) == 1:
        return _from_one(runs[0], task, assumptions)
    if runs:
        raise ValueError("a design is estimated from at most two runs")
    return assumptions.single().paired(assumptions.correlation)


def _from_pair(base: Run, candidate: Run, task: str) -> Design:
    outcomes_base = outcomes_by_question(base.samples, task)
    outcomes_cand = outcomes_by_question(candidate.samples, task)
    shared = sorted(set(outcomes_base) & set(outcomes_cand))
    if not shared:
        raise UsageError(f"{base.path} and {candidate.path} share no graded question of {task}")
    design = Design.for_paired([outcomes_base[q] for q in shared],
                               [outcomes_cand[q] for q in shared])
    note = (f"measured from the paired differences of {base.name} and {candidate.name} "
            f"({len(shared)} questions)")
    if "not separable" in design.note:
        note += f" ({design.note})"
    return Design(design.between, design.within, note)


def _from_one(run: Run, task: str, assumptions: Assumptions) -> Design:
    outcomes = run_outcomes(run, task)
    if all(len(q) == 1 for q in outcomes):
        score = sum(q[0] for q in outcomes) / len(outcomes)
        single = Design.assumed(score, assumptions.between_share)
        single = Design(single.between, single.within,
                        f"{run.name} has one sample per question, so only its score is "
                        f"used; {single.note}")
    else:
        estimated = Design.from_outcomes(outcomes)
        single = Design(estimated.between, estimated.within,
                        f"estimated from {run.name} ({len(outcomes)} questions)")
    return single.paired(assumptions.correlation)


def _against_figure(run: Run | None, task: str, figure_samples: int,
                    assumptions: Assumptions) -> Design:
    """Only the variance within questions counts, the run's (W / K) and the figure's (W / K_f);
    W from the run when it has K >= 2."""
    within, note = None, ""
    if run is not None:
        estimated = Design.from_outcomes(run_outcomes(run, task))
        if estimated.within > 0:
            within, note = estimated.within, f"estimated from {run.name}"
    if within is None:
        assumed = assumptions.single()
        within, note = assumed.within, assumed.note
    design = Design.same_questions(within, figure_samples)
    return Design(design.between, design.within, f"{design.note}; {note}", normal=True)
