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

Only questions with a graded sample in both runs are compared; the rest are counted by reason.
Runs whose protocols differ in a way that biases the difference (prompt, data, grader, task
version, sampling) are refused unless forced, and a forced comparison says so on every row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from r1eval.backends.server_setup import server_differences
from r1eval.errors import UsageError
from r1eval.regress.permutation import PermutationResult, within_question_permutation
from r1eval.run.protocol import protocol_differences
from r1eval.scoring import stats
from r1eval.store.loading import Run
from r1eval.task.multiple_choice import unshuffled_letter
from r1eval.task.prompts import CHOICE_LETTERS

__all__ = [
    "IMPROVEMENT",
    "NO_CHANGE",
    "REGRESSION",
    "Comparison",
    "Flip",
    "GroupDifference",
    "Pairing",
    "QuestionRecord",
    "Settings",
    "TaskComparison",
    "compare_task",
    "pair_task",
    "paired_regression",
    "protocol_differences",
    "question_records",
]

REGRESSION = "regression"
IMPROVEMENT = "improvement"
NO_CHANGE = "no significant change"

# Sample verdicts that are not outcomes: a failed request, a response not yet graded.
NOT_OUTCOMES = ("error", "ungraded")


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
class QuestionRecord:
    """One run's graded samples of one question, and its most common answer."""

    outcomes: tuple[bool, ...]
    answer: str | None

    @property
    def pass1(self) -> float:
        return sum(self.outcomes) / len(self.outcomes)


@dataclass(frozen=True)
class Pairing:
    """The questions of one task with a graded sample in both runs (aligned by id), and how
    many were left out, by reason."""

    task: str
    ids: list[str]
    base: list[QuestionRecord]
    candidate: list[QuestionRecord]
    left_out: dict[str, int]


@dataclass(frozen=True)
class Flip:
    """A question right in one run and wrong in the other (see ``_flipped``)."""

    id: str
    base_answer: str | None
    candidate_answer: str | None
    base_pass1: float
    candidate_pass1: float


@dataclass(frozen=True)
class GroupDifference:
    """The paired difference over the questions of one subject, category, level..."""

    key: str
    value: str
    n_questions: int
    base_pass1: float
    candidate_pass1: float
    interval: stats.Interval
    lost: int
    gained: int

    @property
    def difference(self) -> float:
        return self.candidate_pass1 - self.base_pass1


@dataclass(frozen=True)
class TaskComparison:
    task: str
    n_questions: int
    left_out: dict[str, int]
    samples: tuple[int, int]  # most samples per question in the base and candidate runs
    base_pass1: float
    candidate_pass1: float
    interval: stats.Interval  # the permutation test inverted: agrees with p_value
    unpaired: stats.Interval
    p_value: float
    test: str
    verdict: str
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


# ------------------------------------------------------------------------------- pairing


def _display_answer(extracted: object, order: object) -> str | None:
    """The extracted answer; a multiple-choice letter in the data's own option order (GPQA
    shuffles options per repeat, so a bare letter would name different options)."""
    if not isinstance(extracted, str):
        return None
    if isinstance(order, list) and len(extracted) == 1 and extracted in CHOICE_LETTERS:
        return unshuffled_letter(extracted, order)
    return extracted


def question_records(run: Run, task: str) -> tuple[set[str], dict[str, QuestionRecord]]:
    """Every question id of ``task`` in ``run``, and the questions with a graded sample."""
    rows = run.samples[run.samples["task"] == task]
    graded = rows[~rows["verdict"].isin(NOT_OUTCOMES)]
    outcomes: dict[str, list[bool]] = {}
    answers: dict[str, list[str | None]] = {}
    for qid, correct, extracted, order in zip(
        graded["sample_id"], graded["correct"], graded["extracted"], graded["option_order"],
        strict=True,
    ):
        outcomes.setdefault(str(qid), []).append(bool(correct))
        answers.setdefault(str(qid), []).append(_display_answer(extracted, order))
    records = {
        qid: QuestionRecord(tuple(flags), stats.majority_vote(answers[qid]))
        for qid, flags in outcomes.items()
    }
    return {str(q) for q in rows["sample_id"]}, records


def _left_out_reason(qid: str, present: tuple[set[str], set[str]],
                     graded: tuple[set[str], set[str]]) -> str:
    if qid not in present[1]:
        return "in the base run only"
    if qid not in present[0]:
        return "in the candidate run only"
    missing = [run for run, ids in zip(("base", "candidate"), graded, strict=True)
               if qid not in ids]
    return "no graded sample in either run" if len(missing) == 2 else \
        f"no graded sample in the {missing[0]} run"


def pair_task(base: Run, candidate: Run, task: str) -> Pairing:
    """The questions of ``task`` that both runs graded, aligned by id (sorted)."""
    present_base, graded_base = question_records(base, task)
    present_cand, graded_cand = question_records(candidate, task)
    shared = sorted(set(graded_base) & set(graded_cand))
    reasons = Counter(
        _left_out_reason(q, (present_base, present_cand), (set(graded_base), set(graded_cand)))
        for q in (present_base | present_cand) - set(shared)
    )
    return Pairing(
        task=task,
        ids=shared,
        base=[graded_base[q] for q in shared],
        candidate=[graded_cand[q] for q in shared],
        left_out=dict(sorted(reasons.items())),
    )


def _question_metadata(run: Run, task: str) -> dict[str, dict[str, Any]]:
    """Each question's metadata (subject, category, level...) as the run logged it."""
    rows = run.samples[run.samples["task"] == task]
    return {str(q): m for q, m in zip(rows["sample_id"], rows["metadata"], strict=True)}


# ----------------------------------------------------------------------------- statistics


def _counts(records: Sequence[QuestionRecord]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([sum(r.outcomes) for r in records]),
            np.array([len(r.outcomes) for r in records]))


def _test(pairing: Pairing, index: Sequence[int], alpha: float
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


def _interval(result: PermutationResult) -> stats.Interval:
    return stats.Interval(result.low, result.high, "permutation test inverted")


def _verdict(result: PermutationResult) -> str:
    if not result.significant or result.difference == 0:
        return NO_CHANGE
    return REGRESSION if result.difference < 0 else IMPROVEMENT


def _flipped(base: float, candidate: float) -> int:
    """-1 lost (right in base, wrong in candidate), +1 gained, 0 neither; right means more
    than half of the samples correct, wrong fewer than half (exactly half is neither)."""
    if base > 0.5 > candidate:
        return -1
    return 1 if candidate > 0.5 > base else 0


def _flips(pairing: Pairing) -> tuple[list[Flip], list[Flip]]:
    """Questions lost and gained, biggest change first."""
    flips = [
        Flip(q, b.answer, c.answer, b.pass1, c.pass1)
        for q, b, c in zip(pairing.ids, pairing.base, pairing.candidate, strict=True)
    ]
    lost = [f for f in flips if _flipped(f.base_pass1, f.candidate_pass1) < 0]
    gained = [f for f in flips if _flipped(f.base_pass1, f.candidate_pass1) > 0]
    lost.sort(key=lambda f: (f.candidate_pass1 - f.base_pass1, f.id))
    gained.sort(key=lambda f: (f.base_pass1 - f.candidate_pass1, f.id))
    return lost, gained


def _samples_per_question(pairing: Pairing, index: Iterable[int]) -> float:
    """The K that sizes the intervals' pseudo-questions: 1 / mean of (1/k_base + 1/k_cand)/2
    (a question's difference is as noisy as that of K samples in each run)."""
    inverse = [(1 / len(pairing.base[i].outcomes) + 1 / len(pairing.candidate[i].outcomes)) / 2
               for i in index]
    return len(inverse) / sum(inverse)


def _groups(
    pairing: Pairing, keys: Sequence[str], metadata: Mapping[str, Mapping[str, Any]],
    alpha: float,
) -> list[GroupDifference]:
    """The paired difference per value of each metadata key (e.g. MMLU category, subject)."""
    found = []
    for key in keys:
        members: dict[str, list[int]] = {}
        for i, qid in enumerate(pairing.ids):
            members.setdefault(str(metadata.get(qid, {}).get(key)), []).append(i)
        for value, index in sorted(members.items()):
            base = np.array([pairing.base[i].pass1 for i in index])
            cand = np.array([pairing.candidate[i].pass1 for i in index])
            flips = [_flipped(b, c) for b, c in zip(base, cand, strict=True)]
            found.append(GroupDifference(
                key, value, len(index), float(base.mean()), float(cand.mean()),
                _interval(_test(pairing, index, alpha)[1]),
                flips.count(-1), flips.count(1),
            ))
    return found


def compare_task(
    pairing: Pairing, settings: Settings, groups: Sequence[str] = (),
    metadata: Mapping[str, Mapping[str, Any]] | None = None,
) -> TaskComparison:
    """The paired statistics of one task (it needs at least one shared question)."""
    base = stats.per_question_pass1([r.outcomes for r in pairing.base])
    cand = stats.per_question_pass1([r.outcomes for r in pairing.candidate])
    differences = cand - base
    test, result = _test(pairing, range(len(pairing.ids)), settings.alpha)
    difference = float(differences.mean())
    verdict = _verdict(result)
    lost, gained = _flips(pairing)
    k = _samples_per_question(pairing, range(len(pairing.ids)))
    return TaskComparison(
        task=pairing.task,
        n_questions=len(pairing.ids),
        left_out=pairing.left_out,
        samples=(max(len(r.outcomes) for r in pairing.base),
                 max(len(r.outcomes) for r in pairing.candidate)),
        base_pass1=float(base.mean()),
        candidate_pass1=float(cand.mean()),
        interval=_interval(result),
        unpaired=stats.unpaired_interval(base, cand, k, settings.confidence),
        p_value=result.p_value,
        test=test,
        verdict=verdict,
        # The gate (module docstring): a significant drop whose estimate exceeds the tolerance.
        gate_failed=verdict == REGRESSION and difference < -settings.max_drop,
        lost=lost,
        gained=gained,
        groups=_groups(pairing, groups, metadata or {}, settings.alpha) if groups else [],
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
        metadata = _question_metadata(base, name) if keys else None
        compared.append(compare_task(pairing, settings, keys, metadata))
    return Comparison(base, candidate, settings, compared, skipped, forced,
                      _notes(base, candidate, names))
