"""Executing a plan: send what is missing, log each response at once, grade as they arrive.

Requests go out from ``concurrency`` workers pulling from one queue, so the endpoint stays busy
until the queue is empty; ``order`` may sort the queue first (``schedule.LongestFirst``: the
questions that took longest in earlier runs first, so no long one starts near the end). Each
response is appended to the sample log the moment it arrives, and graded: at once when that
needs no worker process (a letter, a plain integer: ``grading.inline``), else in a worker
process awaited on the event loop (``GraderPool.grade_async``), so grading keeps up with the
responses and adds little to wall time.
A request that fails for good is logged as an error (never graded, never a wrong answer) and
is retried by the next run of the same command. After ``max_consecutive_failures`` failed
requests in a row the run stops (``RunStopped``) instead of spending the rest of the plan on an
endpoint that is down: the requests in flight finish, and everything received is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from r1eval.backends.base import Backend
from r1eval.budget import Budget
from r1eval.errors import EndpointError, RequestFailed, RunStopped
from r1eval.grading.inline import inline_grade
from r1eval.grading.pool import GraderPool
from r1eval.plan import WorkItem, group_requests
from r1eval.progress import Progress, task_counts
from r1eval.records import completion_from_record, completion_record, error_record, grade_record
from r1eval.response import DEFAULT_FORMATS, TraceFormat, final_answer
from r1eval.store import RunFolder, read_completions
from r1eval.types import Completion, Grade, Request, SamplingParams, Usage

Grader = Callable[[str, str], Grade]
RequestGroup = tuple[Request, list[WorkItem]]
#: Sorts the requests of a run before they are sent (``r1eval.schedule.LongestFirst``).
Order = Callable[[list[RequestGroup]], list[RequestGroup]]


@dataclass
class Runner:
    folder: RunFolder
    backend: Backend
    pool: GraderPool
    graders: dict[str, Grader]
    sampling: SamplingParams
    progress: Progress
    concurrency: int = 32
    max_consecutive_failures: int = 20
    budget: Budget | None = None
    order: Order | None = None
    max_ungraded: int = 1000
    formats: tuple[TraceFormat, ...] = DEFAULT_FORMATS
    _unsent: int = field(default=0, init=False)
    _to_grade: asyncio.Queue[tuple[WorkItem, str] | None] = field(init=False)
    _failures_in_a_row: int = field(default=0, init=False)
    _fatal: BaseException | None = field(default=None, init=False)

    async def run(self, items: list[WorkItem]) -> None:
        """Bring every item to a graded completion or a logged error."""
        state = self.folder.state()
        pending = [item for item in items if item.key not in state.completions]
        ungraded = [i for i in items if i.key in state.completions and i.key not in state.grades]
        self.progress.start(task_counts(items, state))
        if self.budget is not None:  # what earlier sessions of this run spent counts too
            for completion in state.completions.values():
                self.budget.charge(Usage(**completion.get("usage") or {}))
        self._unsent = len(pending)
        self._to_grade = asyncio.Queue(maxsize=self.max_ungraded)
        queue: asyncio.Queue[RequestGroup] = asyncio.Queue()
        groups = group_requests(pending, self.sampling)
        for group in self.order(groups) if self.order else groups:
            queue.put_nowait(group)
        graders = [asyncio.create_task(self._grader()) for _ in range(max(1, self.pool.workers))]
        producers = [asyncio.create_task(self._regrade(ungraded))]
        producers += [asyncio.create_task(self._worker(queue)) for _ in range(self.concurrency)]
        try:
            await _until_done(producers, graders)
            for _ in graders:
                await self._to_grade.put(None)  # no more responses: each grader stops
            await asyncio.gather(*graders)
        finally:  # stopped by an error: what is not graded yet is graded by the next run
            for task in (*producers, *graders):
                task.cancel()
        self.progress.finish()
        if self._fatal is not None:
            raise self._fatal

    async def _regrade(self, items: list[WorkItem]) -> None:
        """Grade responses logged by an earlier run that stopped before grading them."""
        if not items:
            return
        records = read_completions(self.folder.path, {item.key for item in items})
        for item in items:
            await self._grade(item, completion_from_record(records.pop(item.key)))

    async def _worker(self, queue: asyncio.Queue[RequestGroup]) -> None:
        while self._fatal is None:
            try:
                request, group = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if self.budget is not None and not self.budget.reserve(request):
                if self._fatal is None:
                    self._fatal = self.budget.reached(not_sent=self._unsent)
                return
            self._unsent -= len(group)
            try:
                await self._send(request, group)
            finally:
                if self.budget is not None:
                    self.budget.release(request)

    async def _send(self, request: Request, group: list[WorkItem]) -> None:
        try:
            completions = await self.backend.generate(request)
        except RequestFailed as error:
            self._record_errors(group, str(error), error.transient, error.status)
            return
        except EndpointError as error:
            self._fatal = error
            return
        self._failures_in_a_row = 0
        # fewer completions than items when the endpoint could not give them all: see below
        received = list(zip(group, completions, strict=False))
        for item, completion in received:
            record = completion_record(item, completion)
            self.folder.append(record)
            if self.budget is not None:
                self.budget.charge(Usage(**record["usage"]))
            self.progress.received(completion)
        missing = group[len(completions) :]
        if missing:
            message = f"endpoint returned {len(completions)} of {len(group)} responses"
            self._record_errors(missing, message, True, None)
        for item, completion in received:
            await self._grade(item, completion)

    def _record_errors(
        self, items: list[WorkItem], message: str, transient: bool, status: int | None
    ) -> None:
        for item in items:
            self.folder.append(error_record(item, message, transient, status))
            self.progress.failed(item.task)
        self._failures_in_a_row += 1
        if self._failures_in_a_row >= self.max_consecutive_failures and self._fatal is None:
            self._fatal = RunStopped(
                f"stopped after {self._failures_in_a_row} failed requests in a row "
                f"(last: {message}); everything received is saved: run the same command "
                "again to resume"
            )

    async def _grade(self, item: WorkItem, completion: Completion) -> None:
        """Grade at once what needs no worker (no final answer; a letter or a plain integer:
        ``grading.inline``), so it never waits behind answers that do; queue the rest for the
        workers, waiting while ``max_ungraded`` are queued."""
        answer = final_answer(completion, self.formats)
        if isinstance(answer, Grade):
            self._log_grade(item, answer)
        elif (grade := inline_grade(self.graders[item.task], answer, item.prompt.gold)) is not None:
            self._log_grade(item, grade)
        else:
            await self._to_grade.put((item, answer))

    async def _grader(self) -> None:
        """One per grading worker: grade queued answers in the order they arrived, each in a
        worker process awaited on the event loop (``GraderPool.grade_async``)."""
        while (job := await self._to_grade.get()) is not None:
            item, answer = job
            grader = self.graders[item.task]
            self._log_grade(item, await self.pool.grade_async(grader, answer, item.prompt.gold))

    def _log_grade(self, item: WorkItem, grade: Grade) -> None:
        self.folder.append(grade_record(item, grade))
        self.progress.graded(grade, item.task)


async def _until_done(
    producers: list[asyncio.Task[None]], graders: list[asyncio.Task[None]]
) -> None:
    """Wait for every producer of responses; raise at once the error of any task that fails,
    a grader's included (the producers would otherwise wait forever for room to queue)."""
    watched = {*producers, *graders}
    while not all(task.done() for task in producers):
        done, watched = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
