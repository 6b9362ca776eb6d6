"""``r1eval regress``: is the candidate run worse than the base run? A CI gate.

Exit codes: 0 no task shows a significant drop beyond ``--max-drop``; 1 at least one does;
2 bad input (a run folder, a flag, or runs whose protocols differ without ``--force``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from r1eval.commands.shared import BAD_INPUT, epilog
from r1eval.errors import UsageError
from r1eval.regress.junit import write_junit
from r1eval.regress.paired import Settings, paired_regression
from r1eval.regress.render import render_markdown
from r1eval.store.loading import load_run
from r1eval.task.registry import available_tasks

EPILOG = epilog(
    "r1eval regress --base results/base --candidate results/candidate --max-drop 2",
    "0 no task shows a significant drop beyond --max-drop",
    "1 at least one task does (the gate fails)",
    BAD_INPUT + "; also runs whose protocols differ, without --force",
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", required=True, type=Path, metavar="RUN",
                        help="run folder of the base model")
    parser.add_argument("--candidate", required=True, type=Path, metavar="RUN",
                        help="run folder of the candidate (e.g. the fine-tune)")
    parser.add_argument("--tasks", help="comma-separated tasks to compare (default: all shared)")
    parser.add_argument("--max-drop", dest="max_drop", type=float, default=0.0, metavar="POINTS",
                        help="tolerated drop in pass@1, in percentage points (default 0)")
    parser.add_argument("--alpha", type=float, default=0.05,
                        help="significance level; intervals are at 1 - alpha (default 0.05)")
    parser.add_argument("--force", action="store_true",
                        help="compare even if prompts, data or sampling differ (said on every row)")
    parser.add_argument("--junit", type=Path, metavar="FILE",
                        help="also write JUnit XML, one test case per task")
    parser.add_argument("--max-flips", dest="max_flips", type=int, default=50, metavar="N",
                        help="list at most N flipped questions each way per task (default 50)")


def main(args: argparse.Namespace) -> int:
    if args.max_flips < 0:
        raise UsageError(f"--max-flips must be >= 0, got {args.max_flips}")
    settings = Settings(alpha=args.alpha, max_drop=args.max_drop / 100.0, force=args.force)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    base, candidate = load_run(args.base), load_run(args.candidate)
    breakdown = {name: task.breakdown for name, task in available_tasks().items()}
    comparison = paired_regression(base, candidate, settings, tasks, breakdown)
    print(render_markdown(comparison, args.max_flips), end="")
    if args.junit is not None:
        try:
            write_junit(comparison, args.junit)
        except OSError as error:
            raise UsageError(f"cannot write {args.junit}: {error.strerror}") from None
    return 1 if comparison.failed else 0
