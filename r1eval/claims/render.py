"""The reproduction verdicts as text: markdown, JSON and CSV (what ``r1eval compare`` prints)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, fields
from typing import Any

from r1eval.claims.check import Row
from r1eval.percent import points_text
from r1eval.table import markdown_table

_HEADER = ["run", "model", "benchmark", "metric", "reported", "source", "measured",
           "95% CI same questions", "95% CI over questions", "diff", "verdict", "notes"]



def _span(low: float | None, high: float | None) -> str:
    return "-" if low is None else f"{points_text(low)}-{points_text(high)}"


def _cells(row: Row) -> list[str]:
    return [
        row.run, row.compared_as or row.model, row.benchmark, row.metric or "-",
        row.reported_shown, row.source or "-", points_text(row.measured_pct),
        _span(row.same_low_pct, row.same_high_pct), _span(row.ci_low_pct, row.ci_high_pct),
        points_text(row.difference_pts, signed=True), row.verdict, "; ".join(row.notes) or "-",
    ]


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.4f}"


def _preface(rows: Sequence[Row]) -> list[str]:
    lines = []
    for run, model, compared_as in dict.fromkeys((r.run, r.model, r.compared_as) for r in rows):
        if compared_as is None:
            lines.append(f"- {run}: no reported figures for {model}; use --as NAME")
        elif compared_as != model:
            lines.append(f"- {run}: model {model}, compared as {compared_as}")
        else:
            lines.append(f"- {run}: model {model}")
    return lines


def render_markdown(rows: Sequence[Row], margin: float) -> str:
    """The comparison table, with which run was compared as which model, and the rule."""
    legend = (
        f"Scores in %; diff = measured - reported, in points. Same questions: where the run's "
        f"score would fall again on these questions (sampling within questions only); the "
        f"verdict tests the difference on them, counting the figure's own sampling too. Over "
        f"questions: where the model's score on problems like these lies; the verdict's basis "
        f"only when the row says so (a subset, another question set, cons@K). reproduced: the "
        f"difference is shown to be within ±{100 * margin:g} points (--margin); below/above: "
        f"the run scored significantly lower/higher; inconclusive: neither can be told yet."
    )
    if any(r.cost_usd is not None for r in rows):
        header = [*_HEADER, "USD", "USD/point"]
        cells = [[*_cells(r), _money(r.cost_usd), _money(r.usd_per_point)] for r in rows]
        table = markdown_table(header, cells)
    else:
        table = markdown_table(_HEADER, [_cells(r) for r in rows])
    return "\n".join([*_preface(rows), "", table, "", legend])


def _record(row: Row) -> dict[str, Any]:
    record = asdict(row)
    record["notes"] = list(row.notes)
    return record


def render_json(rows: Sequence[Row], margin: float) -> str:
    payload = {"confidence": 0.95, "margin_points": 100 * margin,
               "rows": [_record(r) for r in rows]}
    return json.dumps(payload, indent=2, ensure_ascii=False)


def render_csv(rows: Sequence[Row]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[f.name for f in fields(Row)], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**asdict(row), "notes": "; ".join(row.notes)})
    return out.getvalue()
