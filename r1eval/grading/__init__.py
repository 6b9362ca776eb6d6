"""Grading: math answers (math-verify), multiple-choice letters, and the worker pool.

A grader is a module-level function ``(final_answer_text, gold) -> Grade``; the final answer
is found first by ``r1eval.grading.final_answer.split_response`` (reasoning removed).
"""

from r1eval.grading.choice_answers import (
    DEFAULT_LETTERS,
    TEN_LETTERS,
    extract_choice,
    grade_choice,
    grade_choice_up_to_ten,
)
from r1eval.grading.math_answers import (
    Box,
    canonical_form,
    find_boxes,
    grade_math,
    normalise_digit_groups,
    parse_gold,
)
from r1eval.grading.pool import GraderPool, call_grader, preload_math_verify

__all__ = [
    "DEFAULT_LETTERS",
    "TEN_LETTERS",
    "Box",
    "GraderPool",
    "call_grader",
    "canonical_form",
    "extract_choice",
    "find_boxes",
    "grade_choice",
    "grade_choice_up_to_ten",
    "grade_math",
    "normalise_digit_groups",
    "parse_gold",
    "preload_math_verify",
]
