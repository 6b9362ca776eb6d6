"""``r1eval regrade``: re-score a run's stored responses with the current graders."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from r1eval.commands.shared import BAD_INPUT, epilog
from r1eval.percent import percent_text
from r1eval.run.regrade import Regraded, RegradeResult, regrade_run
from r1eval.run.second_opinion import Disagreement, audit
from r1eval.table import markdown_table

MATH_VERIFY_GRADER = "r1eval.grading.math_answers.grade_math"
_SHOWN_CHARS = 40


EPILOG = epilog("r1eval regrade results/base --dry-run",
                "0 regraded (or, with --dry-run, the changes shown)", BAD_INPUT)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, metavar="RUN", help="the run folder")
    parser.add_argument("--task-dir", dest="task_dir", type=Path,
                        help="folder of task files (default: the run's own --task-dir)")
    parser.add_argument("--grader-workers", dest="grader_workers", type=int,
                        help="grading processes (default: one per core)")
    parser.add_argument("--grade-timeout", dest="grade_timeout", type=float, default=30.0,
                        help="seconds allowed to grade one response (default 30)")
    parser.add_argument("--dry-run", dest="dry_run", action="store_true",
                        help="show what would change; write nothing")
    parser.add_argument("--audit", action="store_true",
                        help="list the responses where math-verify and an independent string/"
                        "numeric check of the extracted answer disagree")
    parser.add_argument("--show", type=int, default=20, metavar="N",
                        help="list up to N responses whose verdict changed (default 20)")


def main(args: argparse.Namespace) -> int:
    result = regrade_run(args.run, args.task_dir, args.grader_workers, args.grade_timeout,
                         args.dry_run)
    print(summary_table(result))
    changed = result.changed()
    if changed and args.show > 0:
        print(f"\nverdicts changed ({min(len(changed), args.show)} of {len(changed)} shown):")
        print(changes_table(changed[: args.show]))
    if args.audit:
        math_tasks = [t for t, grader in result.graders.items() if grader == MATH_VERIFY_GRADER]
        found = audit(result.regraded, math_tasks)
        print(f"\naudit: {len(found)} responses where math-verify and the independent check "
              f"disagree ({', '.join(math_tasks) or 'no task graded by math-verify'}):")
        if found:
            print(audit_table(found))
    where = "nothing written (--dry-run)" if not result.written else \
        "new grades appended to the log, scores.json rewritten"
    print(f"r1eval: {len(changed)} verdicts changed; {where}", file=sys.stderr)
    return 0


def summary_table(result: RegradeResult) -> str:
    header = ["task", "responses", "verdicts changed", "wrong -> right", "right -> wrong",
              "pass@1 % before", "pass@1 % after"]
    rows = []
    for task, score in result.scores.tasks.items():
        regraded = [r for r in result.regraded if r.task == task]
        changed = result.changed(task)
        rows.append([
            task, len(regraded), len(changed),
            sum(r.status_after == "right" for r in changed),
            sum(r.status_before == "right" for r in changed),
            percent_text(result.pass1_before.get(task)), percent_text(score.pass1),
        ])
    return markdown_table(header, rows)


def _short(text: str | None) -> str:
    if text is None:
        return "-"
    text = " ".join(text.split())
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def changes_table(changed: list[Regraded]) -> str:
    header = ["task", "question", "repeat", "before", "after", "extracted before",
              "extracted after"]
    rows = [[r.task, r.sample_id, r.repeat, r.status_before, r.status_after,
             _short(r.before.extracted if r.before else None), _short(r.after.extracted)]
            for r in changed]
    return markdown_table(header, rows)


def audit_table(found: list[Disagreement]) -> str:
    header = ["task", "question", "repeat", "extracted", "gold", "math-verify", "check", "by"]
    rows = [[d.task, d.sample_id, d.repeat, _short(d.extracted), _short(d.gold),
             "right" if d.math_verify else "wrong", "equal" if d.check else "differs",
             d.compared] for d in found]
    return markdown_table(header, rows)
