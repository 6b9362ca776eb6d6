"""``r1eval tasks``: list the available tasks."""

from __future__ import annotations

import argparse
from pathlib import Path

from r1eval.registry import available_tasks
from r1eval.table import markdown_table


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task-dir", dest="task_dir", type=Path)


def main(args: argparse.Namespace) -> int:
    rows = [
        [t.name, t.version, t.size, t.r1_samples, t.hub.describe(), t.local.path, t.description]
        for t in sorted(available_tasks(args.task_dir).values(), key=lambda t: t.name)
    ]
    header = ["task", "version", "questions", "R1 K", "Hub source", "local path", "description"]
    print(markdown_table(header, rows))
    return 0
