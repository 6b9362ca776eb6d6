"""Does a run confirm a reported score? One row per reported figure, with a verdict.

Two questions, two intervals:

- **Same questions** (the verdict, when the figure was measured on the full question set the
  run asked: the registry says so per source, and r1eval's official tasks are): would this
  model, run again on these questions, score what the source printed? Which questions were
  asked is common to both numbers and cancels; only sampling within questions separates them,
  on both sides (``r1eval.claims.reproduction``; the figure's K from the registry, or 1 assumed).
  ``below``/``above``: the two-sided test rejects "no difference" at 5%; ``reproduced``: the
  two one-sided tests at the margin ``m`` (``--margin``, default 5 points) show the difference
  is smaller than ``m``; ``inconclusive``: neither. A significant difference smaller than
  ``m`` stays ``below``/``above``, and the row says it is within the margin.
- **Over questions** (``ci_low``/``ci_high`` in scores.json, ``stats.score_interval``): how able
  is the model on problems like these? It covers the choice of questions too and is the basis
  of the verdict when the run is a ``--limit`` subset, the source measured on other questions,
  or the metric is cons@K (one vote per question: nothing to resample within it). Then, with
  ``r`` the figure and ``[lo, hi]`` the interval, ``below`` is r > hi, ``above`` r < lo,
  ``reproduced`` lo >= r - m and hi <= r + m, else ``inconclusive``.

For ``inconclusive`` rows the power calculation (``r1eval.scoring.power``, 5% level, 80% power, the
variance estimated from the run) says what would decide at the observed difference ``d``:
telling ``d`` from 0 or showing ``|d| < m``, whichever needs less, i.e. ``delta = max(|d|,
m - |d|)``. On the same questions that is the samples per question (None when the figure's own
sampling hides ``delta``); over questions, the questions needed at the run's K, and the samples
per question with the run's questions (None when the spread between questions hides it).

Units: run scores are fractions, reported figures percentages (``Figure.fraction`` converts);
rows show both in percent. ``cons@K`` figures are compared only with runs of exactly K samples
per question.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from r1eval.backends.server_setup import server_differences
from r1eval.claims.published import Alias, Claim, Figure, Protocol, Reported, benchmark_name
from r1eval.claims.reproduction import SameQuestions, outcome_counts, same_questions
from r1eval.run.thinking import control_differences
from r1eval.scoring import stats
from r1eval.scoring.power import Design, questions_needed, samples_needed
from r1eval.store.contracts import Sampling, TaskEntry
from r1eval.store.loading import Run
from r1eval.task.prompts import MATH_PROMPT, MMLU_PRO_PROMPT, MULTIPLE_CHOICE_PROMPT, template_hash
from r1eval.task.registry import available_tasks

__all__ = [
    "ABOVE",
    "BELOW",
    "INCONCLUSIVE",
    "NOT_COMPARABLE",
    "NOT_RUN",
    "NO_FIGURE",
    "NO_SCORE",
    "REPRODUCED",
    "TRUNCATION_FLAG",
    "Measured",
    "Need",
    "Row",
    "TaskView",
    "check_reproduction",
    "compare_views",
    "decide",
    "need_to_decide",
    "task_views",
]

REPRODUCED = "reproduced"
BELOW = "below"
ABOVE = "above"
INCONCLUSIVE = "inconclusive"
NOT_COMPARABLE = "not comparable"
NO_FIGURE = "no reported figure"
NOT_RUN = "not run by r1eval"
NO_SCORE = "no score"

#: A truncation rate above this is flagged on the row.
TRUNCATION_FLAG = 0.05
_GRADED = ("right", "wrong", "no_answer", "truncated")
_TEMPLATE_STYLES = {MATH_PROMPT: "r1", MULTIPLE_CHOICE_PROMPT: "simple-evals",
                    MMLU_PRO_PROMPT: "mmlu-pro"}


@functools.cache
def _prompt_styles() -> dict[str, str]:
    """Prompt hash -> the reference prompt it is: the rendered prompts of the registered tasks
    built on a reference template, and the template hashes that older runs recorded."""
    styles = {template_hash(template): style for template, style in _TEMPLATE_STYLES.items()}
    for task in available_tasks().values():
        if task.prompt_template in _TEMPLATE_STYLES:
            styles[task.prompt_hash] = _TEMPLATE_STYLES[task.prompt_template]
    return styles


def decide(reported: float, low: float, high: float, margin: float) -> str:
    """The verdict over questions: a reported value against the interval over questions
    (all fractions)."""
    if margin <= 0:
        raise ValueError("margin must be positive")
    if reported > high:
        return BELOW
    if reported < low:
        return ABOVE
    if reported - margin <= low and high <= reported + margin:
        return REPRODUCED
    return INCONCLUSIVE


def decide_same_questions(test: SameQuestions, margin: float, alpha: float = 0.05) -> str:
    """The verdict on the same questions: two-sided test, then equivalence at ``margin``."""
    if margin <= 0:
        raise ValueError("margin must be positive")
    if test.differs(alpha):
        return BELOW if test.difference < 0 else ABOVE
    return REPRODUCED if test.equivalent(margin, alpha) else INCONCLUSIVE


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
    """What would decide an inconclusive comparison (see the module docstring)."""

    delta: float
    difference: float
    questions: int | None
    samples: int | None
    separable: bool
    assumed: bool

    def target(self, margin: float) -> str:
        """What deciding means: telling the observed difference from 0, or from ±margin."""
        head = f"to tell {100 * self.difference:+.1f} points from "
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
    score: dict[str, Any]
    outcomes: dict[str, list[bool]]
    sampling: Sampling
    prompt: str
    questions_in_task: int | None
    from_file: bool
    limit: int | None = None  # run --limit, when the run was made with one


def task_views(run: Run) -> list[TaskView]:
    """Every scored task of ``run``."""
    identity = run.manifest.identity
    from_file = (identity.endpoint.base_url or "").startswith("file:")
    views = []
    for score in run.scores.to_dict("records"):
        task = str(score["task"])
        entry = run.manifest.tasks.get(task) or TaskEntry()
        views.append(TaskView(
            run=run.name, model=run.model, task=task, score=_plain(score),
            outcomes=_outcomes(run.samples, task), sampling=identity.sampling,
            prompt=_prompt_styles().get(entry.prompt_hash or "", "custom"),
            questions_in_task=entry.questions, from_file=from_file,
            limit=run.manifest.config.limit,
        ))
    return views


def _plain(score: dict[Any, Any]) -> dict[str, Any]:
    """Python values: pandas' missing values (NaN) as None, numpy scalars as int/float."""
    return {
        str(k): None if _missing(v) else (v.item() if isinstance(v, np.generic) else v)
        for k, v in score.items()
    }


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _outcomes(samples: pd.DataFrame, task: str) -> dict[str, list[bool]]:
    graded = samples[(samples["task"] == task) & samples["verdict"].isin(_GRADED)]
    return {
        str(question): [v == "right" for v in group["verdict"]]
        for question, group in graded.groupby("sample_id", sort=True)
    }


@dataclass(frozen=True)
class Row:
    """One line of the comparison. Scores in percent; ``reported`` in the figure's unit."""

    run: str
    model: str
    compared_as: str | None
    task: str
    benchmark: str
    metric: str | None
    reported: float | None
    reported_shown: str
    source: str | None
    source_title: str | None
    where: str | None
    measured_pct: float | None
    ci_low_pct: float | None  # the interval over questions (scores.json ci_low, ci_high)
    ci_high_pct: float | None
    difference_pts: float | None
    verdict: str
    basis: str | None = None  # "same questions" or "over questions": what the verdict rests on
    same_low_pct: float | None = None  # the run's score again on these questions (95%)
    same_high_pct: float | None = None
    difference_low_pts: float | None = None  # run - figure on the same questions (95%)
    difference_high_pts: float | None = None
    figure_samples: int | None = None  # the figure's K used by the same-question test
    figure_samples_assumed: bool | None = None
    p_value: float | None = None  # two-sided, same questions
    p_equivalence: float | None = None  # TOST at the margin, same questions
    questions_needed: int | None = None
    samples_needed: int | None = None
    n_questions: int | None = None
    samples_per_question: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    cost_usd: float | None = None
    usd_per_point: float | None = None  # the run's cost per percentage point of the score


def check_reproduction(
    runs: Sequence[Run],
    reported: Reported,
    runnable: Iterable[str],
    margin: float = 0.05,
    as_names: Sequence[str | None] = (),
) -> list[Row]:
    """Rows for every task of every run, then the model's benchmarks r1eval cannot run.

    ``as_names`` gives the registry name per run (None: resolve the run's model name). A
    run served otherwise than the first (``r1eval.backends.server_setup``) says so in its notes.
    """
    rows: list[Row] = []
    runnable = set(runnable)
    for index, run in enumerate(runs):
        name = (as_names[index] if index < len(as_names) else None) or run.model
        served = tuple(server_differences(runs[0].manifest.server, run.manifest.server,
                                          (runs[0].name, run.name))) if index else ()
        rows += [replace(row, notes=row.notes + served)
                 for row in compare_views(task_views(run), reported, runnable, margin, name)]
    return rows


def compare_views(
    views: Sequence[TaskView], reported: Reported, runnable: set[str], margin: float, name: str
) -> list[Row]:
    """The rows of one run's tasks, its model looked up in the registry as ``name``."""
    resolved = reported.resolve(name)
    model, alias = resolved if resolved is not None else (None, None)
    claims = reported.for_model(model) if model else []
    rows = [row for view in views for row in _task_rows(view, model, alias, claims, margin,
                                                         name)]
    if views:
        rows += [_not_run_row(views[0], model, c) for c in claims
                 if c.figure.benchmark not in runnable]
    return rows


def _task_rows(
    view: TaskView, model: str | None, alias: Alias | None, claims: list[Claim],
    margin: float, asked: str,
) -> list[Row]:
    matching = [c for c in claims if c.figure.benchmark == view.task]
    if not matching:
        note = (f"no reported figures for {asked}; use --as NAME" if model is None
                else f"no reported figure for {model} on {benchmark_name(view.task)}")
        return [_row(view, model, None, _pass1(view), NO_FIGURE, (note,))]
    return [_claim_row(view, model, alias, claim, margin) for claim in matching]


def _claim_row(
    view: TaskView, model: str | None, alias: Alias | None, claim: Claim, margin: float
) -> Row:
    figure = claim.figure
    notes = [n for n in (figure.note, alias.note if alias else None) if n]
    measured = _measure(view, figure)
    if isinstance(measured, str):
        return _row(view, model, claim, None, NOT_COMPARABLE, (measured, *notes))
    if measured is None:
        return _row(view, model, claim, None, NO_SCORE, ("no graded response", *notes))
    notes = _run_flags(view) + _protocol_flags(view, figure.protocol) + notes
    test = _same_question_test(view, claim, measured)
    need = None
    if isinstance(test, SameQuestions):
        verdict = decide_same_questions(test, margin)
        notes.insert(0, _same_text(test))
        if verdict == INCONCLUSIVE:
            need = need_on_same_questions(test, margin)
            notes.insert(0, _need_same_text(need, test, margin))
    else:
        verdict = decide(figure.fraction, measured.low, measured.high, margin)
        notes.insert(0, f"over questions only: {test}")
        if verdict == INCONCLUSIVE:
            need = need_to_decide(measured, figure.fraction, margin)
            notes.insert(0, _need_text(need, measured, view, margin))
    if verdict in (BELOW, ABOVE) and abs(measured.value - figure.fraction) <= margin:
        notes.insert(0, f"significant, but within ±{100 * margin:g} points")
    return _row(view, model, claim, measured, verdict, tuple(notes), need,
                test if isinstance(test, SameQuestions) else None, margin)


def _limited(view: TaskView) -> bool:
    """Whether ``run --limit`` cut the task short (its question count is the limit)."""
    return view.limit is not None and view.questions_in_task == view.limit


def _same_question_test(view: TaskView, claim: Claim, measured: Measured
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
    return planned is not None and (view.score.get("n_questions") or 0) < planned


def _same_text(test: SameQuestions) -> str:
    low, high = test.difference_interval()
    k = (f"figure's K not stated, {test.reported_samples} assumed" if test.samples_assumed
         else f"figure's K={test.reported_samples}")
    return (f"same questions ({k}): difference {100 * low:+.1f} to {100 * high:+.1f} "
            f"points (95%)")


def _need_same_text(need: Need, test: SameQuestions, margin: float) -> str:
    text = f"{need.target(margin)} at 80% power: "
    if need.samples is None:
        return text + (f"no K suffices, the figure's own sampling (K={test.reported_samples}) "
                       "is too noisy")
    return text + f"K={need.samples} per question on these {test.n_questions} questions"


def _pass1(view: TaskView) -> Measured | None:
    score = view.score
    if score.get("pass@1") is None:
        return None
    return Measured(
        value=float(score["pass@1"]), low=float(score["ci_low"]), high=float(score["ci_high"]),
        outcomes=list(view.outcomes.values()), samples=int(score["samples_per_question"]),
    )


def _measure(view: TaskView, figure: Figure) -> Measured | str | None:
    """The measured counterpart of ``figure``; a string says why there is none."""
    k, wanted = view.score.get("samples_per_question"), figure.samples_in_metric
    if figure.metric == "pass@1":
        return _pass1(view)
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
    value = view.score.get("cons@k")
    voters = len(view.outcomes)
    if value is None or voters == 0:
        return None
    right = round(float(value) * voters)
    votes = [[True]] * right + [[False]] * (voters - right)
    interval = stats.score_interval(votes)
    return Measured(float(value), interval.low, interval.high, votes, samples=1)


def _need_text(need: Need, measured: Measured, view: TaskView, margin: float) -> str:
    have = len(measured.outcomes)
    k = measured.samples
    text = f"{need.target(margin)} at 80% power: ~{need.questions} questions at K={k} (has {have})"
    if need.assumed:
        text += " (variance assumed: every question scored alike)"
    if k == 1 and (view.score.get("samples_per_question") or 1) > 1:
        return text  # one majority vote per question: more samples make no more votes
    if not need.separable:
        return text + "; run K>=2 to tell whether more samples would help"
    if need.samples is None:
        return text + f"; no number of samples suffices with {have} questions"
    return text + f", or K={need.samples} with these {have}"


def _run_flags(view: TaskView) -> list[str]:
    score, flags = view.score, []
    questions, planned = score.get("n_questions") or 0, view.questions_in_task
    if planned is not None and questions < planned:
        flags.append(f"subset: {questions} of {planned} questions")
    if score.get("n_errors"):
        flags.append(f"{score['n_errors']} failed requests left out")
    if score.get("n_questions_short_of_k"):
        flags.append(f"{score['n_questions_short_of_k']} questions with fewer than "
                     f"K={score.get('samples_per_question')} samples")
    truncated = score.get("truncated_rate")
    if truncated is not None and truncated > TRUNCATION_FLAG:
        flags.append(f"high truncation rate ({100 * truncated:.0f}%)")
    return flags


def _protocol_flags(view: TaskView, protocol: Protocol | None) -> list[str]:
    if protocol is None:
        return ["source states no protocol"]
    checks = (_samples_flag, _temperature_flag, _top_p_flag, _tokens_flag, _prompt_flag)
    flags = [flag for check in checks if (flag := check(view, protocol)) is not None]
    return flags + control_differences(view.sampling.model_dump(), protocol.model_dump())


def _unset(view: TaskView) -> str:
    return "not recorded" if view.from_file else "not set (server default)"


def _samples_flag(view: TaskView, protocol: Protocol) -> str | None:
    k = view.score.get("samples_per_question")
    if protocol.samples is None or k is None or k >= protocol.samples:
        return None
    return f"fewer samples (K={k} vs {protocol.samples})"


def _temperature_flag(view: TaskView, protocol: Protocol) -> str | None:
    wanted, used = protocol.temperature, view.sampling.temperature
    if wanted is None or used == wanted:
        return None
    if used is None:
        return f"temperature {_unset(view)} vs {wanted:g}"
    if (used == 0) != (wanted == 0):
        return "greedy vs sampled" if used == 0 else "sampled vs greedy"
    return f"temperature {used:g} vs {wanted:g}"


def _top_p_flag(view: TaskView, protocol: Protocol) -> str | None:
    wanted, used = protocol.top_p, view.sampling.top_p
    if wanted is None or used == wanted:
        return None
    return f"top-p {_unset(view) if used is None else f'{used:g}'} vs {wanted:g}"


def _tokens_flag(view: TaskView, protocol: Protocol) -> str | None:
    wanted, used = protocol.max_tokens, view.sampling.max_tokens
    if wanted is None or (used is not None and used >= wanted):
        return None
    if used is None:
        return f"token limit {_unset(view)} vs {wanted}"
    return f"smaller token limit ({used} vs {wanted})"


def _prompt_flag(view: TaskView, protocol: Protocol) -> str | None:
    if protocol.prompt is None or protocol.prompt == view.prompt:
        return None
    return f"prompt {view.prompt} vs {protocol.prompt}"


def _pct(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def _row(
    view: TaskView, model: str | None, claim: Claim | None, measured: Measured | None,
    verdict: str, notes: tuple[str, ...], need: Need | None = None,
    test: SameQuestions | None = None, margin: float | None = None,
) -> Row:
    figure = claim.figure if claim else None
    difference = None
    if measured is not None and figure is not None and figure.is_percent:
        difference = 100.0 * (measured.value - figure.fraction)
    return Row(
        run=view.run, model=view.model, compared_as=model, task=view.task,
        benchmark=benchmark_name(view.task),
        metric=figure.metric if figure else "pass@1",
        reported=figure.value if figure else None,
        reported_shown=figure.shown() if figure else "-",
        source=claim.source.id if claim else None,
        source_title=claim.source.title if claim else None,
        where=figure.where if figure else None,
        measured_pct=_pct(measured.value if measured else None),
        ci_low_pct=_pct(measured.low if measured else None),
        ci_high_pct=_pct(measured.high if measured else None),
        difference_pts=difference, verdict=verdict,
        questions_needed=need.questions if need else None,
        samples_needed=need.samples if need else None,
        n_questions=view.score.get("n_questions"),
        samples_per_question=view.score.get("samples_per_question"),
        notes=notes,
        **_cost(view.score.get("cost_usd"), measured),
        **_same_fields(test, margin, measured is not None and figure is not None),
    )


def _same_fields(test: SameQuestions | None, margin: float | None, compared: bool
                 ) -> dict[str, Any]:
    if test is None:
        return {"basis": "over questions" if compared else None}
    same_low, same_high = test.score_interval()
    low, high = test.difference_interval()
    return {
        "basis": "same questions", "same_low_pct": 100 * same_low,
        "same_high_pct": 100 * same_high, "difference_low_pts": 100 * low,
        "difference_high_pts": 100 * high, "figure_samples": test.reported_samples,
        "figure_samples_assumed": test.samples_assumed, "p_value": test.p_value(),
        "p_equivalence": test.p_equivalence(margin) if margin else None,
    }


def _not_run_row(view: TaskView, model: str | None, claim: Claim) -> Row:
    figure = claim.figure
    return Row(
        run=view.run, model=view.model, compared_as=model, task=figure.benchmark,
        benchmark=benchmark_name(figure.benchmark), metric=figure.metric,
        reported=figure.value, reported_shown=figure.shown(), source=claim.source.id,
        source_title=claim.source.title, where=figure.where, measured_pct=None,
        ci_low_pct=None, ci_high_pct=None, difference_pts=None, verdict=NOT_RUN,
    )


# Output: a markdown table for the terminal, CSV and JSON for tools.

def _cost(cost: Any, measured: Measured | None) -> dict[str, Any]:
    """The run's cost for this task, and per point of its measured score."""
    if _missing(cost):
        return {"cost_usd": None, "usd_per_point": None}
    per_point = float(cost) / (100 * measured.value) if measured and measured.value else None
    return {"cost_usd": float(cost), "usd_per_point": per_point}
