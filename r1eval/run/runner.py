"""Executing a plan: send what is missing, log each response at once, grade as they arrive.

The unit of work in flight is a sample (one sequence the server generates), not a request: at
most ``concurrency`` samples are in flight, and the repeats of a question go out as requests
of ``n`` no larger than the room left (``SequenceLimit``), so with ``concurrency`` at the
server's capacity no request of r1eval's waits in the server's queue behind r1eval's own work,
and the server's slots stay full until the queue is empty. Which question each request is for
comes from ``schedule.SendQueue``: the longest first, known from earlier runs (``order``:
``schedule.LongestFirst``) or learnt during the run. A backend that hands over each
completion as it finishes (``Incremental``: a streamed request) frees its room one sample at a
time; a server found to ignore ``n`` gets one request per sample, all in parallel.

Each response is appended to the sample log the moment it arrives, and graded: at once when
that needs no worker process (a letter, a plain integer: ``grading.inline``), else in a worker
process awaited on the event loop (``GraderPool.grade_async``), so grading keeps up with the
responses and adds little to wall time.
A request that fails for good is logged as an error for the samples it did not deliver (never
graded, never a wrong answer), retried by the next run of the same command. After
``max_consecutive_failures`` failed requests in a row the run stops (``RunStopped``) instead of
spending the rest of the plan on an endpoint that is down: the requests in flight finish, and
everything received is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from r1eval.backends.base import Backend, Incremental
from r1eval.errors import EndpointError, RequestFailed, RunStopped
from r1eval.grading.final_answer import DEFAULT_FORMATS, TraceFormat, final_answer
from r1eval.grading.inline import inline_grade
from r1eval.grading.pool import GraderPool
from r1eval.run.budget import Budget
from r1eval.run.plan import WorkItem, group_requests
from r1eval.run.progress import Progress, task_counts
from r1eval.run.schedule import Chunk, LongestFirst, SendQueue
from r1eval.store.folder import RunFolder
from r1eval.store.log import read_responses
from r1eval.store.records import completion_record, error_record, grade_record
from r1eval.types import Completion, Grade, Grader, Request, SamplingParams, Usage

#: Where the lengths of the questions from earlier runs come from.
Order = LongestFirst


@dataclass
class Runner:
    folder: RunFolder
    backend: Backend
    pool: GraderPool
    graders: dict[str, Grader]
    sampling: SamplingParams
    progress: Progress
    #: Samples in flight (sequences the server generates at once), not requests.
    concurrency: int = 256
    max_consecutive_failures: int = 20
    budget: Budget | None = None
    order: Order | None = None
    max_ungraded: int = 1000
    formats: tuple[TraceFormat, ...] = DEFAULT_FORMATS
    _unsent: int = field(default=0, init=False)
    _to_grade: asyncio.Queue[tuple[WorkItem, str] | None] = field(init=False)
    _failures_in_a_row: int = field(default=0, init=False)
    _fatal: BaseException | None = field(default=None, init=False)
    #: ``backend`` if it is ``Incremental``: checked once a run, not at every request (a
    #: runtime protocol check is slow: bench/RESULTS.md, section 1)
    _incremental: Incremental | None = field(default=None, init=False)

    @property
    def unsent(self) -> int:
        """Samples of the plan not sent yet: what is left in the queue."""
        return self._unsent

    async def run(self, items: list[WorkItem]) -> None:
        """Bring every item to a graded completion or a logged error."""
        state = self.folder.state()
        pending = [item for item in items if item.key not in state.completions]
        ungraded = [i for i in items if i.key in state.completions and i.key not in state.grades]
        self.progress.start(task_counts(items, state))
        if self.budget is not None:  # what earlier sessions of this run spent counts too
            for completion in state.completions.values():
                self.budget.charge(completion.usage.as_usage())
        self._unsent = len(pending)
        self._to_grade = asyncio.Queue(maxsize=self.max_ungraded)
        groups = group_requests(pending, self.sampling)
        self._incremental = self.backend if isinstance(self.backend, Incremental) else None
        if self._incremental is not None and any(len(g) > 1 for _, g in groups):
            await self._incremental.detect_n()  # before any request holds room for n samples
        expected = self.order.expected() if self.order is not None and groups else {}
        queue = SendQueue(groups, expected, self.concurrency)
        graders = [asyncio.create_task(self._grader()) for _ in range(max(1, self.pool.workers))]
        producers = [asyncio.create_task(self._regrade(ungraded)),
                     asyncio.create_task(self._dispatch(queue))]
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
        responses = read_responses(self.folder.path, {item.key for item in items})
        for item in items:
            await self._grade(item, responses.pop(item.key))

    def _ignores_n(self) -> bool:
        return self._incremental is not None and self._incremental.ignores_n

    async def _dispatch(self, queue: SendQueue) -> None:
        """Send the queue's samples, as many at a time as the limit has room for."""
        limit = SequenceLimit(self.concurrency)
        sending: set[asyncio.Task[None]] = set()
        ended: list[asyncio.Task[None]] = []  # requests done since the last look
        try:
            while self._fatal is None:
                while ended:
                    task = ended.pop()
                    sending.discard(task)
                    task.result()  # a failure that is not the endpoint's (the disk) stops all
                if not queue:
                    if not sending:
                        break
                    await asyncio.wait(sending, return_when=asyncio.FIRST_COMPLETED)
                    continue  # a server that ignores n may have sent back samples to ask for
                room = await limit.take(self.concurrency)
                if self._fatal is not None or not queue:
                    limit.give(room)
                    continue
                chunk = queue.take(room, 1 if self._ignores_n() else None)
                limit.give(room - chunk.request.n)
                if self.budget is not None and not self.budget.reserve(chunk.request):
                    limit.give(chunk.request.n)
                    queue.lost(chunk, chunk.request.n)
                    queue.put_back(chunk, chunk.items)
                    self._fatal = self.budget.reached(not_sent=self._unsent)
                    break
                self._unsent -= chunk.request.n
                task = asyncio.create_task(self._send(chunk, limit, queue))
                task.add_done_callback(ended.append)
                sending.add(task)
                # let the request go on the wire before the next is built: with hundreds of
                # slots free at once (the start of a run) the first would otherwise wait for
                # all of them to be prepared, the server's slots idle meanwhile
                await asyncio.sleep(0)
            if sending:  # stopped: the requests in flight finish, and what they bring is kept
                await asyncio.gather(*sending)
        finally:
            for task in sending:
                task.cancel()

    async def _send(self, chunk: Chunk, limit: SequenceLimit, queue: SendQueue) -> None:
        """One request: each completion logged, graded and its room freed as it arrives
        (once its answer is queued for grading: sending waits while grading is behind)."""
        request, group = chunk.request, chunk.items
        delivered = freed = 0

        async def deliver(completion: Completion) -> None:
            nonlocal delivered, freed
            item = group[delivered]
            delivered += 1
            queue.finished(chunk)
            self._failures_in_a_row = 0
            record = completion_record(item, completion)
            self.folder.append(record)
            if self.budget is not None:
                self.budget.charge(Usage(**record["usage"]))
            self.progress.received(completion)
            await self._grade(item, completion)
            limit.give(1)
            freed += 1

        try:
            if self._incremental is not None:
                await self._incremental.generate_each(request, deliver)
            else:
                await generate_whole(self.backend, request, deliver)
        except RequestFailed as error:
            self._record_errors(group[delivered:], str(error), error.transient, error.status)
            return
        except EndpointError as error:
            self._fatal = error
            return
        finally:
            queue.lost(chunk, request.n - delivered)
            limit.give(request.n - freed)
            if self.budget is not None:
                self.budget.release(request)
        missing = group[delivered:]
        if missing and self._ignores_n():  # asked again, one request each
            queue.put_back(chunk, missing)
            self._unsent += len(missing)
        elif missing:
            message = f"endpoint returned {delivered} of {len(group)} responses"
            self._record_errors(missing, message, True, None)

    def _record_errors(
        self, items: list[WorkItem], message: str, transient: bool, status: int | None
    ) -> None:
        if not items:
            return
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


class SequenceLimit:
    """Room for at most ``size`` samples in flight, taken by one sender and given back by
    the requests as their samples arrive."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._freed = asyncio.Event()

    async def take(self, most: int) -> int:
        """Wait for room, then take as much as there is, up to ``most``."""
        while self._free == 0:
            self._freed.clear()
            await self._freed.wait()
        taken = min(self._free, most)
        self._free -= taken
        return taken

    def give(self, count: int) -> None:
        if count:
            self._free += count
            self._freed.set()


async def generate_whole(
    backend: Backend, request: Request, deliver: Callable[[Completion], Awaitable[None]]
) -> None:
    """A backend that is not ``Incremental``: its whole answer, delivered completion by
    completion."""
    for completion in (await backend.generate(request))[: request.n]:
        await deliver(completion)


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
