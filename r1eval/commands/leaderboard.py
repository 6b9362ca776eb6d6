"""``r1eval leaderboard``: a CSV of runs with full provenance."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from r1eval.claims.published import load_reported
from r1eval.commands.shared import BAD_INPUT, epilog
from r1eval.errors import UsageError
from r1eval.reports.leaderboard import long_table, wide_table, with_reported
from r1eval.store.loading import RunSet, load_runs

EPILOG = epilog("r1eval leaderboard results/ -o leaderboard.csv", "0 the table is written",
                BAD_INPUT)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folders", nargs="*", type=Path, default=[Path("results")],
                        metavar="RESULTS_DIR",
                        help="folders holding run folders (default results/)")
    parser.add_argument("-o", "--output", type=Path, help="CSV file to write (default: stdout)")
    parser.add_argument("--wide", action="store_true", help="a model x task table instead")
    parser.add_argument("--all", dest="keep_all", action="store_true",
                        help="every run, not only the newest complete one per model and task")
    parser.add_argument("--with-reported", dest="with_reported", action="store_true",
                        help="add the published figures for the same models as rows of their own")
    parser.add_argument("--claims", type=Path, action="append", default=[],
                        help="a file of reported scores of your own (with --with-reported)")


def collect(folders: list[Path]) -> RunSet:
    runs = []
    for folder in folders:
        if not folder.is_dir():
            raise UsageError(f"{folder} is not a folder")
        runs += load_runs(folder, samples=False).runs
    if not runs:
        raise UsageError(f"no run folders found under {', '.join(map(str, folders))}")
    return RunSet(runs=runs, samples=pd.DataFrame(), scores=pd.DataFrame())


def main(args: argparse.Namespace) -> int:
    table = long_table(collect(args.folders), keep_all=args.keep_all)
    if args.with_reported:
        table = with_reported(table, load_reported(args.claims))
    if args.wide:
        table = wide_table(table)
    if args.output is None:
        table.to_csv(sys.stdout, index=False)
    else:
        table.to_csv(args.output, index=False)
        print(f"wrote {len(table)} rows to {args.output}", file=sys.stderr)
    return 0
