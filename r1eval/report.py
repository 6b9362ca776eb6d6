"""A self-contained HTML report of one run: scores, and every sample, browsable and filterable.

Everything (data, styles, script) is inside the one file, so it opens with no network. The
samples travel as JSON and the page draws one page of rows at a time, so a 14,042-sample MMLU
run stays responsive. Text is always inserted with ``textContent``, never as HTML.

Question texts come from the task's data when it can be read; tasks whose authors ask that
their questions never appear in plain text (GPQA: ``Task.private_text``) are left out unless
``include_private_text``.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from r1eval.data import load_task
from r1eval.errors import DataError, UsageError
from r1eval.multiple_choice import question_as_shown
from r1eval.registry import available_tasks
from r1eval.response import DEFAULT_FORMATS, TraceFormat, run_trace_formats, split_response
from r1eval.runs import Run
from r1eval.table import percent
from r1eval.types import Completion, Sample

_TEMPLATE = Path(__file__).with_name("report_template.html")
SAMPLE_FIELDS = ["task", "id", "repeat", "verdict", "extracted", "gold", "method", "finish",
                 "tokens", "question", "reasoning", "answer", "note"]


def question_texts(run: Run, data_dir: Path | None, include_private: bool) -> dict[str, Any]:
    """``{task: {sample_id: Sample}}`` for the tasks whose data can be read, and notes."""
    texts: dict[str, dict[str, Sample]] = {}
    notes: list[str] = []
    known = available_tasks()
    for name, entry in run.manifest.get("tasks", {}).items():
        task = known.get(name)
        if task is None:
            notes.append(f"{name}: task not installed, questions not shown")
            continue
        if task.private_text and not include_private:
            notes.append(f"{name}: question text left out at its authors' request "
                         "(--include-gpqa-text to include it)")
            continue
        folder = data_dir or _recorded_data_dir(entry.get("source", {}), task.local.path)
        try:
            loaded = load_task(task, folder)
        except DataError as error:
            notes.append(f"{name}: questions not shown ({error})")
            continue
        texts[name] = {s.id: s for s in loaded.samples}
    return {"texts": texts, "notes": notes}


def _recorded_data_dir(source: dict[str, Any], relative: str) -> Path | None:
    """The local data folder a run read, from the location it recorded."""
    location = source.get("location")
    if source.get("kind") != "local" or not location:
        return None
    path = Path(location)
    for _ in Path(relative).parts:
        path = path.parent
    return path


def _sample_rows(run: Run, texts: dict[str, dict[str, Sample]]) -> list[list[Any]]:
    rows = []
    try:
        formats = run_trace_formats(run.manifest)
    except ValueError:  # a run.json edited by hand: show the default split
        formats = DEFAULT_FORMATS
    for s in run.samples.to_dict("records"):
        sample = texts.get(s["task"], {}).get(s["sample_id"])
        order = s["option_order"] if isinstance(s["option_order"], list) else None
        question = "" if sample is None else question_as_shown(sample, order)
        reasoning, answer = _split(s["text"], s["reasoning"], s["finish_reason"], formats)
        tokens = s["completion_tokens"]
        note = s["error"] if s["verdict"] == "error" else (s["failure"] or "")
        rows.append([_missing_as_none(value) for value in (
            s["task"], s["sample_id"], int(s["repeat"]), s["verdict"], s["extracted"],
            s["gold"], s["method"], s["finish_reason"],
            None if pd.isna(tokens) else round(tokens), question, reasoning, answer, note,
        )])
    return rows


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


def _score_rows(run: Run) -> list[list[Any]]:
    return [
        [s["task"], percent(s["pass@1"]), f"{percent(s['ci_low'])}-{percent(s['ci_high'])}",
         s["n_questions"], s["samples_per_question"], percent(s["truncated_rate"]),
         percent(s["no_answer_rate"]), s["n_errors"]]
        for s in run.scores.to_dict("records")
    ]


def render(run: Run, data_dir: Path | None = None, include_private_text: bool = False) -> str:
    """The report page of ``run`` (``run`` loaded with ``with_text=True``)."""
    if "text" not in run.samples.columns:
        raise UsageError("the report needs the response texts: load the run with with_text=True")
    questions = question_texts(run, data_dir, include_private_text)
    payload = {
        "run": run.name,
        "model": run.model,
        "scoreHeader": ["task", "pass@1 %", "95% CI", "questions", "K", "truncated %",
                        "no answer %", "errors"],
        "scores": _score_rows(run),
        "fields": SAMPLE_FIELDS,
        "samples": _sample_rows(run, questions["texts"]),
        "notes": questions["notes"],
    }
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str,
                      allow_nan=False)
    data = data.replace("</", "<\\/")  # never close the script element from inside the data
    template = _TEMPLATE.read_text(encoding="utf-8")
    title = html.escape(f"r1eval report: {run.model} ({run.name})")
    return template.replace("{{TITLE}}", title).replace("{{DATA}}", data)
