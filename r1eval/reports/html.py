"""A self-contained HTML report of one run (or of two, side by side): an overview per task,
a grid of questions, response lengths, and every sample, browsable and filterable.

Everything (data, styles, script, MathJax) is inside the one file, so it opens with no
network. What the views show is computed in ``r1eval.reports.views``; the data travel as JSON
and the page draws only what is on screen (a page of samples, one task's questions), so a
100,000-sample run stays responsive. Text is always inserted with ``textContent``, never as
HTML; MathJax typesets it in place.

Question texts come from the task's data when it can be read; tasks whose authors ask that
their questions never appear in plain text (GPQA: ``Task.private_text``) are left out unless
``include_private_text``.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from r1eval.claims.check import check_reproduction
from r1eval.claims.published import load_reported
from r1eval.errors import DataError, UsageError
from r1eval.grading.final_answer import (
    DEFAULT_FORMATS,
    TraceFormat,
    run_trace_formats,
    split_response,
)
from r1eval.regress.paired import Comparison
from r1eval.reports.mathjax import mathjax_script
from r1eval.reports.views import lengths, overview, question_table, regression
from r1eval.store.contracts import DataSource
from r1eval.store.loading import Run
from r1eval.task.data import load_task
from r1eval.task.multiple_choice import question_as_shown
from r1eval.task.registry import available_tasks
from r1eval.types import Completion, Sample

_TEMPLATE = Path(__file__).with_name("report_template.html")
_PLACEHOLDER = re.compile(r"\{\{(TITLE|DATA|MATHJAX)\}\}")
SAMPLE_FIELDS = ["task", "id", "repeat", "verdict", "extracted", "gold", "method", "finish",
                 "tokens", "reasoningTokens", "question", "reasoning", "answer", "note"]


def question_texts(
    run: Run, data_dir: Path | None, include_private: bool, task_dir: Path | None = None
) -> dict[str, Any]:
    """``{task: {sample_id: Sample}}`` for the tasks whose data can be read, and notes."""
    texts: dict[str, dict[str, Sample]] = {}
    notes: list[str] = []
    known = available_tasks(task_dir)
    for name, entry in run.manifest.tasks.items():
        task = known.get(name)
        if task is None:
            notes.append(f"{name}: task not installed, questions not shown")
            continue
        if task.private_text and not include_private:
            notes.append(f"{name}: question text left out at its authors' request "
                         "(--include-gpqa-text to include it)")
            continue
        folder = data_dir or _recorded_data_dir(entry.source, task.local.path)
        try:
            loaded = load_task(task, folder)
        except DataError as error:
            notes.append(f"{name}: questions not shown ({error}); give report --data-dir DIR")
            continue
        texts[name] = {s.id: s for s in loaded.samples}
    return {"texts": texts, "notes": notes}


def _recorded_data_dir(source: DataSource, relative: str) -> Path | None:
    """The local data folder a run read, from the location it recorded."""
    if source.kind != "local" or not source.location:
        return None
    path = Path(source.location)
    for _ in Path(relative).parts:
        path = path.parent
    return path


def _sample_rows(run: Run, texts: dict[str, dict[str, Sample]]) -> list[list[Any]]:
    """One row per sample. ``question`` is set only where this repeat showed the options in
    an order of its own (GPQA shuffles them); otherwise the page shows the question table's."""
    rows = []
    try:
        formats = run_trace_formats(run.manifest.config.reasoning_delimiters)
    except ValueError:  # a run.json edited by hand: show the default split
        formats = DEFAULT_FORMATS
    for s in run.samples.to_dict("records"):
        sample = texts.get(s["task"], {}).get(s["sample_id"])
        order = s["option_order"] if isinstance(s["option_order"], list) else None
        question = None if sample is None or order is None else question_as_shown(sample, order)
        reasoning, answer = _split(s["text"], s["reasoning"], s["finish_reason"], formats)
        note = s["error"] if s["verdict"] == "error" else (s["failure"] or "")
        rows.append([_missing_as_none(value) for value in (
            s["task"], s["sample_id"], int(s["repeat"]), s["verdict"], s["extracted"],
            s["gold"], s["method"], s["finish_reason"], _count(s["completion_tokens"]),
            _count(s["reasoning_tokens"]), question, reasoning, answer, note,
        )])
    return rows


def _count(tokens: Any) -> int | None:
    return None if tokens is None or pd.isna(tokens) else round(tokens)


def _missing_as_none(value: Any) -> Any:
    """pandas marks missing values as NaN, which is not JSON: make them null."""
    return None if isinstance(value, float) and math.isnan(value) else value


def _split(
    text: Any, reasoning: Any, finish_reason: Any, formats: tuple[TraceFormat, ...]
) -> tuple[str, str]:
    if not isinstance(text, str):
        return "", ""
    final = split_response(Completion(text=text, reasoning=reasoning if isinstance(
        reasoning, str) else None, finish_reason=finish_reason), formats)
    return final.reasoning or "", final.answer or ""


def _token_limit(run: Run) -> int | None:
    limit = run.manifest.identity.sampling.max_tokens
    return int(limit) if isinstance(limit, int | float) else None


def render(
    run: Run, data_dir: Path | None = None, include_private_text: bool = False, *,
    reported_as: str | None = None, margin: float = 0.05, comparison: Comparison | None = None,
    task_dir: Path | None = None, claims: Sequence[Path] = (),
    questions: dict[str, Any] | None = None,
) -> str:
    """The report page of ``run`` (loaded with ``with_text=True``). ``reported_as`` names the
    model in the registry of reported figures (default: the run's model name); ``comparison``
    (``r1eval.regress.paired.paired_regression``, ``run`` the candidate) adds the regression view;
    ``task_dir`` is a folder of extra task files, as ``r1eval run --task-dir``; ``claims``
    are TOML files of reported figures beside the registry's, as ``r1eval compare --claims``;
    ``questions``: ``question_texts``'s answer when the caller already has it."""
    if "text" not in run.samples.columns:
        raise UsageError("the report needs the response texts: load the run with with_text=True")
    if questions is None:
        questions = question_texts(run, data_dir, include_private_text, task_dir)
    known = available_tasks(task_dir)
    rows = check_reproduction([run], load_reported(claims), known, margin, [reported_as])
    table = question_table(run, {name: task.breakdown for name, task in known.items()})
    for question in table:  # the options lettered in the data's own order
        sample = questions["texts"].get(question["task"], {}).get(question["id"])
        question["text"] = None if sample is None else question_as_shown(sample)
    limit = _token_limit(run)
    mathjax = mathjax_script()
    payload = {
        "run": run.name,
        "model": run.model,
        "tokenLimit": limit,
        "overview": overview(run, rows),
        "questions": table,
        "lengths": [lengths(run, task, limit) for task in sorted(run.samples["task"].unique())],
        "fields": SAMPLE_FIELDS,
        "samples": _sample_rows(run, questions["texts"]),
        "regression": regression(comparison) if comparison is not None else None,
        "mathjax": mathjax is not None,
        "notes": questions["notes"] + ([] if mathjax else [
            "math shown as source: install django-static-mathjax to typeset it"]),
    }
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str,
                      allow_nan=False)
    # "<" appears in JSON only inside strings, where \u003c reads the same: the data can then
    # neither close its script element nor open a comment in it.
    data = data.replace("<", "\\u003c")
    parts = {"TITLE": html.escape(f"r1eval report: {run.model} ({run.name})"), "DATA": data,
             "MATHJAX": mathjax or ""}
    # One pass, so no part is searched for another's placeholder.
    return _PLACEHOLDER.sub(lambda m: parts[m.group(1)], _TEMPLATE.read_text(encoding="utf-8"))
