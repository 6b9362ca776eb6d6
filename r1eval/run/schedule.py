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

Without history the run learns as it goes (``SendQueue``): every question first gets its share
of the server (a few samples each, the slots split between the questions), then each sample
goes to the question that looks longest from what this run has seen of it so far: the time its
finished samples took, and the time its samples still generating have taken until now (a
question whose first samples are all still running is long). The long questions then run
while the short ones fill the slots around them, instead of starting near the end.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from r1eval.errors import RunFolderError
from r1eval.store.folder import read_manifest, run_folders
from r1eval.store.snapshot import load_state
from r1eval.types import Request, WorkItem

__all__ = ["Chunk", "LongestFirst", "QuestionKey", "SendQueue", "expected_tokens",
           "order_groups"]

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
        return order_groups(groups, self.expected())

    def expected(self) -> dict[QuestionKey, float]:
        """``expected_tokens`` of the history."""
        return expected_tokens(self.folders, self.model)


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
    return model, [((c.task, c.sample_id), tokens) for c in completions
                   if (tokens := c.usage.per_sample().get("completion")) is not None]


RequestGroup = tuple[Request, list[WorkItem]]


@dataclass(frozen=True)
class Chunk:
    """One request taken from a ``SendQueue``: its samples and when they were sent."""

    request: Request
    items: list[WorkItem]
    sent_at: float

    @property
    def question(self) -> QuestionKey:
        return _question(self.items)


@dataclass(eq=False)
class _Question:
    """A question's requests not sent yet, and what this run has seen of its samples."""

    position: int  # in the plan's order: ties go to the earlier question
    known: bool  # its length is known from history
    groups: deque[RequestGroup] = field(default_factory=deque)
    finished: int = 0
    finished_s: float = 0.0
    in_flight: int = 0
    in_flight_sent_s: float = 0.0  # the sum of their send times
    #: samples of its share still to send before it counts as started (None: sent whole)
    first: int | None = None

    def left(self) -> int:
        return sum(len(items) for _, items in self.groups)

    def seconds(self, now: float) -> float:
        """The mean time its samples took, those still generating counted until ``now``."""
        seen = self.finished + self.in_flight
        if not seen:
            return math.inf  # nothing seen: as long as any
        running = self.in_flight * now - self.in_flight_sent_s
        return (self.finished_s + running) / seen


class SendQueue:
    """The requests a run has left to send, taken one at a time as the server has room.

    Questions first go in the order of ``expected`` (tokens per sample from earlier runs:
    ``order_groups``): a question whose length is known is sent whole, as soon as there is
    room; one whose length is not known gets its share of the room first (``limit`` split
    between the questions, when that leaves two samples or more each and at most half of the
    question's; else whole, in order), and its other samples wait. Once every question has
    started, each request goes to the question whose samples have taken longest so far
    (``_Question.seconds``), as much of it as there is room for. The runner reports each
    sample's end (``finished``, ``lost``).
    """

    def __init__(self, groups: Iterable[RequestGroup], expected: Mapping[QuestionKey, float],
                 limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._questions: dict[QuestionKey, _Question] = {}
        for request, items in order_groups(groups, expected):
            key = _question(items)
            if key not in self._questions:
                self._questions[key] = _Question(len(self._questions), key in expected)
            self._questions[key].groups.append((request, items))
        self._fresh = deque(self._questions.values())  # not started
        self._started: dict[QuestionKey, _Question] = {}  # started, with samples left
        # each question's first request: its share of the room, when that is two samples or
        # more (else each question whole, in order: split into many requests, it would teach
        # little, and picking among hundreds of questions costs CPU at every request)
        questions = max(1, len(self._questions))
        share = math.ceil(limit / questions) if limit >= 2 * questions else None
        for question in self._questions.values():
            question.first = _share_of(question, share)

    def __bool__(self) -> bool:
        return bool(self._fresh or self._started)

    def take(self, room: int, most: int | None = None) -> Chunk:
        """The next request: at most ``room`` samples (and ``most``: 1 for a server that
        ignores ``n``), counted in flight from now."""
        key, question = self._pick()
        request, items = question.groups[0]
        size = min(room, len(items), most or len(items))
        fresh = bool(self._fresh) and question is self._fresh[0]
        if fresh and question.first is not None:  # its share: in one request, or one by one
            size = min(size, question.first)
            question.first -= size
        if size < len(items):
            question.groups[0] = (request, items[size:])
        else:
            question.groups.popleft()
        if fresh and (question.first == 0 or not question.groups):
            self._fresh.popleft()
            if question.groups:
                self._started[key] = question
        elif not fresh and not question.groups:
            del self._started[key]
        now = self._clock()
        question.in_flight += size
        question.in_flight_sent_s += size * now
        return Chunk(Request(request.messages, size, request.sampling), items[:size], now)

    def _pick(self) -> tuple[QuestionKey, _Question]:
        if self._fresh:
            question = self._fresh[0]
            return _question(question.groups[0][1]), question
        now = self._clock()
        return max(self._started.items(),
                   key=lambda pair: (pair[1].seconds(now), -pair[1].position))

    def finished(self, chunk: Chunk) -> None:
        """One sample of ``chunk`` arrived now."""
        question = self._questions[chunk.question]
        question.in_flight -= 1
        question.in_flight_sent_s -= chunk.sent_at
        question.finished += 1
        question.finished_s += self._clock() - chunk.sent_at

    def lost(self, chunk: Chunk, count: int) -> None:
        """``count`` samples of ``chunk`` ended without arriving."""
        question = self._questions[chunk.question]
        question.in_flight -= count
        question.in_flight_sent_s -= count * chunk.sent_at

    def put_back(self, chunk: Chunk, items: list[WorkItem]) -> None:
        """``items`` of ``chunk`` (none of them in flight any more) to send again: first if
        the question's length is known, else when it looks longest."""
        key = chunk.question
        question = self._questions[key]
        question.groups.appendleft((Request(chunk.request.messages, len(items),
                                            chunk.request.sampling), items))
        if self._fresh and self._fresh[0] is question:
            return
        if question.known:
            self._started.pop(key, None)
            self._fresh.appendleft(question)
        else:
            self._started[key] = question


def _share_of(question: _Question, share: int | None) -> int | None:
    """What ``question`` gets before it counts as started (the rest once it has been seen):
    ``share``, unless its length is known or the share is more than half its samples (then the
    question goes whole: splitting off a few samples teaches little)."""
    if share is None or question.known or 2 * share > question.left():
        return None
    return share


def _question(items: Sequence[WorkItem]) -> QuestionKey:
    return items[0].task, items[0].sample.id
