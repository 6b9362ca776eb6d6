"""``r1eval grade``: turn a file of existing responses into a graded, scored run folder.

The responses go through the very path of a live run (``r1eval.run.replay``). See
``r1eval.backends.replay`` for the file format.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from r1eval.backends.replay import file_identity, read_response_lines
from r1eval.commands.shared import (
    BAD_INPUT,
    add_data_dir,
    add_sampling,
    add_task_dir,
    epilog,
)
from r1eval.reports.end_of_run import scores_table
from r1eval.run.config import build_config
from r1eval.run.evaluate import execute
from r1eval.run.replay import prepare_replay

EPILOG = epilog(
    "r1eval grade --task aime24 --completions responses.jsonl --model my-model --protocol r1",
    "0 every response graded",
    "1 some questions have no response in the file (recorded as errors, never graded)",
    BAD_INPUT,
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="the task the responses answer")
    parser.add_argument("--completions", required=True, type=Path, metavar="FILE",
                        help="JSONL: id or problem, response, optional reasoning, "
                        "finish_reason, repeat, option_order")
    parser.add_argument("--model", help="the model's name (default: the file's name)")
    parser.add_argument("--run-dir", dest="run_dir", type=Path,
                        help="run folder (default: a new folder under results/)")
    add_data_dir(parser)
    add_task_dir(parser)
    parser.add_argument("--grader-workers", dest="grader_workers", type=int,
                        help="grading processes (default: one per core)")
    parser.add_argument("--grade-timeout", dest="grade_timeout", type=float,
                        help="seconds allowed to grade one response (default 30)")
    parser.add_argument("--reasoning-delimiters", dest="reasoning_delimiters", metavar="NAMES",
                        help="reasoning trace formats to split off (default think,thought)")
    generated = parser.add_argument_group(
        "how the responses were generated (recorded, so that compare can check the protocol)")
    add_sampling(generated)


def main(args: argparse.Namespace) -> int:
    path: Path = args.completions
    lines = read_response_lines(path)
    endpoint = file_identity(path, args.model or path.stem)
    flags = {
        "model": endpoint["model"], "base_url": endpoint["base_url"], "tasks": [args.task],
        **{name: getattr(args, name) for name in (
            "run_dir", "data_dir", "task_dir", "grader_workers", "grade_timeout",
            "reasoning_delimiters", "protocol",
            "temperature", "top_p", "max_tokens")},
    }
    prepared, backend = prepare_replay(build_config(flags, None, os.environ), path, lines)
    scores = execute(prepared, lambda p: print(f"run folder: {p}", file=sys.stderr),
                     backend=backend)
    print(scores_table(scores))
    return 1 if any(task.n_errors for task in scores.tasks.values()) else 0
