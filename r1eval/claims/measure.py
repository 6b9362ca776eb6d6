"""What a reproduction verdict reads from a run: each task reduced to a ``TaskView``, the
metric a figure names measured on it (``Measured``), the test it allows, and what would decide
an inconclusive comparison (``Need``). The deciding and the rows are ``r1eval.claims.check``'s.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from r1eval.backends.replay import is_replayed
from r1eval.claims.published import Claim, Figure
from r1eval.claims.reproduction import SameQuestions, outcome_counts, same_questions
from r1eval.percent import percent_text
from r1eval.scoring import stats
from r1eval.scoring.power import Design, questions_needed, samples_needed
from r1eval.store.contracts import Sampling, TaskEntry, TaskScore
from r1eval.store.loading import Run
from r1eval.store.outcomes import outcomes_by_question
from r1eval.task.prompts import MATH_PROMPT, MMLU_PRO_PROMPT, MULTIPLE_CHOICE_PROMPT, template_hash
from r1eval.task.registry import available_tasks

__all__ = [
    "Measured",
    "Need",
    "TaskView",
    "measure",
    "need_on_same_questions",
    "need_to_decide",
    "pass1",
    "prompt_styles",
    "same_question_test",
    "task_views",
]

_TEMPLATE_STYLES = {MATH_PROMPT: "r1", MULTIPLE_CHOICE_PROMPT: "simple-evals",
                    MMLU_PRO_PROMPT: "mmlu-pro"}


@functools.cache
def prompt_styles() -> dict[str, str]:
    """Prompt hash -> the reference prompt it is: the rendered prompts of the registered tasks
    built on a reference template, and the template hashes that older runs recorded."""
    styles = {template_hash(template): style for template, style in _TEMPLATE_STYLES.items()}
    for task in available_tasks().values():
        if task.prompt_template in _TEMPLATE_STYLES:
            styles[task.prompt_hash] = _TEMPLATE_STYLES[task.prompt_template]
    return styles


@dataclass(frozen=True)
class Measured:
    """One metric of one task of a run, as a verdict needs it (fractions).

    ``outcomes`` holds each question's correct/incorrect samples (one majority vote per
    question for cons@K) and feeds the power calculation; ``samples`` is their number per
    question.
    """

    value: float
    low: float
    high: float
    outcomes: list[list[bool]]
    samples: int


@dataclass(frozen=True)
class Need:
    """What would decide an inconclusive comparison (``r1eval.claims.check``'s docstring)."""

    delta: float
    difference: float
    questions: int | None
    samples: int | None
    separable: bool
    assumed: bool

    def target(self, margin: float) -> str:
        """What deciding means: telling the observed difference from 0, or from ±margin."""
        head = f"to tell {percent_text(self.difference, signed=True)} points from "
        return head + ("0" if self.delta <= abs(self.difference) else f"±{100 * margin:g}")


def _delta(difference: float, margin: float) -> float:
    return max(abs(difference), margin - abs(difference))


def need_on_same_questions(test: SameQuestions, margin: float) -> Need:
    """Samples per question (with the run's questions) that would decide the same-question
    test if the true difference is the observed one; None when no number suffices."""
    delta = _delta(test.difference, margin)
    design = Design.same_questions(test.within, test.reported_samples, test.reported_within)
    return Need(delta=delta, difference=test.difference, questions=None,
                samples=samples_needed(design, delta, test.n_questions),
                separable=True, assumed=False)


def need_to_decide(measured: Measured, reported: float, margin: float) -> Need:
    """Questions (at the run's K) or samples per question (at the run's questions) needed to
    reach a verdict over questions if the true difference is the observed one."""
    delta = _delta(measured.value - reported, margin)
    design = Design.from_outcomes(measured.outcomes)
    assumed = design.variance(measured.samples) == 0.0
    if assumed:  # every question alike (e.g. all right): no spread to estimate from
        design = Design.assumed(min(max(reported, 0.01), 0.99))
    return Need(
        delta=delta,
        difference=measured.value - reported,
        questions=questions_needed(design, delta, measured.samples),
        samples=samples_needed(design, delta, len(measured.outcomes)),
        separable=measured.samples > 1 or assumed,
        assumed=assumed,
    )


@dataclass(frozen=True)
class TaskView:
    """One task of one run, reduced to what a comparison reads (from ``load_run``)."""

    run: str
    model: str
    task: str
    score: TaskScore
    outcomes: dict[str, list[bool]]
    sampling: Sampling
    prompt: str
    questions_in_task: int | None
    from_file: bool
    limit: int | None = None  # run --limit, when the run was made with one


def task_views(run: Run) -> list[TaskView]:
    """Every scored task of ``run``."""
    identity = run.manifest.identity
    from_file = is_replayed(identity.endpoint.base_url)
    views = []
    for task, score in run.task_scores.items():
        entry = run.manifest.tasks.get(task) or TaskEntry()
        views.append(TaskView(
            run=run.name, model=run.model, task=task, score=score,
            outcomes={q: list(o) for q, o in outcomes_by_question(run.samples, task).items()},
            sampling=identity.sampling,
            prompt=prompt_styles().get(entry.prompt_hash or "", "custom"),
            questions_in_task=entry.questions, from_file=from_file,
            limit=run.manifest.config.limit,
        ))
    return views


def _limited(view: TaskView) -> bool:
    """Whether ``run --limit`` cut the task short (its question count is the limit)."""
    return view.limit is not None and view.questions_in_task == view.limit


def same_question_test(view: TaskView, claim: Claim, measured: Measured
                        ) -> SameQuestions | str:
    """The same-question test of ``measured`` against the claim, or why there is none."""
    figure = claim.figure
    if figure.metric != "pass@1":
        return f"{figure.metric} is one vote per question"
    if not claim.source.same_questions:
        return "the source measured on another question set"
    if _limited(view) or _subset(view):
        return (f"a subset ({len(measured.outcomes)} questions) of the set the figure was "
                "measured on")
    protocol = figure.protocol
    correct, samples = outcome_counts(measured.outcomes)
    return same_questions(correct, samples, figure.fraction,
                          protocol.samples if protocol else None)


def _subset(view: TaskView) -> bool:
    planned = view.questions_in_task
    return planned is not None and view.score.n_questions < planned


def pass1(view: TaskView) -> Measured | None:
    score = view.score
    if score.pass1 is None or score.ci_low is None or score.ci_high is None:
        return None
    return Measured(
        value=float(score.pass1), low=float(score.ci_low), high=float(score.ci_high),
        outcomes=list(view.outcomes.values()), samples=int(score.samples_per_question or 0),
    )


def measure(view: TaskView, figure: Figure) -> Measured | str | None:
    """The measured counterpart of ``figure``; a string says why there is none."""
    k, wanted = view.score.samples_per_question, figure.samples_in_metric
    if figure.metric == "pass@1":
        return pass1(view)
    if figure.metric.startswith("cons@") and wanted is not None and wanted == k:
        return _consensus(view, wanted)
    if figure.metric.startswith("cons@"):
        return f"{figure.metric} needs {wanted} samples per question; this run has K={k}"
    return f"r1eval measures pass@1 and cons@K, not {figure.metric}"


def _consensus(view: TaskView, k: int) -> Measured | None:
    """cons@K with an interval over questions (every graded question votes with the samples
    it has, as scores.json counts it).

    The interval depends only on how many questions' votes were right (one outcome per
    question), so it is computed from scores.json's cons@K and the question count.
    """
    value = view.score.at_k("cons")
    voters = len(view.outcomes)
    if value is None or voters == 0:
        return None
    right = round(float(value) * voters)
    votes = [[True]] * right + [[False]] * (voters - right)
    interval = stats.score_interval(votes)
    return Measured(float(value), interval.low, interval.high, votes, samples=1)
