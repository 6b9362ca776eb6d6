"""The grader pool, with real worker processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from r1eval.grading.math_answers import grade_math
from r1eval.grading.pool import RETRY_FACTOR, GraderPool, preload_math_verify
from r1eval.types import Grade

from graders_for_tests import (
    exact,
    exit_abruptly,
    hang_the_first_time,
    raise_error,
    sleep_forever,
    spin,
)


def child_pids() -> set[int | None]:
    return {child.pid for child in multiprocessing.active_children()}


@pytest.fixture()
def pool() -> Iterator[GraderPool]:
    before = child_pids()
    with GraderPool(workers=2, timeout_s=2.0) as pool:
        yield pool
    assert child_pids() <= before, "worker processes left behind"


def test_grades_math_in_a_worker(pool: GraderPool) -> None:
    grade = pool.grade(grade_math, "so \\boxed{\\frac{1}{2}}", "0.5")
    assert (grade.correct, grade.method, grade.extracted) == (True, "boxed", "\\frac{1}{2}")


def test_a_stuck_grader_times_out_and_the_pool_recovers(pool: GraderPool) -> None:
    assert pool.grade(exact, "1", "1").correct  # both workers may still be starting: wait
    started = time.monotonic()
    grade = pool.grade(sleep_forever, "1", "1")
    elapsed = time.monotonic() - started
    assert (grade.correct, grade.failure) == (False, "grader_timeout")
    assert elapsed >= 2.0 * (1 + RETRY_FACTOR)  # killed at each limit, not before
    assert f"more than 2 s, then more than {2 * RETRY_FACTOR} s" in grade.explanation
    for _ in range(3):  # every worker, the replacement included, grades again
        assert pool.grade(grade_math, "\\boxed{3}", "3").correct


def test_a_grader_exception_is_a_grader_error(pool: GraderPool) -> None:
    grade = pool.grade(raise_error, "x", "1")
    assert (grade.correct, grade.failure, grade.method) == (False, "grader_error", None)
    assert "ValueError" in grade.explanation and "\n" not in grade.explanation
    assert pool.grade(exact, "1", "1").correct


def test_a_dying_worker_is_replaced(pool: GraderPool) -> None:
    grade = pool.grade(exit_abruptly, "1", "1")
    assert (grade.correct, grade.failure) == (False, "grader_error")
    assert "died (exit code 3)" in grade.explanation
    for _ in range(3):
        assert pool.grade(exact, "2", "2").correct


def test_a_worker_killed_while_idle_is_replaced() -> None:
    before = child_pids()
    with GraderPool(workers=1, timeout_s=5.0) as pool:
        assert pool.grade(exact, "1", "1").correct
        (worker_pid,) = child_pids() - before
        assert worker_pid is not None
        os.kill(worker_pid, signal.SIGKILL)
        time.sleep(0.2)
        grade = pool.grade(exact, "1", "1")
        assert (grade.correct, grade.failure) == (False, "grader_error")
        assert pool.grade(exact, "1", "1").correct
    assert child_pids() <= before


def test_concurrent_jobs_from_many_threads(pool: GraderPool) -> None:
    jobs = [(f"\\boxed{{{i}}}", str(i if i % 2 == 0 else i + 1)) for i in range(20)]
    with ThreadPoolExecutor(max_workers=8) as threads:
        grades = list(threads.map(lambda job: pool.grade(grade_math, *job), jobs))
    assert [grade.extracted for grade in grades] == [str(i) for i in range(20)]
    assert [grade.correct for grade in grades] == [i % 2 == 0 for i in range(20)]


def test_close_stops_every_worker() -> None:
    before = child_pids()
    pool = GraderPool(workers=3, timeout_s=5.0)
    pool.start()
    assert len(child_pids() - before) == 3
    assert pool.grade(exact, "a", "a").correct
    pool.close()
    assert child_pids() <= before
    with pytest.raises(RuntimeError, match="closed"):
        pool.grade(exact, "a", "a")


def test_inline_mode_grades_in_the_calling_thread() -> None:
    before = child_pids()
    with GraderPool(workers=0) as pool:
        assert child_pids() == before
        assert pool.grade(grade_math, "\\boxed{1\\,000}", "1000").correct
        assert pool.grade(raise_error, "x", "1").failure == "grader_error"
        with ThreadPoolExecutor(max_workers=2) as threads:
            grade = threads.submit(pool.grade, grade_math, "\\boxed{2}", "2").result()
        assert grade.correct


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        GraderPool(workers=-1)
    with pytest.raises(ValueError):
        GraderPool(workers=0, timeout_s=0)


def test_the_event_loop_grades_without_threads(pool: GraderPool) -> None:
    """``grade_async``: the same outcomes as ``grade`` (timeouts, deaths, errors), awaited on
    the event loop; several coroutines share the two workers."""

    async def grade_all() -> list[tuple[bool, str | None]]:
        jobs = [(exact, "1", "1"), (sleep_forever, "1", "1"), (exit_abruptly, "1", "1"),
                (raise_error, "x", "1"), *[(grade_math, f"\\boxed{{{i}}}", "3") for i in range(6)]]
        grades = await asyncio.gather(*(pool.grade_async(*job) for job in jobs))
        return [(grade.correct, grade.failure) for grade in grades]

    outcomes = asyncio.run(grade_all())
    assert outcomes[:4] == [(True, None), (False, "grader_timeout"), (False, "grader_error"),
                            (False, "grader_error")]
    assert outcomes[4:] == [(i == 3, None if i == 3 else "wrong") for i in range(6)]
    assert asyncio.run(pool.grade_async(exact, "2", "2")).correct  # another event loop


def test_a_cancelled_grade_replaces_its_worker(pool: GraderPool) -> None:
    async def cancel_one() -> None:
        task = asyncio.ensure_future(pool.grade_async(sleep_forever, "1", "1"))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_one())
    for _ in range(3):  # no worker is left busy with the cancelled answer
        assert asyncio.run(pool.grade_async(exact, "1", "1")).correct


def test_inline_mode_grades_coroutines_in_a_thread() -> None:
    with GraderPool(workers=0) as pool:
        assert asyncio.run(pool.grade_async(grade_math, "\\boxed{2}", "2")).correct


def test_workers_start_only_when_an_answer_needs_one() -> None:
    before = child_pids()
    with GraderPool(workers=2) as pool:
        assert child_pids() == before  # nothing to grade yet: no process
        assert pool.grade(grade_math, "\\boxed{7}", "7").correct  # graded inline
        assert child_pids() == before
        assert pool.grade(exact, "1", "1").correct  # a worker is needed: both start
        assert len(child_pids() - before) == 2
    assert child_pids() <= before


#: A parent that starts two workers, gives one a grade that takes a second, and is killed:
#: the busy worker's answer then meets a broken pipe, the idle one's wait an end of file.
KILLED_PARENT = """
import os, signal, sys, threading, time
sys.path.insert(0, sys.argv[1])
from r1eval.grading.pool import GraderPool
from graders_for_tests import exact, exact_after_a_second
pool = GraderPool(workers=2, timeout_s=30.0)
pool.start()
assert pool.grade(exact, "1", "1").correct
threading.Thread(target=pool.grade, args=(exact_after_a_second, "1", "1"), daemon=True).start()
time.sleep(0.3)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_workers_of_a_killed_parent_exit_without_a_traceback() -> None:
    import subprocess
    import sys
    from pathlib import Path

    tests = str(Path(__file__).resolve().parent)
    # stderr is read to its end: until the workers, which share it, have exited too
    done = subprocess.run([sys.executable, "-c", KILLED_PARENT, tests], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == -signal.SIGKILL
    assert "Traceback" not in done.stderr and "Error" not in done.stderr, done.stderr


def test_a_grade_that_timed_out_once_is_retried_with_a_longer_limit(tmp_path) -> None:
    """Issue 14, item 10: a slow grade (a loaded machine) gets a second, longer chance."""
    with GraderPool(workers=1, timeout_s=1.0) as pool:
        grade = pool.grade(hang_the_first_time, str(tmp_path / "once"), "7")
        assert (grade.correct, grade.failure) == (True, None)

        async def on_the_loop() -> Grade:
            return await pool.grade_async(hang_the_first_time, str(tmp_path / "again"), "7")

        assert asyncio.run(on_the_loop()).correct


def test_the_warm_up_goes_through_math_verifys_latex_parser(monkeypatch) -> None:
    """The plain-integer shortcut never reaches math-verify: a warm-up through it left the
    parser cold for the first real answer."""
    from r1eval.grading import math_answers

    parsed: list[str] = []
    real = math_answers.parse
    monkeypatch.setattr(math_answers, "parse",
                        lambda text, *a, **k: parsed.append(text) or real(text, *a, **k))
    math_answers._parsed_gold.cache_clear()
    preload_math_verify()
    assert any("\\frac" in text and "\\left" in text for text in parsed)


LOAD_ANSWERS = [
    ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("\\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{\\sqrt{2}}{2}"),
    ("\\boxed{(-\\infty,0]}", "(-\\infty, 0]"),
    ("\\boxed{\\begin{pmatrix} -2 \\\\ -14 \\end{pmatrix}}",
     "\\begin{pmatrix} -2 \\\\ -14 \\end{pmatrix}"),
    ("$\\boxed{1}$ and $\\boxed{-2}$", "1,-2"),
    ("\\boxed{1 + \\sqrt{19}, 1 - \\sqrt{19}}", "1 \\pm \\sqrt{19}"),
    ("The final answer is \\dfrac{1}{3}", "\\frac{1}{3}"),
    ("So, the final answer is east.", "\\text{east}"),
    ("\\boxed{4343_5}", "4343_6"),
    ("\\boxed{0.25}", "25\\%"),
    ("\\boxed{\\frac{3}{2}}", "1.5"),
    ("\\boxed{x^2 + 2x + 1}", "(x+1)^2"),
    ("\\boxed{(0,9)\\cup(9,36)}", "(0,9) \\cup (9,36)"),
    ("\\boxed{12^{\\text{th}}}", "12"),
] * 3


def _fields(grade: Grade) -> tuple[object, ...]:
    return (grade.correct, grade.extracted, grade.canonical, grade.method, grade.failure)


@pytest.mark.slow
def test_the_same_grades_with_one_worker_and_with_many_under_load() -> None:
    """Issue 14, item 10: one worker on a quiet machine, and four workers while processes
    spin on every core, give the same grade to every answer (no timing is asserted)."""
    with GraderPool(workers=1) as pool:
        quiet = [_fields(pool.grade(grade_math, *job)) for job in LOAD_ANSWERS]
    context = multiprocessing.get_context("spawn")
    hogs = [context.Process(target=spin, args=(120.0,), daemon=True)
            for _ in range(2 * (os.cpu_count() or 1))]
    for hog in hogs:
        hog.start()
    try:
        with GraderPool(workers=4) as pool, ThreadPoolExecutor(max_workers=8) as threads:
            loaded = list(threads.map(lambda job: _fields(pool.grade(grade_math, *job)),
                                      LOAD_ANSWERS))
    finally:
        for hog in hogs:
            hog.kill()
            hog.join()
    assert loaded == quiet
    assert all(failure is None or failure == "wrong" for *_, failure in quiet)
