"""``r1eval power``: how many samples per question a regression test needs.

Plans the paired comparison of ``r1eval regress`` (or, with ``--figure-samples``, the
same-question test of ``r1eval compare``) from zero, one or two runs; how the variance is
estimated is ``r1eval.scoring.design``'s. The number of questions is the benchmark's, fixed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from r1eval.commands.shared import BAD_INPUT, epilog
from r1eval.errors import UsageError
from r1eval.percent import percent_text
from r1eval.scoring.design import Assumptions, estimate_design, run_samples_per_question
from r1eval.scoring.power import Design, detectable_difference, questions_needed, samples_needed
from r1eval.store.loading import load_run
from r1eval.table import markdown_table
from r1eval.task.registry import resolve

SHOWN_SAMPLES = (1, 2, 4, 8, 16, 32, 64)


EPILOG = epilog("r1eval power --task aime24 --delta 10 --from results/base",
                "0 the table is printed", BAD_INPUT)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="task name (see r1eval tasks)")
    parser.add_argument("--delta", required=True, type=float, metavar="POINTS",
                        help="the drop to detect, in percentage points of pass@1")
    parser.add_argument("--samples", type=int, metavar="K",
                        help="samples per question to report the smallest detectable drop for "
                        "(default: the run's, else the task's R1 protocol count)")
    parser.add_argument("--from", dest="runs", type=Path, action="append", metavar="RUN",
                        help="a run of the task to take the per-question variance from; give "
                        "it twice (base, then candidate) to use their paired differences")
    parser.add_argument("--correlation", type=float, default=0.9,
                        help="assumed correlation of the two models' per-question rates when "
                        "not measured from two runs (default 0.9)")
    parser.add_argument("--score", type=float, default=0.5,
                        help="assumed pass@1 (0-1) when no run is given (default 0.5, the "
                        "largest variance)")
    parser.add_argument("--between-share", dest="between_share", type=float, default=0.5,
                        help="assumed share of the variance between questions when no run, "
                        "or a run with one sample per question, is given (default 0.5)")
    parser.add_argument("--figure-samples", dest="figure_samples", type=int, metavar="K",
                        help="plan r1eval compare instead: telling a published figure, measured "
                        "with K samples per question on the same questions, from the run's "
                        "score (a gap of --delta points)")
    parser.add_argument("--alpha", type=float, default=0.05, help="two-sided level (0.05)")
    parser.add_argument("--power", type=float, default=0.8, help="power wanted (default 0.8)")
    parser.add_argument("--task-dir", dest="task_dir", type=Path, help="extra task files")


def _assumptions(args: argparse.Namespace) -> Assumptions:
    return Assumptions(args.correlation, args.score, args.between_share)


def _check(args: argparse.Namespace) -> None:
    checks = [
        (args.delta > 0 and args.delta < 100, "--delta must be between 0 and 100 points"),
        (args.samples is None or args.samples >= 1, "--samples must be at least 1"),
        (args.figure_samples is None or args.figure_samples >= 1,
         "--figure-samples must be at least 1"),
        (0 <= args.correlation <= 1, "--correlation must be between 0 and 1"),
        (0 <= args.score <= 1, "--score must be between 0 and 1"),
        (0 <= args.between_share <= 1, "--between-share must be between 0 and 1"),
        (0 < args.alpha < 1 and 0 < args.power < 1, "--alpha and --power must be in (0, 1)"),
        (len(args.runs or []) <= 2, "--from takes one run, or two (base and candidate)"),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)


def _needed_line(design: Design, delta: float, n: int, args: argparse.Namespace) -> str:
    needed = samples_needed(design, delta, n, args.alpha, args.power)
    figure = args.figure_samples is not None
    if needed is not None:
        return f"samples per question needed ({'in the run' if figure else 'in each run'}): " \
               f"**{needed}**"
    floor = detectable_difference(Design(design.between, 0.0, normal=design.normal), n, 1,
                                  args.alpha, args.power)
    hides = ("the figure's own sampling" if figure
             else "the spread of the per-question differences")
    return (f"samples per question needed: **none suffices**: with {n} questions {hides} "
            f"alone hides a gap of {args.delta:g} points; even unlimited samples detect only "
            f"gaps of {percent_text(floor)} points or more")


def main(args: argparse.Namespace) -> int:
    _check(args)
    task = resolve([args.task], args.task_dir)[0]
    runs = [load_run(path) for path in args.runs or []]
    design = estimate_design(runs, args.task, _assumptions(args), args.figure_samples)
    delta, n = args.delta / 100.0, task.size
    # K for the smallest detectable drop: --samples, else the (first) run's, else the protocol's
    k = args.samples or (run_samples_per_question(runs[0], args.task) if runs
                         else task.r1_samples)
    rows = [
        [samples, percent_text(detectable_difference(design, n, samples, args.alpha, args.power)),
         questions_needed(design, delta, samples, args.alpha, args.power)]
        for samples in sorted({*SHOWN_SAMPLES, k})
    ]
    mde = detectable_difference(design, n, k, args.alpha, args.power)
    test = ("paired comparison (r1eval regress)" if args.figure_samples is None else
            f"same questions as a figure measured with K={args.figure_samples} (r1eval compare)")
    print("\n".join([
        f"## r1eval power: {task.name}, a drop of {args.delta:g} points",
        "",
        f"{n} questions (the whole benchmark; its size is fixed), two-sided alpha "
        f"{args.alpha:g}, power {args.power:.0%}, {test}",
        f"per-question variance of the difference: {design.between:.4g} "
        f"{'between questions' if args.figure_samples is None else 'from the figure'} + "
        f"{design.within:.4g} / K ({design.note})",
        "",
        _needed_line(design, delta, n, args),
        f"smallest detectable drop at K = {k}: **{percent_text(mde)} points**",
        "",
        markdown_table(["K", "smallest detectable drop (points)",
                        f"questions needed for {args.delta:g} points"], rows),
    ]))
    return 0
