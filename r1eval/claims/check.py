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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from r1eval.backends.server_setup import server_differences
from r1eval.backends.thinking import control_differences
from r1eval.claims.measure import (
    Measured,
    Need,
    TaskView,
    measure,
    need_on_same_questions,
    need_to_decide,
    pass1,
    same_question_test,
    task_views,
)
from r1eval.claims.published import Alias, Claim, Protocol, Reported, benchmark_name
from r1eval.claims.reproduction import SameQuestions
from r1eval.percent import as_percent, is_missing, percent_text
from r1eval.store.loading import Run

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
    "ReproductionVerdict",
    "Row",
    "TaskView",
    "check_reproduction",
    "compare_views",
    "decide",
    "need_to_decide",
    "task_views",
]

#: What a row says of a published figure (a sample's own result is its status,
#: ``r1eval.store.outcomes``; a paired regression's is a ``RegressionVerdict``).
ReproductionVerdict = Literal["reproduced", "below", "above", "inconclusive", "not comparable",
                              "no reported figure", "not run by r1eval", "no score"]
REPRODUCED: ReproductionVerdict = "reproduced"
BELOW: ReproductionVerdict = "below"
ABOVE: ReproductionVerdict = "above"
INCONCLUSIVE: ReproductionVerdict = "inconclusive"
NOT_COMPARABLE: ReproductionVerdict = "not comparable"
NO_FIGURE: ReproductionVerdict = "no reported figure"
NOT_RUN: ReproductionVerdict = "not run by r1eval"
NO_SCORE: ReproductionVerdict = "no score"

#: A truncation rate above this is flagged on the row.
TRUNCATION_FLAG = 0.05
def decide(reported: float, low: float, high: float, margin: float) -> ReproductionVerdict:
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


def decide_same_questions(test: SameQuestions, margin: float, alpha: float = 0.05
                          ) -> ReproductionVerdict:
    """The verdict on the same questions: two-sided test, then equivalence at ``margin``."""
    if margin <= 0:
        raise ValueError("margin must be positive")
    if test.differs(alpha):
        return BELOW if test.difference < 0 else ABOVE
    return REPRODUCED if test.equivalent(margin, alpha) else INCONCLUSIVE


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
    verdict: ReproductionVerdict
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
        return [_row(view, model, None, pass1(view), NO_FIGURE, (note,))]
    return [_claim_row(view, model, alias, claim, margin) for claim in matching]


def _claim_row(
    view: TaskView, model: str | None, alias: Alias | None, claim: Claim, margin: float
) -> Row:
    figure = claim.figure
    notes = [n for n in (figure.note, alias.note if alias else None) if n]
    measured = measure(view, figure)
    if isinstance(measured, str):
        return _row(view, model, claim, None, NOT_COMPARABLE, (measured, *notes))
    if measured is None:
        return _row(view, model, claim, None, NO_SCORE, ("no graded response", *notes))
    notes = _run_flags(view) + _protocol_flags(view, figure.protocol) + notes
    test = same_question_test(view, claim, measured)
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


def _same_text(test: SameQuestions) -> str:
    low, high = test.difference_interval()
    k = (f"figure's K not stated, {test.reported_samples} assumed" if test.samples_assumed
         else f"figure's K={test.reported_samples}")
    return (f"same questions ({k}): difference {percent_text(low, signed=True)} to "
            f"{percent_text(high, signed=True)} "
            f"points (95%)")


def _need_same_text(need: Need, test: SameQuestions, margin: float) -> str:
    text = f"{need.target(margin)} at 80% power: "
    if need.samples is None:
        return text + (f"no K suffices, the figure's own sampling (K={test.reported_samples}) "
                       "is too noisy")
    return text + f"K={need.samples} per question on these {test.n_questions} questions"


def _need_text(need: Need, measured: Measured, view: TaskView, margin: float) -> str:
    have = len(measured.outcomes)
    k = measured.samples
    text = f"{need.target(margin)} at 80% power: ~{need.questions} questions at K={k} (has {have})"
    if need.assumed:
        text += " (variance assumed: every question scored alike)"
    if k == 1 and (view.score.samples_per_question or 1) > 1:
        return text  # one majority vote per question: more samples make no more votes
    if not need.separable:
        return text + "; run K>=2 to tell whether more samples would help"
    if need.samples is None:
        return text + f"; no number of samples suffices with {have} questions"
    return text + f", or K={need.samples} with these {have}"


def _run_flags(view: TaskView) -> list[str]:
    score, flags = view.score, []
    questions, planned = score.n_questions, view.questions_in_task
    if planned is not None and questions < planned:
        flags.append(f"subset: {questions} of {planned} questions")
    if score.n_errors:
        flags.append(f"{score.n_errors} failed requests left out")
    if score.n_questions_short_of_k:
        flags.append(f"{score.n_questions_short_of_k} questions with fewer than "
                     f"K={score.samples_per_question} samples")
    truncated = score.truncated_rate
    if truncated is not None and truncated > TRUNCATION_FLAG:
        flags.append(f"high truncation rate ({percent_text(truncated, digits=0)}%)")
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
    k = view.score.samples_per_question
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


def _row(
    view: TaskView, model: str | None, claim: Claim | None, measured: Measured | None,
    verdict: ReproductionVerdict, notes: tuple[str, ...], need: Need | None = None,
    test: SameQuestions | None = None, margin: float | None = None,
) -> Row:
    figure = claim.figure if claim else None
    difference = None
    if measured is not None and figure is not None and figure.is_percent:
        difference = as_percent(measured.value - figure.fraction)
    return Row(
        run=view.run, model=view.model, compared_as=model, task=view.task,
        benchmark=benchmark_name(view.task),
        metric=figure.metric if figure else "pass@1",
        reported=figure.value if figure else None,
        reported_shown=figure.shown() if figure else "-",
        source=claim.source.id if claim else None,
        source_title=claim.source.title if claim else None,
        where=figure.where if figure else None,
        measured_pct=as_percent(measured.value if measured else None),
        ci_low_pct=as_percent(measured.low if measured else None),
        ci_high_pct=as_percent(measured.high if measured else None),
        difference_pts=difference, verdict=verdict,
        questions_needed=need.questions if need else None,
        samples_needed=need.samples if need else None,
        n_questions=view.score.n_questions,
        samples_per_question=view.score.samples_per_question,
        notes=notes,
        **_cost(view.score.cost_usd, measured),
        **_same_fields(test, margin, measured is not None and figure is not None),
    )


def _same_fields(test: SameQuestions | None, margin: float | None, compared: bool
                 ) -> dict[str, Any]:
    if test is None:
        return {"basis": "over questions" if compared else None}
    same_low, same_high = test.score_interval()
    low, high = test.difference_interval()
    return {
        "basis": "same questions", "same_low_pct": as_percent(same_low),
        "same_high_pct": as_percent(same_high), "difference_low_pts": as_percent(low),
        "difference_high_pts": as_percent(high), "figure_samples": test.reported_samples,
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


def _cost(cost: Any, measured: Measured | None) -> dict[str, Any]:
    """The run's cost for this task, and per point of its measured score."""
    if is_missing(cost):
        return {"cost_usd": None, "usd_per_point": None}
    per_point = float(cost) / (100 * measured.value) if measured and measured.value else None
    return {"cost_usd": float(cost), "usd_per_point": per_point}
