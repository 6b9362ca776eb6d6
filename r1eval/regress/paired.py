"""Is a candidate (a fine-tune) worse than its base? A paired comparison of two runs.

Both runs asked the same questions, so each question gives one paired difference: the
candidate's pass@1 on it minus the base's (each over that run's graded samples of the
question; failed requests are not outcomes). Whatever makes a question hard for both models
cancels in the difference, which is why a paired interval is much narrower than two
separate intervals when the runs agree on most questions.

Per task: the mean difference, a p-value and an interval at 1 - alpha from ONE test, the
within-question permutation test (``r1eval.regress.permutation``: under no difference a question's
samples from both runs are exchangeable, so they are re-dealt between the runs; with one
sample per question in each run this is McNemar's exact test). It keeps its level when the
runs have different K (the sign-flip test used before failed identical models 10.2% of the
time at 5% with K 1 vs 64), and its interval is the test inverted, so the table can never say
"CI -30.2 to -1.0, p 0.0625". Verdict at ``alpha``: ``regression`` / ``improvement`` when
p <= alpha (exactly when the interval excludes 0), else ``no significant change``. Test and
interval are about these questions; the context lines add the paired interval over questions
(``stats.paired_interval``: what another sample of questions could show) and the unpaired one.

The CI gate fails a task when its drop is significant (verdict ``regression``) AND the
estimated drop is larger than the tolerance ``max_drop``. With the default tolerance 0 this is
exactly the verdict, from one test, so the table and the exit code never disagree. The
tolerance is a minimum size worth failing for, applied to the best estimate. The alternative,
failing only when the whole interval lies beyond -max_drop, puts the burden of proof on the
regression: a significant 1.5-point MMLU drop with a 1-point tolerance would pass unless the
interval excluded -1 as well, i.e. real losses beyond the tolerance would usually ship.

Only questions with a graded sample in both runs are compared (``r1eval.regress.pairing``); the
rest are counted by reason.
Runs whose protocols differ in a way that biases the difference (prompt, data, grader, task
version, sampling) are refused unless forced, and a forced comparison says so on every row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from r1eval.backends.server_setup import server_differences
from r1eval.errors import UsageError
from r1eval.regress.breakdown import Flip, GroupDifference, flips, group_differences
from r1eval.regress.pairing import (
    Pairing,
    QuestionRecord,
    pair_task,
    question_metadata,
    question_records,
)
from r1eval.regress.permutation import PermutationResult, inverted_interval, paired_test
from r1eval.run.protocol import protocol_differences
from r1eval.scoring import stats
from r1eval.store.loading import Run

__all__ = [
    "IMPROVEMENT",
    "NO_CHANGE",
    "REGRESSION",
    "Comparison",
    "Flip",
    "GroupDifference",
    "Pairing",
    "QuestionRecord",
    "RegressionVerdict",
    "Settings",
    "TaskComparison",
    "compare_task",
    "pair_task",
    "paired_regression",
    "protocol_differences",
    "question_records",
]

#: A task's verdict in a paired regression (a sample's own result is its status,
#: ``r1eval.store.outcomes``; a published figure's is a ``ReproductionVerdict``).
RegressionVerdict = Literal["regression", "improvement", "no significant change"]
REGRESSION: RegressionVerdict = "regression"
IMPROVEMENT: RegressionVerdict = "improvement"
NO_CHANGE: RegressionVerdict = "no significant change"



@dataclass(frozen=True)
class Settings:
    """``alpha``: significance level (the interval is at 1 - alpha); ``max_drop``: tolerated
    drop in pass@1 (a fraction: 0.02 is 2 points); ``force``: compare despite protocol
    differences."""

    alpha: float = 0.05
    max_drop: float = 0.0
    force: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise UsageError(f"--alpha must be between 0 and 1, got {self.alpha}")
        if not 0.0 <= self.max_drop < 1.0:
            raise UsageError(f"--max-drop must be from 0 to 100 points, got {100 * self.max_drop}")

    @property
    def confidence(self) -> float:
        return 1.0 - self.alpha


@dataclass(frozen=True)
class TaskComparison:
    task: str
    n_questions: int
    left_out: dict[str, int]
    samples: tuple[int, int]  # K (samples per question) of the base and candidate runs
    base_pass1: float
    candidate_pass1: float
    interval: stats.Interval  # the permutation test inverted: agrees with p_value
    unpaired: stats.Interval
    p_value: float
    test: str
    verdict: RegressionVerdict
    gate_failed: bool
    lost: list[Flip]
    gained: list[Flip]
    groups: list[GroupDifference] = field(default_factory=list)
    over_questions: stats.Interval | None = None  # paired interval over questions (context)

    @property
    def difference(self) -> float:
        """Mean over questions of candidate - base pass@1 (= the difference of the scores)."""
        return self.candidate_pass1 - self.base_pass1


@dataclass(frozen=True)
class Comparison:
    base: Run
    candidate: Run
    settings: Settings
    tasks: list[TaskComparison]
    skipped: dict[str, str]  # task -> why it was not compared
    forced: list[str]  # protocol differences overridden by --force
    notes: list[str]  # differences that do not bias the comparison

    @property
    def failed(self) -> bool:
        return any(t.gate_failed for t in self.tasks)


# ------------------------------------------------------------------------------ protocol


def _notes(base: Run, candidate: Run, tasks: Iterable[str]) -> list[str]:
    """Differences worth knowing that do not bias the comparison."""
    notes = []
    for name in tasks:
        k_base, k_cand = (run.manifest.tasks[name].samples_per_question
                          if name in run.manifest.tasks else None for run in (base, candidate))
        if k_base != k_cand:
            notes.append(f"{name}: {k_base} samples per question in the base run, {k_cand} in "
                         "the candidate run (each question's pass@1 is over its own run's)")
    versions = [r.manifest.provenance.packages.get("math-verify") for r in (base, candidate)]
    if versions[0] != versions[1]:
        notes.append(f"math-verify {versions[0]} graded the base run, {versions[1]} the candidate")
    return notes + server_differences(base.manifest.server, candidate.manifest.server)


def _regression_verdict(result: PermutationResult) -> RegressionVerdict:
    if not result.significant or result.difference == 0:
        return NO_CHANGE
    return REGRESSION if result.difference < 0 else IMPROVEMENT


def _samples_per_question(pairing: Pairing, index: Iterable[int]) -> float:
    """The K that sizes the intervals' pseudo-questions: 1 / mean of (1/k_base + 1/k_cand)/2
    (a question's difference is as noisy as that of K samples in each run)."""
    inverse = [(1 / len(pairing.base[i].outcomes) + 1 / len(pairing.candidate[i].outcomes)) / 2
               for i in index]
    return len(inverse) / sum(inverse)


def compare_task(
    pairing: Pairing, settings: Settings, groups: Sequence[str] = (),
    metadata: Mapping[str, Mapping[str, Any]] | None = None,
) -> TaskComparison:
    """The paired statistics of one task (it needs at least one shared question)."""
    base = stats.per_question_pass1([r.outcomes for r in pairing.base])
    cand = stats.per_question_pass1([r.outcomes for r in pairing.candidate])
    differences = cand - base
    test, result = paired_test(pairing, range(len(pairing.ids)), settings.alpha)
    difference = float(differences.mean())
    verdict = _regression_verdict(result)
    lost, gained = flips(pairing)
    k = _samples_per_question(pairing, range(len(pairing.ids)))
    return TaskComparison(
        task=pairing.task,
        n_questions=len(pairing.ids),
        left_out=pairing.left_out,
        samples=pairing.samples,
        base_pass1=float(base.mean()),
        candidate_pass1=float(cand.mean()),
        interval=inverted_interval(result),
        unpaired=stats.unpaired_interval(base, cand, k, settings.confidence),
        p_value=result.p_value,
        test=test,
        verdict=verdict,
        # The gate (module docstring): a significant drop whose estimate exceeds the tolerance.
        gate_failed=verdict == REGRESSION and difference < -settings.max_drop,
        lost=lost,
        gained=gained,
        groups=group_differences(pairing, groups, metadata or {}, settings.alpha) if groups else [],
        over_questions=stats.paired_interval(differences, k, settings.confidence),
    )


# ---------------------------------------------------------------------------- comparison


def _manifest_tasks(run: Run) -> set[str]:
    return set(run.manifest.tasks)


def _task_names(base: Run, candidate: Run, wanted: Sequence[str] | None) -> list[str]:
    have_base, have_cand = _manifest_tasks(base), _manifest_tasks(candidate)
    if wanted:
        missing = [t for t in wanted if t not in have_base or t not in have_cand]
        if missing:
            raise UsageError(f"task {', '.join(missing)} is not in both runs "
                             f"(base: {', '.join(sorted(have_base))}; "
                             f"candidate: {', '.join(sorted(have_cand))})")
        return list(dict.fromkeys(wanted))
    shared = sorted(have_base & have_cand)
    if not shared:
        raise UsageError(f"the runs have no task in common (base: {', '.join(sorted(have_base))}; "
                         f"candidate: {', '.join(sorted(have_cand))})")
    return shared


def _check_protocol(base: Run, candidate: Run, tasks: list[str], force: bool) -> list[str]:
    differences = protocol_differences(base.manifest, candidate.manifest, tasks)
    if differences and not force:
        raise UsageError(
            f"the runs' protocols differ ({'; '.join(differences)}), which biases the "
            "comparison; use runs made the same way, or --force to compare anyway"
        )
    return differences


def paired_regression(
    base: Run,
    candidate: Run,
    settings: Settings,
    tasks: Sequence[str] | None = None,
    breakdown: Mapping[str, Sequence[str]] | None = None,
) -> Comparison:
    """Compare every task the two runs share (or ``tasks``), question by question.

    ``breakdown`` names, per task, the question metadata keys to break the difference down by
    (``Task.breakdown``: MMLU's category and subject). Raises ``UsageError`` when the runs
    share no task or their protocols differ and ``settings.force`` is not set.
    """
    names = _task_names(base, candidate, tasks)
    forced = _check_protocol(base, candidate, names, settings.force)
    one_run_only = _manifest_tasks(base) ^ _manifest_tasks(candidate)
    skipped = {n: "in one run only" for n in sorted(one_run_only) if not tasks}
    compared = []
    for name in names:
        pairing = pair_task(base, candidate, name)
        if not pairing.ids:
            skipped[name] = "no question graded in both runs"
            continue
        keys = (breakdown or {}).get(name, ())
        metadata = question_metadata(base, name) if keys else None
        compared.append(compare_task(pairing, settings, keys, metadata))
    return Comparison(base, candidate, settings, compared, skipped, forced,
                      _notes(base, candidate, names))
