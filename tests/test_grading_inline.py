"""Answers graded without a worker: the same grade as the grader gives in a worker, and only
for the graders and answers that cannot hang."""

from __future__ import annotations

import pytest

from r1eval.grading import grade_choice, grade_choice_up_to_ten, grade_math
from r1eval.grading.inline import MAX_INLINE_CHARS, inline_grade
from r1eval.grading.pool import GraderPool
from r1eval.types import Grade


def custom_grader(answer: str, gold: str) -> Grade:
    return Grade(answer == gold, answer, answer, "custom", None if answer == gold else "wrong")


@pytest.mark.parametrize(
    ("grader", "answer", "gold"),
    [
        (grade_choice, "Answer: B", "B"),
        (grade_choice, "Answer: C", "B"),
        (grade_choice, "I cannot tell.", "A"),
        (grade_choice_up_to_ten, "The answer is (J)", "J"),
        (grade_choice_up_to_ten, "Answer: H", "G"),
        (grade_math, "so \\boxed{42}", "42"),
        (grade_math, "\\boxed{041}", "41"),
        (grade_math, "\\boxed{-7}", "7"),
        (grade_math, "the answer is 5", "5"),  # a stated plain integer
        (grade_math, "\\boxed{255}. Final Answer: The final answer is $10455$.", "10455"),
    ],
)
def test_inline_grades_equal_the_workers(grader, answer: str, gold: str) -> None:
    inline = inline_grade(grader, answer, gold)
    assert inline is not None
    with GraderPool(workers=1) as pool:
        # a custom wrapper is never inline: this goes through the worker
        in_worker = pool.grade(_Forwarding(grader), answer, gold)
    assert inline == in_worker


class _Forwarding:
    """A grader the inline rules do not know, calling a known one (picklable)."""

    def __init__(self, grader) -> None:
        self.grader = grader

    def __call__(self, answer: str, gold: str) -> Grade:
        return self.grader(answer, gold)


@pytest.mark.parametrize(
    ("grader", "answer", "gold"),
    [
        (grade_math, "\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),  # sympy needed
        (grade_math, "\\boxed{2}", "\\sqrt{4}"),
        (grade_math, "the answer is \\frac{1}{2}", "0.5"),  # stated, sympy needed
        (grade_choice, "Answer: B", "not a letter"),  # a bad gold: the worker reports it
        (grade_choice, "x" * MAX_INLINE_CHARS + " Answer: B", "B"),  # too long
        (custom_grader, "1", "1"),
    ],
)
def test_what_needs_a_worker_is_left_to_one(grader, answer: str, gold: str) -> None:
    assert inline_grade(grader, answer, gold) is None
