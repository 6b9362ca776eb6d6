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
