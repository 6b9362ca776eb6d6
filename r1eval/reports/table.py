"""Plain-text tables for the terminal (markdown, so they paste into issues and CI summaries)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from r1eval.percent import percent_text
from r1eval.store.contracts import Scores


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in header]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def scores_table(scores: Scores) -> str:
    """The end-of-run table: score in % with its 95% interval, and what might distort it."""
    header = ["task", "pass@1 %", "95% CI", "questions", "K", "cons@K %", "truncated %",
              "no answer %", "errors"]
    rows = []
    for name, s in scores.tasks.items():
        k = s.samples_per_question
        rows.append([
            name,
            percent_text(s.pass1),
            f"{percent_text(s.ci_low)}-{percent_text(s.ci_high)}",
            f"{s.n_questions}/{s.n_questions_planned}",
            k,
            percent_text(s.at_k("cons")) if k is not None and k > 1 else "-",
            percent_text(s.truncated_rate),
            percent_text(s.no_answer_rate),
            s.n_errors,
        ])
    return markdown_table(header, rows)
