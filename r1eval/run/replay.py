"""A run whose responses come from a file (``r1eval grade``), prepared for ``evaluate.execute``.

The responses go through the very path of a live run (plan, runner, grader pool, scoring):
``ReplayBackend`` plays the endpoint, whose identity is the file's (``file_identity``: a changed
file never mixes with a folder made from another). The plan holds exactly the file's responses,
one work item each; the task's K is the file's (``outcomes.samples_per_question`` of its
repeats), and run.json says which file was graded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from r1eval.backends.factory import identity_for
from r1eval.backends.replay import (
    FILE_URL,
    ReplayBackend,
    Replayed,
    ResponseLine,
    match_lines,
)
from r1eval.run.config import RunConfig
from r1eval.run.evaluate import PreparedRun, prepare
from r1eval.run.plan import group_requests, request_key
from r1eval.store.outcomes import samples_per_question
from r1eval.store.snapshot import load_state
from r1eval.types import WorkItem

__all__ = ["prepare_replay"]


def prepare_replay(
    config: RunConfig, path: Path, lines: Sequence[tuple[int, ResponseLine]]
) -> tuple[PreparedRun, ReplayBackend]:
    """The run of ``config`` (one task; ``base_url`` the file's identity) with exactly the
    responses ``lines`` read from ``path``, and the backend that serves them."""
    prepared = prepare(config, {}, False)
    endpoint = identity_for(config.model, config.base_url)
    replayed = _in_dataset_order(match_lines(lines, prepared.loaded[0], path), prepared)
    prepared = _replay_plan(prepared, replayed, endpoint, path)
    return prepared, ReplayBackend(endpoint, _served(prepared, replayed))


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
        update={"samples_per_question": samples_per_question(r.repeat for r in replayed)})
    manifest = prepared.manifest.model_copy(update={
        "tasks": {task: entry},
        "completions": {"file": str(path.resolve()), "responses": len(items),
                        "sha256": endpoint["base_url"].removeprefix(FILE_URL)},
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
