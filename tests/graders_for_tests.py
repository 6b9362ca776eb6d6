"""Module-level graders for the grader pool tests (worker processes import them by name)."""

from __future__ import annotations

import os
import time

from r1eval.types import Grade


def exact(answer: str, gold: str) -> Grade:
    """Correct when the answer is the gold string itself."""
    correct = answer == gold
    return Grade(correct, answer, answer, "exact", None if correct else "wrong")


def sleep_forever(answer: str, gold: str) -> Grade:
    time.sleep(3600)
    raise AssertionError("unreachable")


def raise_error(answer: str, gold: str) -> Grade:
    raise ValueError(f"cannot grade {answer!r}\nsecond line")


def exit_abruptly(answer: str, gold: str) -> Grade:
    os._exit(3)


def exact_after_a_second(answer: str, gold: str) -> Grade:
    time.sleep(1.0)
    return exact(answer, gold)


def hang_the_first_time(answer: str, gold: str) -> Grade:
    """Hangs (until killed) unless the file ``answer`` exists, which it creates: a grade that
    is slow once, as under a passing load."""
    if not os.path.exists(answer):
        with open(answer, "w", encoding="utf-8"):
            pass
        time.sleep(3600)
    return exact(gold, gold)


def spin(seconds: float) -> None:
    """Keep one core busy for ``seconds`` (a CPU hog for the load tests)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass
