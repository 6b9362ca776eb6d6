"""Reading finished (or partial) runs back: the one loader every report and comparison uses.

``load_run(path)`` gives a ``Run`` whose ``samples`` and ``scores`` are pandas DataFrames;
``load_runs(folder)`` reads every run folder below ``folder``. Columns are listed in
``SAMPLE_COLUMNS`` and ``SCORE_COLUMNS`` (documented in the README).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from r1eval.errors import RunFolderError
from r1eval.store.contracts import Manifest, TaskScore
from r1eval.store.files import utf8_safe
from r1eval.store.folder import MANIFEST, read_manifest, read_scores, run_folders
from r1eval.store.log import read_responses
from r1eval.store.logged import TOKEN_KINDS, LoggedCompletion, LoggedError, LoggedGrade
from r1eval.store.outcomes import sample_status
from r1eval.store.snapshot import load_state

SAMPLE_COLUMNS = [
    "run", "model", "task", "sample_id", "repeat", "key", "verdict", "correct", "extracted",
    "canonical", "method", "failure", "finish_reason", "gold", "prompt_tokens",
    "completion_tokens", "reasoning_tokens", "latency_s", "option_order", "error", "metadata",
]
SCORE_COLUMNS = [
    "run", "model", "task", "pass@1", "ci_low", "ci_high", "ci_method", "n_questions",
    "n_questions_planned", "samples_per_question", "n_samples", "n_errors", "n_not_attempted",
    "complete", "truncated_rate", "no_answer_rate", "accuracy_completed", "cons@k", "pass@k",
    "n_questions_short_of_k",
    "prompt_tokens", "completion_tokens", "reasoning_tokens", "cost_usd",
]


@dataclass(frozen=True)
class Run:
    """One run folder: its manifest (config and provenance), samples and scores (a frame, and
    each task's ``TaskScore`` as scores.json holds it)."""

    path: Path
    manifest: Manifest
    samples: pd.DataFrame
    scores: pd.DataFrame
    task_scores: dict[str, TaskScore] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def model(self) -> str:
        return self.manifest.model

    @property
    def created(self) -> str | None:
        return self.manifest.created


@dataclass(frozen=True)
class RunSet:
    """Several runs, with their samples and scores concatenated (column ``run`` tells apart)."""

    runs: list[Run]
    samples: pd.DataFrame
    scores: pd.DataFrame


def load_run(path: str | Path, with_text: bool = False, samples: bool = True) -> Run:
    """Read one run folder. ``with_text`` adds the ``text`` and ``reasoning`` columns;
    ``samples=False`` leaves the samples frame empty and the sample log unread (scores and
    manifest only: a leaderboard of many large runs)."""
    path = Path(path)
    manifest = read_manifest(path)
    if manifest is None:
        raise RunFolderError(f"{path} is not a run folder (no {MANIFEST})")
    model = manifest.model
    tasks = read_scores(path).tasks
    scores = _scores_frame(path.name, model, tasks)
    if not samples:
        return Run(path, manifest, pd.DataFrame(columns=SAMPLE_COLUMNS), scores, tasks)
    return Run(path, manifest, _samples_frame(path, model, with_text), scores, tasks)


def load_runs(folder: str | Path, with_text: bool = False, samples: bool = True) -> RunSet:
    """Every run folder at or below ``folder`` (sorted by path); options as ``load_run``."""
    folder = Path(folder)
    runs = [load_run(p, with_text, samples) for p in run_folders(folder)]
    return RunSet(
        runs=runs,
        samples=_concat((r.samples for r in runs), SAMPLE_COLUMNS),
        scores=_concat((r.scores for r in runs), SCORE_COLUMNS),
    )


def _concat(frames: Iterable[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _sample_row(
    run: str, model: str, completion: LoggedCompletion, grade: LoggedGrade | None,
) -> dict[str, Any]:
    """One response's row (its completion, as the log state keeps it, and its grade)."""
    tokens = completion.usage.per_sample()
    row = {
        **_item_columns(run, model, completion),
        "verdict": sample_status(grade, completion),
        **_grade_columns(grade),
        "finish_reason": completion.finish_reason, "gold": completion.gold,
        **{f"{kind}_tokens": tokens.get(kind) for kind in TOKEN_KINDS},
        "latency_s": completion.latency_s,
        "option_order": completion.option_order,
        "error": None,
    }
    return {name: utf8_safe(value) if isinstance(value, str) else value
            for name, value in row.items()}


def _error_row(run: str, model: str, error: LoggedError) -> dict[str, Any]:
    """A failed request's row: no response, so no grade or usage."""
    row = {**dict.fromkeys(SAMPLE_COLUMNS), **_item_columns(run, model, error),
           "verdict": sample_status(None, None), "error": error.message}
    return {name: utf8_safe(value) if isinstance(value, str) else value
            for name, value in row.items()}


def _grade_columns(grade: LoggedGrade | None) -> dict[str, Any]:
    if grade is None:
        return dict.fromkeys(("correct", "extracted", "canonical", "method", "failure"))
    return {"correct": grade.correct, "extracted": grade.extracted,
            "canonical": grade.canonical, "method": grade.method, "failure": grade.failure}


def _item_columns(
    run: str, model: str, record: LoggedCompletion | LoggedError
) -> dict[str, Any]:
    return {"run": run, "model": model, "task": record.task, "sample_id": record.sample_id,
            "repeat": record.repeat, "key": record.key, "metadata": record.sample_metadata}


def _samples_frame(path: Path, model: str, with_text: bool) -> pd.DataFrame:
    state = load_state(path)
    grades = state.grades
    rows = [_sample_row(path.name, model, c, grades.get(k))
            for k, c in state.completions.items()]
    rows += [_error_row(path.name, model, e) for e in state.errors.values()]
    frame = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    if with_text:
        responses = read_responses(path, set(state.completions))
        for field in ("text", "reasoning"):
            texts = (getattr(responses[key], field) if key in responses else None
                     for key in frame["key"])
            frame[field] = [None if text is None else utf8_safe(text) for text in texts]
    return frame.sort_values(["task", "sample_id", "repeat"], kind="stable", ignore_index=True)


def _scores_frame(run: str, model: str, tasks: dict[str, TaskScore]) -> pd.DataFrame:
    rows = [
        {"run": run, "model": model, "task": task, "pass@1": s.pass1, "ci_low": s.ci_low,
         "ci_high": s.ci_high, "ci_method": s.ci_method, "n_questions": s.n_questions,
         "n_questions_planned": s.n_questions_planned,
         "samples_per_question": s.samples_per_question, "n_samples": s.n_samples,
         "n_errors": s.n_errors, "n_not_attempted": s.n_not_attempted, "complete": s.complete,
         "truncated_rate": s.truncated_rate, "no_answer_rate": s.no_answer_rate,
         "accuracy_completed": s.accuracy_completed, "cons@k": s.at_k("cons"),
         "pass@k": s.at_k("pass"), "n_questions_short_of_k": s.n_questions_short_of_k,
         **{f"{name}_tokens": s.tokens.get(name) for name in ("prompt", "completion", "reasoning")},
         "cost_usd": s.cost_usd}
        for task, s in tasks.items()
    ]
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)
