"""``r1eval tasks``: list the available tasks."""

from __future__ import annotations

import argparse

from r1eval.commands.shared import BAD_INPUT, add_task_dir, epilog
from r1eval.table import markdown_table
from r1eval.task.registry import available_tasks

EPILOG = epilog("r1eval tasks --task-dir my_tasks", "0 the list is printed", BAD_INPUT)


def configure(parser: argparse.ArgumentParser) -> None:
    add_task_dir(parser, "also list the task files of this folder")


def main(args: argparse.Namespace) -> int:
    rows = [
        [t.name, t.version, t.size, t.r1_samples, t.hub.describe(), t.local.path, t.description]
        for t in sorted(available_tasks(args.task_dir).values(), key=lambda t: t.name)
    ]
    header = ["task", "version", "questions", "R1 K", "Hub source", "local path", "description"]
    print(markdown_table(header, rows))
    return 0
