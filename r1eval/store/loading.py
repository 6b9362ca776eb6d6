"""Reading finished (or partial) runs back: the one loader every report and comparison uses.

``load_run(path)`` gives a ``Run`` whose ``samples`` and ``scores`` are pandas DataFrames;
``load_runs(folder)`` reads every run folder below ``folder``. Columns are listed in
``SAMPLE_COLUMNS`` and ``SCORE_COLUMNS`` (documented in the README).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from r1eval.errors import RunFolderError
from r1eval.store.folder import (
    MANIFEST,
    SCORES,
    load_state,
    manifest_model,
    read_completions,
    read_manifest,
    run_folders,
    utf8_safe,
)
from r1eval.store.outcomes import sample_status
from r1eval.store.records import sample_tokens

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
    """One run folder: its manifest (config and provenance), samples and scores."""

    path: Path
    manifest: dict[str, Any]
    samples: pd.DataFrame
    scores: pd.DataFrame

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def model(self) -> str:
        return manifest_model(self.manifest)

    @property
    def created(self) -> str | None:
        created = self.manifest.get("created")
        return str(created) if created is not None else None


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
    try:
        scores_json = json.loads((path / SCORES).read_text(encoding="utf-8")) \
            if (path / SCORES).exists() else {"tasks": {}}
    except json.JSONDecodeError as error:
        raise RunFolderError(f"{path}: unreadable run file ({error.msg})") from None
    model = manifest_model(manifest)
    scores = _scores_frame(path.name, model, scores_json.get("tasks", {}))
    if not samples:
        return Run(path, manifest, pd.DataFrame(columns=SAMPLE_COLUMNS), scores)
    return Run(path, manifest, _samples_frame(path, model, with_text), scores)


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
    run: str, model: str, record: dict[str, Any], grade: dict[str, Any] | None,
    completion: dict[str, Any] | None,
) -> dict[str, Any]:
    usage = (completion or {}).get("usage") or {}
    grade = grade or {}
    row = {
        "run": run, "model": model, "task": record["task"], "sample_id": record["sample_id"],
        "repeat": record["repeat"], "key": record["key"],
        "verdict": sample_status(grade or None, completion),
        "correct": grade.get("correct"), "extracted": grade.get("extracted"),
        "canonical": grade.get("canonical"), "method": grade.get("method"),
        "failure": grade.get("failure"),
        "finish_reason": (completion or {}).get("finish_reason"),
        "gold": (completion or {}).get("gold"),
        "prompt_tokens": sample_tokens(usage, "prompt"),
        "completion_tokens": sample_tokens(usage, "completion"),
        "reasoning_tokens": sample_tokens(usage, "reasoning"),
        "latency_s": (completion or {}).get("latency_s"),
        "option_order": ((completion or {}).get("prompt_metadata") or {}).get("option_order"),
        "error": record.get("message") if completion is None else None,
        "metadata": record.get("sample_metadata") or {},
    }
    return {name: utf8_safe(value) if isinstance(value, str) else value
            for name, value in row.items()}


def _samples_frame(path: Path, model: str, with_text: bool) -> pd.DataFrame:
    state = load_state(path)
    rows = [
        _sample_row(path.name, model, c, state.grades.get(k), c)
        for k, c in state.completions.items()
    ]
    rows += [_sample_row(path.name, model, e, None, None) for e in state.errors.values()]
    frame = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    if with_text:
        full = read_completions(path, set(state.completions))
        for field in ("text", "reasoning"):
            texts = (full.get(key, {}).get(field) for key in frame["key"])
            frame[field] = [None if text is None else utf8_safe(text) for text in texts]
    return frame.sort_values(["task", "sample_id", "repeat"], kind="stable", ignore_index=True)


def _scores_frame(run: str, model: str, tasks: dict[str, dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for task, s in tasks.items():
        k = s.get("samples_per_question")
        row = {c: s.get(c) for c in SCORE_COLUMNS}
        row.update({
            "run": run, "model": model, "task": task,
            "cons@k": s.get(f"cons@{k}"), "pass@k": s.get(f"pass@{k}"),
            **{f"{n}_tokens": (s.get("tokens") or {}).get(n)
               for n in ("prompt", "completion", "reasoning")},
        })
        rows.append(row)
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)
