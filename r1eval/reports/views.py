"""What the report's views show, computed from a loaded run: plain JSON-ready dictionaries.

- ``overview``: per task, pass@1 with its intervals, cons@K, the pass@k curve, truncation and
  no-answer rates, token counts and cost, and the reported figures with their verdicts
  (``r1eval.claims.check``);
- ``question_table``: per question, its pass rate over the K samples, mean length, majority
  answer and metadata, and where its samples sit in the page's sample list;
- ``lengths``: the distribution of response tokens, accuracy by length, and the share of
  responses a smaller token limit would have cut;
- ``regression``: two runs question by question (``r1eval.regress.paired``).

The page (``report_template.html``) only draws these; every number is computed here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from r1eval.claims.check import Row
from r1eval.claims.reproduction import outcome_counts, same_questions
from r1eval.regress.paired import Comparison
from r1eval.regress.pairing import pair_task, question_records
from r1eval.regress.render import gate_text, summary
from r1eval.scoring import stats
from r1eval.store.loading import Run
from r1eval.store.outcomes import OUTCOMES, STATUS_COLUMN, graded_rows

LENGTH_BINS = 24


def score_intervals(
    score: Mapping[Any, Any], outcomes: Sequence[Sequence[bool]] = ()
) -> list[dict[str, Any]]:
    """The 95% intervals of a task's pass@1, each named by what it is over: the questions
    (``scores.json``; ``stats.score_interval``) and, given each question's ``outcomes``, the
    same questions asked again (``r1eval.claims.reproduction``: sampling within questions only).

    The one place that lists them: the page draws every entry.
    """
    intervals = []
    if _number(score.get("ci_low")) is not None and _number(score.get("ci_high")) is not None:
        intervals.append({"label": "over questions", "low": float(score["ci_low"]),
                          "high": float(score["ci_high"]),
                          "about": "how the score would vary on other questions like these"})
    graded = [o for o in outcomes if len(o)]
    if graded:
        correct, samples = outcome_counts(graded)
        run = same_questions(correct, samples, float(np.mean([sum(o) / len(o) for o in graded])),
                             None)  # the figure's side does not enter the run's own interval
        low, high = run.score_interval()
        intervals.append({"label": "same questions", "low": low, "high": high,
                          "about": "where the score would fall if these questions were asked "
                                   "again (sampling within questions only)"})
    return intervals


def _number(value: Any) -> float | None:
    """A finite float, or None for pandas' missing values."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def pass_at_k_curve(outcomes: Sequence[Sequence[bool]], k_max: int) -> list[float]:
    """Mean unbiased pass@k for k = 1..``k_max``, every question counted with the samples it
    has (a question short of k with its pass@n), as ``scores.json``'s pass@K."""
    graded = [o for o in outcomes if len(o)]
    if not graded or k_max < 1:
        return []
    return [stats.mean_pass_at_k(graded, k, available=True) for k in range(1, k_max + 1)]


def token_summary(tokens: pd.Series) -> dict[str, float] | None:
    """Mean, median, 90th percentile and maximum of known token counts."""
    known = tokens.dropna().astype(float).to_numpy()
    if known.size == 0:
        return None
    return {"mean": float(known.mean()), "p50": float(np.percentile(known, 50)),
            "p90": float(np.percentile(known, 90)), "max": float(known.max()),
            "n": int(known.size)}


def _reported(rows: Sequence[Row], task: str) -> list[dict[str, Any]]:
    """The reported figures of one task with their verdicts, in percent."""
    return [
        {"source": r.source, "title": r.source_title, "where": r.where, "metric": r.metric,
         "reported": r.reported, "shown": r.reported_shown, "verdict": r.verdict,
         "measured": r.measured_pct, "low": r.ci_low_pct, "high": r.ci_high_pct,
         "difference": r.difference_pts, "notes": list(r.notes), "basis": r.basis,
         "sameLow": r.same_low_pct, "sameHigh": r.same_high_pct}
        for r in rows if r.task == task and r.source is not None
    ]


def overview(run: Run, rows: Sequence[Row]) -> list[dict[str, Any]]:
    """One entry per scored task (``rows``: ``check_reproduction`` of this run)."""
    entries = []
    for score in run.scores.to_dict("records"):
        task = str(score["task"])
        k = int(score["samples_per_question"] or 0)
        _, records = question_records(run, task)
        samples = graded_rows(run.samples, task)
        entries.append({
            "task": task,
            "pass1": _number(score["pass@1"]),
            "intervals": score_intervals(score, [r.outcomes for r in records.values()]),
            "cons": _number(score["cons@k"]),
            "k": k,
            "curve": pass_at_k_curve([r.outcomes for r in records.values()], k),
            "questions": int(score["n_questions"] or 0),
            "planned": int(score["n_questions_planned"] or 0),
            "samples": int(score["n_samples"] or 0),
            "errors": int(score["n_errors"] or 0),
            "truncated": _number(score["truncated_rate"]),
            "noAnswer": _number(score["no_answer_rate"]),
            "completedAccuracy": _number(score["accuracy_completed"]),
            "tokens": token_summary(samples["completion_tokens"]),
            "reasoningTokens": token_summary(samples["reasoning_tokens"]),
            "cost": _number(score["cost_usd"]),
            "reported": _reported(rows, task),
        })
    return entries


def question_table(run: Run, breakdown: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """Per question (in the page's sample order): pass rate, length, majority answer,
    metadata, and the first index and number of its samples in the sample list."""
    samples = run.samples
    questions: list[dict[str, Any]] = []
    for task, rows in samples.groupby("task", sort=True):
        _, records = question_records(run, str(task))
        keys = tuple(breakdown.get(str(task), ()))
        for qid, group in rows.groupby("sample_id", sort=True):
            record = records.get(str(qid))
            tokens = group["completion_tokens"].dropna()
            metadata = group["metadata"].iloc[0] or {}
            questions.append({
                "task": str(task), "id": str(qid),
                "first": int(group.index[0]), "count": len(group),
                "pass": record.pass1 if record else None,
                "graded": len(record.outcomes) if record else 0,
                "tokens": float(tokens.mean()) if len(tokens) else None,
                "majority": record.answer if record else None,
                "gold": _first_text(group["gold"]),
                "groups": {key: str(metadata.get(key)) for key in keys if key in metadata},
            })
    return questions


def _first_text(values: pd.Series) -> str | None:
    known = [v for v in values if isinstance(v, str)]
    return known[0] if known else None


def lengths(run: Run, task: str, limit: int | None) -> dict[str, Any] | None:
    """Response lengths of one task's graded samples, binned up to the token limit (or the
    longest response): counts by status (right, wrong, ...), accuracy per bin, the reasoning
    and answer parts where the endpoint reported reasoning tokens, and the share a smaller
    limit would cut."""
    rows = graded_rows(run.samples, task)
    rows = rows[rows["completion_tokens"].notna()]
    if rows.empty:
        return None
    tokens = rows["completion_tokens"].astype(float).to_numpy()
    top = float(limit) if limit else float(tokens.max())
    top = max(top, float(tokens.max()), 1.0)
    edges = np.linspace(0.0, top, LENGTH_BINS + 1)
    index = np.clip(np.searchsorted(edges, tokens, side="right") - 1, 0, LENGTH_BINS - 1)
    statuses = rows[STATUS_COLUMN].to_numpy()
    bins = []
    for b in range(LENGTH_BINS):
        mask = index == b
        counts = {s: int(np.sum(statuses[mask] == s)) for s in OUTCOMES}
        total = int(mask.sum())
        bins.append({"low": float(edges[b]), "high": float(edges[b + 1]), "counts": counts,
                     "accuracy": counts["right"] / total if total else None})
    reasoning = rows["reasoning_tokens"].astype(float).to_numpy()
    known = ~np.isnan(reasoning) & (reasoning > 0)
    parts = None
    if known.any():
        parts = {"reasoning": _histogram(reasoning[known], edges),
                 "answer": _histogram(np.maximum(tokens[known] - reasoning[known], 0), edges),
                 "n": int(known.sum())}
    truncated = statuses == "truncated"
    cut = [float(np.mean((tokens >= edge) | truncated)) for edge in edges[1:]]
    return {"task": task, "limit": limit, "edges": edges.tolist(), "bins": bins,
            "parts": parts, "cutShare": cut, "n": int(tokens.size)}


def _histogram(values: np.ndarray, edges: np.ndarray) -> list[int]:
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return [int(c) for c in counts]


def regression(comparison: Comparison) -> dict[str, Any]:
    """Two runs side by side: the gate on top, then per task its summary and its questions,
    the flipped ones first (lost, then gained), then the rest by the size of the change."""
    settings = comparison.settings
    tasks = []
    for t in comparison.tasks:
        pairing = pair_task(comparison.base, comparison.candidate, t.task)
        flips = {**{f.id: "lost" for f in t.lost}, **{f.id: "gained" for f in t.gained}}
        order = {"lost": 0, "gained": 1, "": 2}
        paired = sorted(
            zip(pairing.ids, pairing.base, pairing.candidate, strict=True),
            key=lambda q: (order[flips.get(q[0], "")], -abs(q[2].pass1 - q[1].pass1), q[0]),
        )
        questions = [
            {"id": qid, "base": b.pass1, "candidate": c.pass1, "baseAnswer": b.answer,
             "candidateAnswer": c.answer, "flip": flips.get(qid, "")}
            for qid, b, c in paired
        ]
        tasks.append({
            "task": t.task, "summary": summary(t, settings), "gate": gate_text(t, settings),
            "failed": t.gate_failed, "verdict": t.verdict, "questions": questions,
            "base": t.base_pass1, "candidate": t.candidate_pass1,
            "low": t.interval.low, "high": t.interval.high, "p": t.p_value,
            "nLost": len(t.lost), "nGained": len(t.gained), "leftOut": t.left_out,
        })
    return {
        "base": comparison.base.name, "baseModel": comparison.base.model,
        "candidate": comparison.candidate.name, "candidateModel": comparison.candidate.model,
        "failed": comparison.failed, "maxDrop": settings.max_drop, "alpha": settings.alpha,
        "forced": comparison.forced, "skipped": comparison.skipped, "notes": comparison.notes,
        "tasks": tasks,
    }
