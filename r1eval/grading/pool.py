"""Run graders in worker processes, with a wall-clock limit per answer.

math-verify bounds its own work with ``signal.alarm``, which works only in a process's main
thread, and a single huge integer operation can hold the GIL for minutes. So each answer is
graded in the main thread of a worker process; a worker that does not answer within
``timeout_s`` is killed (SIGKILL) and replaced, and the answer is graded once more with
``RETRY_FACTOR`` times the limit before it fails as ``grader_timeout``: on a loaded machine
(more grading workers than cores), a slow grade must not become a different verdict. Answers
that cannot hang and cost less to grade than to send to a worker (letters, plain integers:
``r1eval.grading.inline``) are graded in the calling process.

``grade`` may be called from many threads at once: each call borrows one idle worker.
``grade_async`` does the same for coroutines of one event loop, waiting for the worker on the
loop itself. Use one or the other with a pool, not both at once.

Why both: a thread that waits on a worker's pipe needs the GIL back at every step of every
answer, and while an event loop keeps the GIL busy (receiving responses) each hand-over takes up
to the interpreter's switch interval (5 ms). Graded from threads, a run receiving responses
faster than a few hundred a second falls behind, and holds every response received but not yet
graded in memory; graded on the loop, it keeps up.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from types import TracebackType

from r1eval.grading.inline import inline_grade
from r1eval.grading.math_answers import grade_math
from r1eval.types import FailureReason, Grade, Grader

STARTUP_TIMEOUT_S = 120.0
RETRY_FACTOR = 2
_READY = "ready"
# Through math-verify's LaTeX parser and sympy (not the plain-integer shortcut): a tuple, a
# fraction, pi, \left...\right, a set. Cold, the first such answer takes several times longer.
WARM_UP = (("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),
           ("The answer is $\\dfrac{\\sqrt{3}}{2}$.", "\\frac{\\sqrt3}{2}"),
           ("\\boxed{1} and \\boxed{-2}", "1,-2"))


def preload_math_verify() -> None:
    """Default worker initializer: import math-verify and grade through its LaTeX parser and
    sympy once, so no job pays for warming them up (under load, a cold parser can time out)."""
    for answer, gold in WARM_UP:
        grade_math(answer, gold)


def call_grader(grader: Grader, answer: str, gold: str) -> Grade:
    """Run ``grader``, turning any exception it raises into a ``grader_error`` grade.

    The one place where every ``Exception`` is caught: a grader bug or a pathological input
    must cost one answer, not the run; the error's repr is kept on the grade.
    """
    try:
        return grader(answer, gold)
    except Exception as error:  # deliberate: reported on the grade, see the docstring
        return _failed("grader_error", f"grader raised {_one_line(error)}")


class GraderPool:
    """Worker processes that grade answers; use as a context manager, or call ``close()``.

    ``workers=0`` grades inline in the calling thread: no process, no wall-clock limit, and
    math-verify's own timeouts are off unless the calling thread is the main thread.
    The worker processes start at ``start()``, or when the first answer needs one: a pool
    with nothing to grade (a finished run reopened; letters only) costs no process.
    ``close()`` must be called after the last ``grade()`` has returned.
    """

    def __init__(
        self,
        workers: int | None = None,
        timeout_s: float = 30.0,
        initializer: Callable[[], None] | None = preload_math_verify,
    ) -> None:
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        if self.workers < 0 or timeout_s <= 0:
            raise ValueError("workers must be >= 0 and timeout_s > 0")
        self.timeout_s = timeout_s
        self._initializer = initializer
        self._context = multiprocessing.get_context("spawn")
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._live: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._free: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self._started = False

    def start(self) -> None:
        """Start the worker processes now (they take about a second to import math-verify),
        rather than when the first answer needs one."""
        with self._lock:
            if self._started or self._closed:
                return
            self._started = True
        for _ in range(self.workers):
            self._idle.put(self._start_worker())

    def grade(self, grader: Grader, answer: str, gold: str) -> Grade:
        """``grader(answer, gold)`` in a worker; failures come back as a failed ``Grade``."""
        if self._closed:
            raise RuntimeError("the grader pool is closed")
        if (inline := inline_grade(grader, answer, gold)) is not None:
            return inline
        if self.workers == 0:
            return call_grader(grader, answer, gold)
        self.start()
        grade = self._grade_once(grader, answer, gold, self.timeout_s)
        if grade.failure == "grader_timeout" and grade.method == _KILLED:
            grade = self._grade_once(grader, answer, gold, self.timeout_s * RETRY_FACTOR)
        return _retried(grade, self.timeout_s)

    def _grade_once(self, grader: Grader, answer: str, gold: str, timeout_s: float) -> Grade:
        worker = self._idle.get()
        try:
            grade = worker.run(grader, answer, gold, timeout_s)
        except _WorkerLost as lost:
            worker = self._replace(worker)
            grade = lost.grade
        finally:
            self._idle.put(worker)
        return grade

    async def grade_async(self, grader: Grader, answer: str, gold: str) -> Grade:
        """``grade`` for a coroutine: waits for an idle worker and for its answer on the
        running event loop, never blocking it (``workers=0``: grades in a thread)."""
        if self._closed:
            raise RuntimeError("the grader pool is closed")
        if (inline := inline_grade(grader, answer, gold)) is not None:
            return inline
        if self.workers == 0:
            return await asyncio.to_thread(call_grader, grader, answer, gold)
        self.start()
        grade = await self._grade_once_async(grader, answer, gold, self.timeout_s)
        if grade.failure == "grader_timeout" and grade.method == _KILLED:
            grade = await self._grade_once_async(grader, answer, gold,
                                                 self.timeout_s * RETRY_FACTOR)
        return _retried(grade, self.timeout_s)

    async def _grade_once_async(
        self, grader: Grader, answer: str, gold: str, timeout_s: float
    ) -> Grade:
        async with self._idle_workers():
            worker = self._idle.get_nowait()
            try:
                grade = await worker.run_async(grader, answer, gold, timeout_s)
            except _WorkerLost as lost:
                worker = self._replace(worker)
                grade = lost.grade
            except asyncio.CancelledError:  # the worker may still be busy with this answer
                worker = self._replace(worker)
                raise
            finally:
                self._idle.put(worker)
        return grade

    def _idle_workers(self) -> asyncio.Semaphore:
        """The idle workers as a semaphore of the running event loop (``grade_async``)."""
        loop = asyncio.get_running_loop()
        if self._free is None or self._free[0] is not loop:
            self._free = (loop, asyncio.Semaphore(self.workers))
        return self._free[1]

    def close(self) -> None:
        """Stop every worker and reap it; no process is left behind."""
        with self._lock:
            self._closed = True
            workers, self._live = list(self._live), set()
        for worker in workers:
            worker.stop()

    def __enter__(self) -> GraderPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _start_worker(self) -> _Worker:
        worker = _Worker(self._context, self._initializer)
        with self._lock:
            self._live.add(worker)
        return worker

    def _replace(self, worker: _Worker) -> _Worker:
        """Kill ``worker`` and start another (not once the pool is closed)."""
        self._retire(worker)
        return worker if self._closed else self._start_worker()

    def _retire(self, worker: _Worker) -> None:
        with self._lock:
            if worker not in self._live:
                return  # already stopped by ``close``
            self._live.discard(worker)
        worker.stop(graceful=False)


class _WorkerLost(Exception):
    """The worker timed out or died; ``grade`` is what to report for the answer."""

    def __init__(self, grade: Grade) -> None:
        super().__init__(grade.explanation)
        self.grade = grade


class _Worker:
    """One worker process and the parent's end of its pipe. Used by one thread at a time."""

    def __init__(self, context: SpawnContext, initializer: Callable[[], None] | None) -> None:
        self._conn, child_conn = context.Pipe()
        self._process: BaseProcess = context.Process(
            target=_worker_main, args=(child_conn, initializer), daemon=True
        )
        self._process.start()
        child_conn.close()
        self._ready = False

    def run(self, grader: Grader, answer: str, gold: str, timeout_s: float) -> Grade:
        """Grade one answer; raises ``_WorkerLost`` when the worker must be replaced."""
        if not self._ready:
            self._receive(STARTUP_TIMEOUT_S, "to start")
            self._ready = True
        self._send(grader, answer, gold)
        return self._grade(self._receive(timeout_s, "to grade"))

    async def run_async(self, grader: Grader, answer: str, gold: str, timeout_s: float) -> Grade:
        """``run``, waiting for the worker on the running event loop."""
        if not self._ready:
            await self._readable(STARTUP_TIMEOUT_S, "to start")
            self._receive(0, "to start")
            self._ready = True
        self._send(grader, answer, gold)
        await self._readable(timeout_s, "to grade")
        return self._grade(self._receive(0, "to grade"))

    def _send(self, grader: Grader, answer: str, gold: str) -> None:
        try:
            self._conn.send((grader, answer, gold))
        except OSError as error:  # broken pipe: the worker died while idle
            raise self._died() from error

    @staticmethod
    def _grade(result: object) -> Grade:
        if not isinstance(result, Grade):
            raise TypeError(f"grader returned {type(result).__name__}, not Grade")
        return result

    async def _readable(self, timeout_s: float, doing: str) -> None:
        """Wait until the worker has answered (or died: its end of the pipe then reads EOF)."""
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[None] = loop.create_future()
        fd = self._conn.fileno()

        def wake() -> None:
            if not answered.done():
                answered.set_result(None)

        loop.add_reader(fd, wake)
        try:
            await asyncio.wait_for(answered, timeout_s)
        except TimeoutError:
            raise self._timed_out(timeout_s, doing) from None
        finally:
            loop.remove_reader(fd)

    def _receive(self, timeout_s: float, doing: str) -> object:
        try:
            if self._conn.poll(timeout_s):
                return self._conn.recv()
        except (EOFError, OSError) as error:
            raise self._died() from error
        raise self._timed_out(timeout_s, doing)

    @staticmethod
    def _timed_out(timeout_s: float, doing: str) -> _WorkerLost:
        why = f"grader worker took more than {timeout_s:g} s {doing}"
        return _WorkerLost(Grade(False, None, None, _KILLED, "grader_timeout", why))

    def _died(self) -> _WorkerLost:
        self._process.join(timeout=5)
        status = self._process.exitcode
        return _WorkerLost(_failed("grader_error", f"grader worker died (exit code {status})"))

    def stop(self, graceful: bool = True) -> None:
        """Ask the worker to exit (or not, if not ``graceful``), kill it if alive, reap it."""
        if graceful and self._process.is_alive():
            with contextlib.suppress(OSError):  # the worker is already gone (broken pipe)
                self._conn.send(None)
            self._process.join(timeout=2)
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._process.close()
        self._conn.close()


def _worker_main(conn: Connection, initializer: Callable[[], None] | None) -> None:
    """A worker's main thread: grade each (grader, answer, gold) received until ``None``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business
    if initializer is not None:
        initializer()
    with contextlib.suppress(EOFError, OSError):  # the parent died (killed): exit quietly
        conn.send(_READY)
        while (job := conn.recv()) is not None:
            conn.send(call_grader(*job))
        conn.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # nothing to clean up: skip tearing down sympy's modules (slow)


_KILLED = "killed"  # the method of a grade whose worker was killed at the time limit


def _retried(grade: Grade, first_limit: float) -> Grade:
    """A worker killed at the limit twice: say so (method None, as for any grader failure)."""
    if grade.method != _KILLED:
        return grade
    # "grader worker took more than 30 s, then more than 60 s to grade"
    why = grade.explanation.replace("more than", f"more than {first_limit:g} s, then more than", 1)
    return Grade(False, None, None, None, "grader_timeout", why)


def _failed(failure: FailureReason, explanation: str) -> Grade:
    return Grade(False, None, None, None, failure, explanation)


def _one_line(error: BaseException) -> str:
    return " ".join(repr(error).split())[:300]
