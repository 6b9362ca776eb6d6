"""Answers cheap and safe enough to grade in the calling process, without a worker.

Grading in a worker process costs a round trip through a pipe (pickling both ways) and a
wake-up of the caller; for a multiple-choice letter (a few regular expressions, linear in the
text) or a plain integer against a plain-integer gold (every AIME answer, most of MATH-500's)
that costs more than grading itself. Neither can hang (no sympy; the text is bounded), which is
what workers, with their wall-clock kill, are for. Any other grader, or a longer answer, goes
to a worker.
"""

from __future__ import annotations

from r1eval.grading.choice_answers import grade_choice, grade_choice_up_to_ten
from r1eval.grading.math_answers import grade_math, integer_grade
from r1eval.types import Grade, Grader

__all__ = ["MAX_INLINE_CHARS", "inline_grade"]

#: Longer final answers go to a worker whatever the grader.
MAX_INLINE_CHARS = 10_000


def inline_grade(grader: Grader, answer: str, gold: str) -> Grade | None:
    """The grade of ``answer`` when it can be decided here, the same as ``grader`` gives it in
    a worker; None when a worker must decide."""
    if len(answer) > MAX_INLINE_CHARS:
        return None
    if grader is grade_choice or grader is grade_choice_up_to_ten:
        try:
            return grader(answer, gold)
        except ValueError:  # a malformed gold: the worker reports it as a grader_error
            return None
    if grader is grade_math:
        return integer_grade(answer, gold)
    return None
