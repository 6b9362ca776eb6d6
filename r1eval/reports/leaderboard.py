"""Leaderboard tables: one row per (run, task) with full provenance, or model x task.

Column order is part of the contract (``LONG_COLUMNS``, documented in the README): new columns
are only ever appended.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from r1eval.claims.published import Reported
from r1eval.percent import as_percent
from r1eval.store.contracts import TaskEntry
from r1eval.store.loading import Run, RunSet

LONG_COLUMNS = [
    "model", "task", "score_pct", "ci_low_pct", "ci_high_pct", "questions",
    "samples_per_question", "cons_at_k_pct", "pass_at_k_pct", "truncated_pct", "no_answer_pct",
    "errors", "complete", "prompt_tokens", "completion_tokens", "reasoning_tokens", "cost_usd",
    "source", "run", "date", "r1eval_version", "git_commit", "git_dirty", "task_version",
    "dataset", "prompt_hash", "grader", "math_verify_version", "aiohttp_version",
    "datasets_version", "python", "temperature", "top_p", "max_tokens", "endpoint",
    "metric", "value", "registry_model", "where",
]
MEASURED = "measured by r1eval"




def _provenance(run: Run, task: str) -> dict[str, Any]:
    manifest = run.manifest
    entry = manifest.tasks.get(task) or TaskEntry()
    prov = manifest.provenance
    packages = prov.packages
    git = prov.git or {}
    sampling = manifest.identity.sampling
    return {
        "run": run.name, "date": run.created, "r1eval_version": manifest.r1eval_version,
        "git_commit": git.get("commit"), "git_dirty": git.get("dirty"),
        "task_version": entry.version, "dataset": entry.source.label,
        "prompt_hash": entry.prompt_hash, "grader": entry.grader,
        "math_verify_version": packages.get("math-verify"),
        "aiohttp_version": packages.get("aiohttp"), "datasets_version": packages.get("datasets"),
        "python": prov.python, "temperature": sampling.temperature,
        "top_p": sampling.top_p, "max_tokens": sampling.max_tokens,
        "endpoint": manifest.identity.endpoint.base_url,
    }


def _rows(run: Run) -> list[dict[str, Any]]:
    rows = []
    for s in run.scores.to_dict("records"):
        rows.append({
            "model": run.model, "task": s["task"], "score_pct": as_percent(s["pass@1"], 2),
            "ci_low_pct": as_percent(s["ci_low"], 2), "ci_high_pct": as_percent(s["ci_high"], 2),
            "questions": s["n_questions"], "samples_per_question": s["samples_per_question"],
            "cons_at_k_pct": as_percent(s["cons@k"], 2),
            "pass_at_k_pct": as_percent(s["pass@k"], 2),
            "truncated_pct": as_percent(s["truncated_rate"], 2),
            "no_answer_pct": as_percent(s["no_answer_rate"], 2), "errors": s["n_errors"],
            "complete": bool(s["complete"]), "prompt_tokens": s["prompt_tokens"],
            "completion_tokens": s["completion_tokens"],
            "reasoning_tokens": s["reasoning_tokens"], "cost_usd": s.get("cost_usd"),
            "source": MEASURED, **_provenance(run, s["task"]), "metric": "pass@1",
            "value": as_percent(s["pass@1"], 2),
        })
    return rows


def reported_rows(models: list[str], reported: Reported) -> pd.DataFrame:
    """The registry's figures for ``models`` (endpoint names, resolved through the aliases),
    one row each, with ``source`` naming where the figure was published."""
    rows = []
    for model in dict.fromkeys(models):
        resolved = reported.resolve(model)
        if resolved is None:
            continue
        for claim in reported.for_model(resolved[0]):
            figure, protocol = claim.figure, claim.figure.protocol
            percent = figure.value if figure.is_percent else None
            rows.append({
                "model": model, "task": figure.benchmark,
                "score_pct": percent if figure.metric == "pass@1" else None,
                "cons_at_k_pct": percent if figure.metric.startswith("cons@") else None,
                "samples_per_question": protocol.samples if protocol else None,
                "temperature": protocol.temperature if protocol else None,
                "top_p": protocol.top_p if protocol else None,
                "max_tokens": protocol.max_tokens if protocol else None,
                "source": claim.source.title, "metric": figure.metric, "value": figure.value,
                "registry_model": resolved[0], "where": figure.where,
            })
    return pd.DataFrame(rows, columns=LONG_COLUMNS)


def with_reported(long: pd.DataFrame, reported: Reported) -> pd.DataFrame:
    """Measured rows followed by the published figures for the same models."""
    long = long.copy()
    long["registry_model"] = [
        (resolved[0] if (resolved := reported.resolve(m)) else None) for m in long["model"]
    ]
    extra = reported_rows(list(long["model"]), reported)
    frames = [f for f in (long, extra) if not f.empty]
    if not frames:
        return long
    return pd.concat(frames, ignore_index=True)[LONG_COLUMNS]


def long_table(runs: RunSet, keep_all: bool = False) -> pd.DataFrame:
    """One row per (run, task); unless ``keep_all``, the newest complete run of each
    (model, task) wins (the newest incomplete one when none is complete)."""
    frame = pd.DataFrame([r for run in runs.runs for r in _rows(run)], columns=LONG_COLUMNS)
    if frame.empty or keep_all:
        return frame.reset_index(drop=True)
    ranked = frame.sort_values(["complete", "date", "run"], ascending=[False, False, False])
    best = ranked.drop_duplicates(["model", "task"], keep="first")
    return best.sort_values(["model", "task"], ignore_index=True)


#: Per task in the wide table: what a cell is, and what it rests on (a row's cells may come
#: from different runs, with different question counts and K).
WIDE_PARTS = {"": "score_pct", "_ci_low": "ci_low_pct", "_ci_high": "ci_high_pct",
              "_questions": "questions", "_k": "samples_per_question", "_run": "run"}


def wide_table(long: pd.DataFrame) -> pd.DataFrame:
    """Model x task: each task's measured score and interval bounds, in percent, with the
    run, the number of questions and the K each cell comes from."""
    long = long[long["source"] == MEASURED]
    if long.empty:
        return pd.DataFrame(columns=["model"])
    cells = long.drop_duplicates(["model", "task"]).set_index(["model", "task"])
    models = sorted(long["model"].unique())
    columns: dict[str, list[Any]] = {"model": models}
    for task in sorted(long["task"].unique()):
        for suffix, column in WIDE_PARTS.items():
            columns[f"{task}{suffix}"] = [
                cells[column].get((model, task)) for model in models
            ]
    return pd.DataFrame(columns)
