"""``r1eval grade``: turn a file of existing responses into a graded, scored run folder.

The responses go through the very path of a live run (plan, runner, grader pool, scoring):
``ReplayBackend`` plays the endpoint. See ``r1eval.backends.replay`` for the file format.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from r1eval.backends.replay import (
    ReplayBackend,
    Replayed,
    file_identity,
    match_lines,
    read_response_lines,
)
from r1eval.commands.shared import (
    BAD_INPUT,
    add_data_dir,
    add_sampling,
    add_task_dir,
    epilog,
)
from r1eval.reports.table import scores_table
from r1eval.run.config import build_config
from r1eval.run.evaluate import PreparedRun, execute, prepare
from r1eval.run.plan import WorkItem, group_requests, request_key
from r1eval.store.snapshot import load_state

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
    config = build_config(flags, None, os.environ)
    prepared = prepare(config, {}, False, endpoint=endpoint)
    replayed = _in_dataset_order(match_lines(lines, prepared.loaded[0], path), prepared)
    prepared = _replay_plan(prepared, replayed, endpoint, path)
    backend = ReplayBackend(endpoint, _served(prepared, replayed))
    scores = execute(prepared, lambda p: print(f"run folder: {p}", file=sys.stderr),
                     backend=backend)
    print(scores_table(scores))
    return 1 if any(task.n_errors for task in scores.tasks.values()) else 0


def _in_dataset_order(replayed: list[Replayed], prepared: PreparedRun) -> list[Replayed]:
    position = {sample.id: index for index, sample in enumerate(prepared.loaded[0].samples)}
    return sorted(replayed, key=lambda r: (position[r.sample.id], r.repeat))


def _replay_plan(
    prepared: PreparedRun, replayed: list[Replayed], endpoint: dict[str, str], path: Path
) -> PreparedRun:
    """The plan holds exactly the file's responses (one work item each, in that order)."""
    task, sampling = prepared.loaded[0].task.name, prepared.config.sampling()
    items = [
        WorkItem(task, r.sample, r.repeat, r.prompt,
                 request_key(endpoint, sampling, r.prompt.messages, task, r.sample.id, r.repeat))
        for r in replayed
    ]
    entry = prepared.manifest.tasks[task].model_copy(
        update={"samples_per_question": max(r.repeat for r in replayed) + 1})
    manifest = prepared.manifest.model_copy(update={
        "tasks": {task: entry},
        "completions": {"file": str(path.resolve()), "responses": len(items),
                        "sha256": endpoint["base_url"].removeprefix("file:")},
    })
    return dataclasses.replace(prepared, items=items, manifest=manifest)


def _served(prepared: PreparedRun, replayed: list[Replayed]) -> list[Any]:
    """What the backend answers, in the order the runner will ask: the plan's requests for
    the responses not yet in the run folder (a resumed folder keeps what it has)."""
    done = set(load_state(prepared.run_dir).completions) if prepared.run_dir.exists() else set()
    completion = {item.key: r.completion for item, r in zip(prepared.items, replayed,
                                                            strict=True)}
    pending = [item for item in prepared.items if item.key not in done]
    return [(request.messages, completion[member.key])
            for request, members in group_requests(pending, prepared.config.sampling())
            for member in members]
