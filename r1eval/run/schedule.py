"""The order in which a run sends its requests: the questions that take longest, first.

A run lasts until its last response arrives. Reasoning traces are heavy tailed: a few questions
take ten times the median. Sent in the plan's order, such a question may start near the end and
keep the run going long after every other slot of the server has fallen idle. Sent first, the
long questions run while the server is busy with the rest, and the short ones fill the end
(Graham's longest-processing-time rule: with exact durations, within 4/3 of the best
possible schedule).

How long a question takes comes from earlier runs: the mean number of tokens its samples
generated (``expected_tokens``; completion tokens per sample, from the log). Not their wall
latency: against a busy server that includes the time a request waited in the server's queue,
which follows the earlier run's send order rather than the question. A question with no
history is expected to take the median of the questions that have one; with no history at
all, the plan's order is kept. Ties keep the plan's order too, so the order is deterministic.
"""

from __future__ import annotations

import logging
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from r1eval.errors import RunFolderError
from r1eval.store.folder import read_manifest, run_folders
from r1eval.store.snapshot import load_state
from r1eval.types import WorkItem

__all__ = ["LongestFirst", "QuestionKey", "expected_tokens", "order_groups"]

log = logging.getLogger(__name__)

#: (task, question id)
QuestionKey = tuple[str, str]
Group = TypeVar("Group", bound=tuple[object, Sequence[WorkItem]])


def order_groups(
    groups: Iterable[Group], expected: Mapping[QuestionKey, float]
) -> list[Group]:
    """``groups`` (``(request, items)`` pairs, as ``plan.group_requests`` makes them), longest
    expected first; the plan's order when nothing is known."""
    planned = list(groups)
    keys = [(items[0].task, items[0].sample.id) for _, items in planned]
    known = [expected[key] for key in keys if key in expected]
    if not known:
        return planned
    default = statistics.median(known)
    order = sorted(range(len(planned)), key=lambda i: -expected.get(keys[i], default))
    return [planned[i] for i in order]


@dataclass(frozen=True)
class LongestFirst:
    """A runner's ``order``: ``order_groups`` with the history found in ``folders``, read only
    when there is something to send (a finished run reopens without reading it)."""

    folders: tuple[Path, ...]
    model: str

    def __call__(self, groups: list[Group]) -> list[Group]:
        if not groups:
            return groups
        return order_groups(groups, expected_tokens(self.folders, self.model))


def expected_tokens(folders: Iterable[Path], model: str) -> dict[QuestionKey, float]:
    """Mean completion tokens per sample of each (task, question) in the runs found in
    ``folders``.

    Runs of ``model`` are preferred: a task that ``model`` has never run takes the runs of
    other models (a question that is long for one model is long for most). Missing folders
    are skipped; history that cannot be read is ignored with a warning, never fatal. Only the
    runs' log states are read (their snapshots, for runs of this version), no sample text.
    """
    own: dict[QuestionKey, list[float]] = defaultdict(list)
    others: dict[QuestionKey, list[float]] = defaultdict(list)
    for folder in folders:
        for run_dir in run_folders(folder) if folder.is_dir() else ():
            found = _lengths(run_dir)
            if found is not None:
                lengths = own if found[0] == model else others
                for question, tokens in found[1]:
                    lengths[question].append(tokens)
    own_tasks = {task for task, _ in own}
    chosen = {q: s for q, s in others.items() if q[0] not in own_tasks} | own
    return {question: statistics.fmean(tokens) for question, tokens in chosen.items()}


def _lengths(run_dir: Path) -> tuple[str, list[tuple[QuestionKey, float]]] | None:
    """The model of one run and the completion tokens of each of its answered samples (a
    response's count shared by its choices: ``Usage.shared_by``); None (with a warning) when
    the run cannot be read."""
    try:
        manifest = read_manifest(run_dir)
        if manifest is None:
            raise RunFolderError(f"{run_dir} holds no run.json")
        model = manifest.model
        completions = load_state(run_dir).completions.values()
    except (RunFolderError, OSError, ValueError, KeyError, TypeError) as error:
        log.warning("ignoring the history in %s: %s", run_dir, error)
        return None
    return model, [((c["task"], c["sample_id"]), tokens) for c in completions
                   if (tokens := _tokens(c.get("usage"))) is not None]


def _tokens(usage: object) -> float | None:
    if not isinstance(usage, dict) or not isinstance(count := usage.get("completion_tokens"), int):
        return None
    return count / (usage.get("shared_by") or 1)
