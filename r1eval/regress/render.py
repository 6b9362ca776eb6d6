"""The regression comparison as text: the markdown that ``r1eval regress`` prints and the
phrases the report and JUnit reuse (points, intervals, p-values, the gate line)."""

from __future__ import annotations

from r1eval.percent import percent_text
from r1eval.regress.paired import REGRESSION, Comparison, Settings, TaskComparison
from r1eval.scoring import stats
from r1eval.table import markdown_table


def points(value: float) -> str:
    """A difference in percentage points, signed."""
    return percent_text(value, signed=True)


def interval_points(interval: stats.Interval) -> str:
    return f"{points(interval.low)} to {points(interval.high)}"


def p_text(p_value: float) -> str:
    return "<0.0001" if p_value < 1e-4 else f"{p_value:.3g}"


def p_clause(p_value: float) -> str:
    """``p = 0.00195``, or ``p < 0.0001``."""
    return "p < 0.0001" if p_value < 1e-4 else f"p = {p_value:.3g}"


def _cell(text: str | None, limit: int = 40) -> str:
    """Text safe inside a markdown table cell: one line, no bare pipe, not too long."""
    if text is None:
        return "(none)"
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def gate_text(t: TaskComparison, settings: Settings) -> str:
    if t.gate_failed:
        return "FAIL"
    if t.verdict == REGRESSION:
        return f"pass (within {percent_text(settings.max_drop)})"
    return "pass"


def summary(t: TaskComparison, settings: Settings) -> str:
    """One sentence on a task: the difference, its interval, the test and the verdict."""
    ci = f"{settings.confidence:.0%} CI {interval_points(t.interval)}"
    return (f"{t.task}: {points(t.difference)} points ({ci}; {t.test} {p_clause(t.p_value)}) "
            f"over {t.n_questions} questions: {t.verdict}")


def _main_table(c: Comparison) -> str:
    header = ["task", "questions", "K base/cand", "base %", "candidate %", "Δ points",
              f"{c.settings.confidence:.0%} CI", "p", "test", "verdict", "gate"]
    forced = f"FORCED: {'; '.join(c.forced)}" if c.forced else None
    rows = [
        [t.task, t.n_questions, f"{t.samples[0]}/{t.samples[1]}", percent_text(t.base_pass1),
         percent_text(t.candidate_pass1), points(t.difference), interval_points(t.interval),
         p_text(t.p_value), t.test, t.verdict, gate_text(t, c.settings),
         *([_cell(forced, 200)] if forced else [])]
        for t in c.tasks
    ]
    return markdown_table(header + (["protocol"] if forced else []), rows)


def _gate_line(c: Comparison) -> str:
    tolerance = f"{percent_text(c.settings.max_drop)}-point tolerance"
    failed = [t for t in c.tasks if t.gate_failed]
    if not failed:
        return f"**Gate: passed**: no task shows a significant drop beyond the {tolerance}."
    named = "; ".join(f"{t.task} {points(t.difference)} ({p_clause(t.p_value)})" for t in failed)
    return f"**Gate: FAILED**: significant drop beyond the {tolerance}: {named}."


def _context_lines(c: Comparison) -> list[str]:
    lines = [f"- FORCED despite protocol differences: {'; '.join(c.forced)}"] if c.forced else []
    lines += [f"- Not compared: {task} ({why})" for task, why in c.skipped.items()]
    for t in c.tasks:
        left = sum(t.left_out.values())
        reasons = ", ".join(f"{n} {why}" for why, n in t.left_out.items())
        lines.append(f"- {t.task}: {t.n_questions} questions compared, {left} left out"
                     + (f" ({reasons})" if left else ""))
        if t.over_questions is not None:
            paired = t.over_questions.high - t.over_questions.low
            unpaired = t.unpaired.high - t.unpaired.low
            lines.append(
                f"- {t.task}: the interval above is on these questions; over questions (another "
                f"sample of them) the paired interval is {interval_points(t.over_questions)} "
                f"({percent_text(paired)} points wide); as two independent runs it would be "
                f"{percent_text(unpaired)} wide")
    lines += [f"- Note: {note}" for note in c.notes]
    return lines


def _flip_section(t: TaskComparison, max_flips: int) -> list[str]:
    lines = [f"### {t.task}: questions that flipped",
             f"{len(t.lost)} lost (right in the base run, wrong in the candidate), "
             f"{len(t.gained)} gained; right = more than half of a question's samples correct."]
    for label, flips in (("lost", t.lost), ("gained", t.gained)):
        shown = flips[:max_flips]
        if not shown:
            continue
        rows = [[label, _cell(f.id, 60), _cell(f.base_answer), _cell(f.candidate_answer),
                 percent_text(f.base_pass1, digits=0), percent_text(f.candidate_pass1, digits=0)]
                for f in shown]
        header = ["", "question", "base answer", "candidate answer", "base pass@1 %",
                  "candidate pass@1 %"]
        lines += ["", markdown_table(header, rows)]
        if len(flips) > len(shown):
            lines.append(f"... and {len(flips) - len(shown)} more {label} (--max-flips)")
    return lines


def _group_section(t: TaskComparison, settings: Settings) -> list[str]:
    lines = []
    for key in dict.fromkeys(g.key for g in t.groups):
        rows = [[_cell(g.value, 60), g.n_questions, percent_text(g.base_pass1),
                 percent_text(g.candidate_pass1), points(g.difference),
                 interval_points(g.interval), g.lost, g.gained]
                for g in t.groups if g.key == key]
        header = [key, "questions", "base %", "candidate %", "Δ points",
                  f"{settings.confidence:.0%} CI", "lost", "gained"]
        lines += [f"### {t.task} by {key}", "Intervals per group are not corrected for "
                  "comparing many groups; the verdict is the task's.", "",
                  markdown_table(header, rows), ""]
    return lines


def render_markdown(c: Comparison, max_flips: int = 50) -> str:
    """The report: the table, the gate, what was left out, the flips, the breakdowns."""
    lines = [
        f"## r1eval regress: {c.candidate.model} vs {c.base.model}",
        "",
        f"base `{c.base.name}` ({c.base.model}), candidate `{c.candidate.name}` "
        f"({c.candidate.model}); alpha {c.settings.alpha:g}, tolerated drop "
        f"{percent_text(c.settings.max_drop)} points",
        "",
        _main_table(c),
        "",
        _gate_line(c),
        "",
        *_context_lines(c),
    ]
    for t in c.tasks:
        lines += ["", *_flip_section(t, max_flips), "", *_group_section(t, c.settings)]
    return "\n".join(lines).rstrip() + "\n"
