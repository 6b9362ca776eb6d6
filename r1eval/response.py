"""Split a response into its reasoning and its final answer, and grade only the answer.

Only the final answer is graded: a ``\\boxed{}`` or ``Answer: B`` inside the reasoning is a
draft, not the model's answer. A response cut off before its reasoning ended has no answer at
all (it is reported as truncated, never graded). This module imports no math library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from r1eval.types import Completion, Grade

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"

Grader = Callable[[str, str], Grade]


@dataclass(frozen=True)
class FinalAnswer:
    """A response split in two; ``answer`` is None when there is nothing to grade."""

    reasoning: str | None
    answer: str | None
    truncated: bool
    note: str


def split_response(completion: Completion) -> FinalAnswer:
    """Find the final answer of a completion (see the module docstring)."""
    text = completion.text
    truncated = completion.finish_reason == "length"
    if completion.reasoning is not None:
        # Some servers still leak a closing tag into the content: cut at it as well.
        answer = text.rpartition(CLOSE_TAG)[2]
        return _final(completion.reasoning, answer, truncated, "reasoning given separately")
    if CLOSE_TAG in text:
        before, _, answer = text.rpartition(CLOSE_TAG)
        note = f"answer after the last {CLOSE_TAG}"
        return _final(_without_open_tag(before), answer, truncated, note)
    if OPEN_TAG in text:
        note = f"unterminated reasoning: {OPEN_TAG} without {CLOSE_TAG}"
        return FinalAnswer(_without_open_tag(text), None, truncated, note)
    if truncated:
        note = "cut off at the length limit with no think tags: reasoning and answer inseparable"
        return FinalAnswer(None, None, True, note)
    return _final(None, text, False, "no think tags: the whole text is the answer")


def _without_open_tag(reasoning: str) -> str:
    return reasoning.strip().removeprefix(OPEN_TAG).strip()


def _final(reasoning: str | None, answer: str, truncated: bool, note: str) -> FinalAnswer:
    answer = answer.strip()
    if not answer:
        return FinalAnswer(reasoning, None, truncated, f"{note}; the answer is empty")
    return FinalAnswer(reasoning, answer, truncated, note)


def final_answer(completion: Completion) -> str | Grade:
    """The final answer of ``completion`` to give a grader, or, when it has none, its grade:
    failed as ``truncated`` (cut off at the length limit) or ``no_answer``."""
    final = split_response(completion)
    if final.answer is None:
        return Grade(
            correct=False,
            extracted=None,
            canonical=None,
            method=None,
            failure="truncated" if final.truncated else "no_answer",
            explanation=final.note,
        )
    return final.answer


def grade_completion(completion: Completion, gold: str, grader: Grader) -> Grade:
    """Grade the final answer of ``completion`` against ``gold`` with ``grader``.

    A completion without a final answer is not passed to the grader (see ``final_answer``).
    """
    answer = final_answer(completion)
    return answer if isinstance(answer, Grade) else grader(answer, gold)
