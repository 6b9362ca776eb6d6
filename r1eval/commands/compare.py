"""``r1eval compare``: does a run confirm the reported score? A verdict per reported figure."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from r1eval.claims.check import check_reproduction
from r1eval.claims.published import Reported, benchmark_name, load_reported
from r1eval.claims.render import render_csv, render_json, render_markdown
from r1eval.commands.shared import BAD_INPUT, epilog
from r1eval.errors import UsageError
from r1eval.store.loading import Run, load_runs
from r1eval.table import markdown_table
from r1eval.task.registry import available_tasks

EPILOG = epilog(
    "r1eval compare results/ --figure compare.png",
    "0 the comparison is printed (the verdicts are in the table, not in the exit code)",
    BAD_INPUT + "; also --figure without matplotlib (pip install 'r1eval[figure]')",
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="*", type=Path, metavar="RUN",
                        help="run folders (or folders holding runs)")
    parser.add_argument("--claims", action="append", type=Path, default=[], metavar="FILE",
                        help="a TOML file of reported scores of your own (repeatable)")
    parser.add_argument("--as", dest="as_names", action="append", default=[], metavar="NAME",
                        help="the registry's name for the model: once for all runs, or once "
                        "per run in order")
    parser.add_argument("--margin", type=float, default=5.0, metavar="POINTS",
                        help="differences up to this many percentage points do not matter "
                        "(default 5): 'reproduced' needs the interval within it")
    parser.add_argument("--format", choices=["markdown", "csv", "json"], default="markdown",
                        help="markdown (the default): a table for the terminal or a page; csv "
                        "or json: one record per reported figure, for programs")
    parser.add_argument("--figure", type=Path, metavar="PNG",
                        help="also draw reported vs measured with intervals, per benchmark")
    parser.add_argument("--list", action="store_true",
                        help="list the registry's reported scores instead")
    parser.add_argument("--task-dir", dest="task_dir", type=Path,
                        help="extra folder of task files (they count as run by r1eval)")


def main(args: argparse.Namespace) -> int:
    if not 0 < args.margin < 100:
        raise UsageError("--margin must be between 0 and 100 percentage points")
    if args.figure is not None:
        _check_figure(args.figure)
    reported = load_reported(args.claims)
    runnable = set(available_tasks(args.task_dir))
    if args.list:
        print(registry_table(reported, runnable))
        return 0
    runs = _runs(args.runs)
    margin = args.margin / 100  # percentage points -> a fraction, like run scores
    rows = check_reproduction(runs, reported, runnable, margin, _as_names(args.as_names, runs))
    if args.format == "csv":
        print(render_csv(rows), end="")
    elif args.format == "json":
        print(render_json(rows, margin))
    else:
        print(render_markdown(rows, margin))
    if args.figure is not None:
        from r1eval.claims.figure import plot_comparison

        plot_comparison(rows, args.figure)
        print(f"figure: {args.figure}", file=sys.stderr)
    return 0


def _check_figure(path: Path) -> None:
    """Before any output: matplotlib is there and the figure has a folder to go to."""
    from r1eval.claims.figure import require_matplotlib  # matplotlib is imported only for --figure

    require_matplotlib()
    if not path.parent.is_dir():
        raise UsageError(f"--figure {path}: the folder {path.parent} does not exist")


def _runs(paths: list[Path]) -> list[Run]:
    if not paths:
        raise UsageError("name at least one run folder (or use --list)")
    runs = []
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path} does not exist")
        found = load_runs(path).runs
        if not found:
            raise UsageError(f"no run folder at or below {path}")
        runs += found
    return runs


def _as_names(names: list[str], runs: list[Run]) -> list[str | None]:
    if len(names) == 1:
        return [names[0]] * len(runs)
    if names and len(names) != len(runs):
        raise UsageError(f"give --as once, or once per run ({len(runs)} runs, "
                         f"{len(names)} --as)")
    return list(names) or [None] * len(runs)


def registry_table(reported: Reported, runnable: set[str]) -> str:
    """Every reported figure, its source and protocol, and whether r1eval runs it."""
    header = ["model", "benchmark", "metric", "reported", "source", "protocol", "r1eval task"]
    rows = []
    for claim in reported.claims:
        figure, protocol = claim.figure, claim.figure.protocol
        stated = "-" if protocol is None else ", ".join(
            f"{name}={value}" for name, value in protocol.model_dump(
                exclude_none=True, exclude={"stated_in", "note"}).items()) or "-"
        task = figure.benchmark if figure.benchmark in runnable else "not run by r1eval"
        rows.append([figure.model, benchmark_name(figure.benchmark), figure.metric,
                     figure.shown(), claim.source.id, stated, task])
    return markdown_table(header, rows)
