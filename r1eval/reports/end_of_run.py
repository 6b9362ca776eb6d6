"""The table printed at the end of ``r1eval run`` and ``r1eval grade``: one row per task."""

from __future__ import annotations

from r1eval.percent import percent_text
from r1eval.store.contracts import Scores
from r1eval.table import markdown_table


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
