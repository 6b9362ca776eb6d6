"""Per-task scores of a run, from its plan and what its sample log holds.

Scores count only graded responses; failed requests are counted apart (``n_errors``) and
never as wrong answers. The interval is over questions (see ``r1eval.scoring.stats``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from r1eval.gc_pause import no_cyclic_gc
from r1eval.scoring import stats
from r1eval.scoring.prices import Price, price_record
from r1eval.store.log import LogState
from r1eval.store.logged import LoggedCompletion, LoggedGrade
from r1eval.store.outcomes import OUTCOMES, sample_status, samples_per_question
from r1eval.task.multiple_choice import unshuffled_letter
from r1eval.types import WorkItem


class Outcome(NamedTuple):
    """One graded response, reduced to what scoring needs (a tuple of plain values, which the
    cyclic garbage collector stops tracking: a tally makes one per sample)."""

    correct: bool
    canonical: str | None
    answered: bool
    truncated: bool
    method: str | None
    tokens: dict[str, float]
    tokens_estimated: bool = False
    first_token_s: float | None = None  # streamed samples only
    decode_tokens_per_s: float | None = None


@dataclass
class TaskTally:
    questions: dict[str, list[Outcome]] = field(default_factory=lambda: defaultdict(list))
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    planned_questions: set[str] = field(default_factory=set)
    errors: int = 0
    not_attempted: int = 0
    repeats: set[int] = field(default_factory=set)  # the plan's repeat indices
    samples_per_question: int = 0


def _scored(grade: LoggedGrade | None, completion: LoggedCompletion | None) -> Outcome:
    """What scoring keeps of a sample whose status is an outcome (it has both records)."""
    assert grade is not None and completion is not None
    usage = completion.usage
    tokens = usage.per_sample()
    return Outcome(
        bool(grade.correct),
        _vote_key(grade.canonical, completion),
        grade.extracted is not None,
        completion.finish_reason == "length",
        grade.method,
        tokens,
        bool(usage.estimated),
        *_speed(completion, tokens.get("completion")),
    )


def _speed(completion: LoggedCompletion, tokens: float | None) -> tuple[float | None, ...]:
    """A streamed sample's time to its first output, and its completion tokens per second
    after that (its own decode rate, while the server also generated others)."""
    first, latency = completion.first_token_s, completion.latency_s
    if first is None or latency is None:
        return None, None
    decoding = latency - first
    return first, (tokens / decoding if tokens and decoding > 0 else None)


def _vote_key(canonical: str | None, completion: LoggedCompletion) -> str | None:
    """What majority votes compare: the canonical answer, un-shuffled for multiple choice."""
    order = completion.option_order
    if canonical is None or order is None:
        return canonical
    return unshuffled_letter(canonical, order)


@no_cyclic_gc()
def tally(items: Iterable[WorkItem], state: LogState) -> dict[str, TaskTally]:
    """What the log says of each planned item, per task."""
    tallies: dict[str, TaskTally] = defaultdict(TaskTally)
    grades, completions = state.grades, state.completions
    for item in items:
        t, question = tallies[item.task], item.sample.id
        t.planned_questions.add(question)
        t.metadata[question] = item.sample.metadata
        t.repeats.add(item.repeat)
        grade, completion = grades.get(item.key), completions.get(item.key)
        if sample_status(grade, completion) in OUTCOMES:
            t.questions[question].append(_scored(grade, completion))
        elif item.key in state.errors:
            t.errors += 1
        else:
            t.not_attempted += 1
    for t in tallies.values():
        t.samples_per_question = samples_per_question(t.repeats)
    return dict(tallies)


def _rate(count: float, total: int) -> float | None:
    return count / total if total else None


@no_cyclic_gc()
def score_task(t: TaskTally, breakdown: Iterable[str] = ()) -> dict[str, Any]:
    """The score object of one task (the ``scores.json`` contract plus details)."""
    per_question = [[o.correct for o in outs] for outs in t.questions.values()]
    outcomes = [o for outs in t.questions.values() for o in outs]
    n = len(outcomes)
    interval = stats.score_interval(per_question) if per_question else None
    completed = [o for o in outcomes if not o.truncated]
    k = t.samples_per_question
    votes = [[(o.canonical, o.correct) for o in outs] for outs in t.questions.values()]
    token_totals: dict[str, float] = {}
    for o in outcomes:  # not Counter.update: a tenth of the time of scoring 100,000 samples
        for name, count in o.tokens.items():
            token_totals[name] = token_totals.get(name, 0.0) + count
    return {
        "pass@1": float(stats.per_question_pass1(per_question).mean()) if per_question else None,
        "ci_low": interval.low if interval else None,
        "ci_high": interval.high if interval else None,
        "ci_method": interval.method if interval else None,
        "n_questions": len(per_question),
        "n_questions_planned": len(t.planned_questions),
        "samples_per_question": k,
        "n_samples": n,
        "n_correct": sum(o.correct for o in outcomes),
        "n_errors": t.errors,
        "n_not_attempted": t.not_attempted,
        "complete": t.errors == 0 and t.not_attempted == 0,
        "truncated_rate": _rate(sum(o.truncated for o in outcomes), n),
        "no_answer_rate": _rate(sum(not o.answered for o in outcomes), n),
        "accuracy_completed": _rate(sum(o.correct for o in completed), len(completed)),
        # every question, with the samples it has (as pass@1); n_questions_short_of_k says
        # how many had fewer than K (failed requests)
        f"cons@{k}": stats.cons_at_k(votes) if votes else None,
        f"pass@{k}": (stats.mean_pass_at_k(per_question, k, available=True)
                      if per_question else None),
        "n_questions_short_of_k": sum(len(outs) < k for outs in t.questions.values()),
        "extraction": dict(Counter(o.method or "none" for o in outcomes)),
        "tokens": {name: round(total) for name, total in sorted(token_totals.items())},
        "tokens_estimated_samples": sum(o.tokens_estimated for o in outcomes),
        "completion_tokens_per_correct": _per_correct(token_totals.get("completion", 0),
                                                      outcomes),
        "speed": _speed_summary(outcomes),
        "by": {key: _breakdown(t, key) for key in breakdown},
    }


def _speed_summary(outcomes: list[Outcome]) -> dict[str, Any]:
    """Medians and 90th percentiles over the streamed samples (None when none streamed)."""
    first = [o.first_token_s for o in outcomes if o.first_token_s is not None]
    rates = [o.decode_tokens_per_s for o in outcomes if o.decode_tokens_per_s is not None]

    def spread(values: list[float], digits: int) -> dict[str, float] | None:
        if not values:
            return None
        median, p90 = np.quantile(values, [0.5, 0.9])
        return {"median": round(float(median), digits), "p90": round(float(p90), digits)}

    return {"streamed_samples": len(first), "first_token_s": spread(first, 3),
            "decode_tokens_per_s": spread(rates, 1)}


def _per_correct(total: float, outcomes: list[Outcome]) -> float | None:
    correct = sum(o.correct for o in outcomes)
    return round(total / correct, 1) if correct else None


def add_costs(scores: dict[str, Any], price: Price | None) -> dict[str, Any]:
    """Add ``cost_usd`` (and cost per correct answer) to each task and the run's total.

    Costs are computed from the token counts as reported (or estimated) and the run's
    prices; without a known price they are left out rather than guessed.
    """
    if price is None:
        return scores
    total = 0.0
    for task in scores["tasks"].values():
        tokens = task.get("tokens", {})
        cost = price.cost(tokens.get("prompt", 0), tokens.get("completion", 0))
        correct = task["n_correct"]
        task["cost_usd"] = round(cost, 6)
        task["cost_per_correct_usd"] = round(cost / correct, 6) if correct else None
        total += cost
    scores["cost_usd"] = round(total, 6)
    scores["prices"] = price_record(price)
    return scores


def _breakdown(t: TaskTally, key: str) -> dict[str, dict[str, Any]]:
    """pass@1 per value of a metadata key (e.g. MMLU subject or category), weighting questions
    as the task's score does: the mean over the group's questions of their pass@1."""
    groups: dict[str, list[float]] = defaultdict(list)
    for question, outs in t.questions.items():
        value = str(t.metadata[question].get(key))
        groups[value].append(sum(o.correct for o in outs) / len(outs))
    return {
        value: {"pass@1": sum(rates) / len(rates), "n_questions": len(rates)}
        for value, rates in sorted(groups.items())
    }
