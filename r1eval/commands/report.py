"""``r1eval report``: a self-contained HTML page of one run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from r1eval.report import render
from r1eval.runs import load_run


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, metavar="RUN", help="a run folder")
    parser.add_argument("-o", "--output", type=Path,
                        help="HTML file to write (default: RUN/report.html)")
    parser.add_argument("--data-dir", dest="data_dir", type=Path,
                        help="where to read question texts (default: where the run read them)")
    parser.add_argument("--include-gpqa-text", dest="include_private", action="store_true",
                        help="include GPQA question text (its authors ask that it never be "
                        "published in plain text)")


def main(args: argparse.Namespace) -> int:
    run = load_run(args.run, with_text=True)
    page = render(run, args.data_dir, args.include_private)
    output = args.output or args.run / "report.html"
    output.write_text(page, encoding="utf-8")
    print(f"wrote {output} ({len(run.samples)} samples)", file=sys.stderr)
    return 0
