"""``r1eval data download --to DIR``: prepare an offline data folder from the Hub, once."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from r1eval.commands.shared import BAD_INPUT, add_task_dir, epilog
from r1eval.table import markdown_table
from r1eval.task.registry import available_tasks, resolve

EPILOG = epilog(
    "r1eval data download --to data    # then: r1eval run ... --data-dir data",
    "0 every task stored and read back as the Hub serves it",
    BAD_INPUT + "; also the Hub unreachable, or a gated dataset (GPQA) whose terms are not "
    "accepted or without HF_TOKEN",
)


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION",
                                    help="download: the tasks' Hub datasets into a folder")
    get = actions.add_parser(
        "download", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description=textwrap.fill(
            "Store each task's Hub dataset (at its pinned revision) in the layout --data-dir "
            "reads, with SHA256SUMS and r1eval-sources.json. GPQA Diamond is gated: "
            "accept its terms on the Hub, then set HF_TOKEN; it is stored in a password-"
            "protected zip like its authors' own, never as plain text.", 79))
    get.add_argument("--to", required=True, type=Path, metavar="DIR",
                     help="the data folder to fill (created if needed)")
    get.add_argument("--tasks",
                     help="comma-separated task names (default: every task with a local layout)")
    get.add_argument("--force", action="store_true",
                     help="replace files already in the folder")
    add_task_dir(get, "extra folder of task files (their Hub datasets too)")


def main(args: argparse.Namespace) -> int:
    from r1eval.task.download import download  # datasets is imported only for this

    known = available_tasks(args.task_dir)
    names = args.tasks.split(",") if args.tasks else sorted(
        name for name, task in known.items() if task.local.writer is not None)
    stored = download(resolve([n.strip() for n in names if n.strip()], args.task_dir), args.to,
                      args.force)
    rows = [[d.task, d.questions, str(d.path), d.sha256[:16], d.source["location"]]
            for d in stored]
    print(markdown_table(["task", "questions", "stored as", "sha256 (as runs record it)",
                          "Hub source"], rows))
    print(f"r1eval: checksums in {args.to / 'SHA256SUMS'}; run with --data-dir {args.to}",
          file=sys.stderr)
    return 0
