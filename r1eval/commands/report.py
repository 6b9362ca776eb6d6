"""``r1eval report``: a self-contained HTML page of one run, or of two side by side."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from r1eval.commands.shared import BAD_INPUT, epilog
from r1eval.errors import UsageError
from r1eval.regress.paired import Settings, paired_regression
from r1eval.reports.html import question_texts, render
from r1eval.store.loading import load_run
from r1eval.task.registry import available_tasks

EPILOG = epilog("r1eval report results/base -o base.html",
                "0 the page is written (the terminal says when question text is missing)",
                BAD_INPUT)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", type=Path, nargs="+", metavar="RUN",
                        help="a run folder; or two, BASE CANDIDATE, for the regression view")
    parser.add_argument("-o", "--output", type=Path,
                        help="HTML file to write (default: RUN/report.html; with two runs, "
                        "CANDIDATE/report-vs-BASE.html)")
    parser.add_argument("--data-dir", dest="data_dir", type=Path,
                        help="where to read question texts (default: where the run read them)")
    parser.add_argument("--include-gpqa-text", dest="include_private", action="store_true",
                        help="include GPQA question text (its authors ask that it never be "
                        "published in plain text)")
    parser.add_argument("--task-dir", dest="task_dir", type=Path,
                        help="a folder of extra task files (as given to r1eval run)")
    parser.add_argument("--claims", action="append", type=Path, default=[], metavar="FILE",
                        help="a TOML file of reported scores of your own (repeatable), as "
                        "r1eval compare")
    parser.add_argument("--as", dest="as_name", metavar="NAME",
                        help="the registry's name for the model, for its reported figures")
    parser.add_argument("--margin", type=float, default=5.0, metavar="POINTS",
                        help="differences up to this many points do not matter for the "
                        "reported figures' verdicts (default 5, as r1eval compare)")
    parser.add_argument("--max-drop", dest="max_drop", type=float, default=0.0, metavar="POINTS",
                        help="two runs: tolerated drop in pass@1 for the gate (default 0)")
    parser.add_argument("--force", action="store_true",
                        help="two runs: compare even if their protocols differ")


def main(args: argparse.Namespace) -> int:
    if len(args.runs) > 2:
        raise UsageError(f"RUN: give one run folder, or two (BASE CANDIDATE); got "
                         f"{len(args.runs)}")
    if not 0 < args.margin < 100:
        raise UsageError("--margin must be between 0 and 100 percentage points")
    comparison = None
    run = load_run(args.runs[-1], with_text=True)
    if len(args.runs) == 2:
        settings = Settings(max_drop=args.max_drop / 100.0, force=args.force)
        breakdown = {name: task.breakdown
                     for name, task in available_tasks(args.task_dir).items()}
        comparison = paired_regression(load_run(args.runs[0]), run, settings, None, breakdown)
    questions = question_texts(run, args.data_dir, args.include_private, args.task_dir)
    for note in questions["notes"]:  # also in the page; said here so that it is not missed
        print(f"r1eval: {note}", file=sys.stderr)
    page = render(run, args.data_dir, args.include_private, reported_as=args.as_name,
                  margin=args.margin / 100, comparison=comparison, task_dir=args.task_dir,
                  claims=args.claims, questions=questions)
    output = args.output or args.runs[-1] / (
        f"report-vs-{args.runs[0].resolve().name}.html" if comparison else "report.html")
    partial = output.with_name(f".{output.name}.tmp")  # never a half-written report
    try:
        partial.write_text(page, encoding="utf-8")
        os.replace(partial, output)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise UsageError(f"-o/--output: cannot write {output}: {error.strerror}") from None
    print(f"wrote {output} ({len(run.samples)} samples)", file=sys.stderr)
    return 0
