"""Grading: math answers (math-verify), multiple-choice letters, and the worker pool.

A grader is a module-level function ``(final_answer_text, gold) -> Grade``; the final answer
is found first by ``r1eval.grading.final_answer.split_response`` (reasoning removed).

The names below are imported on first use: finding the final answer
(``final_answer``) must not load math-verify and sympy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOMES = {
    "DEFAULT_LETTERS": "r1eval.grading.choice_answers",
    "TEN_LETTERS": "r1eval.grading.choice_answers",
    "extract_choice": "r1eval.grading.choice_answers",
    "grade_choice": "r1eval.grading.choice_answers",
    "grade_choice_up_to_ten": "r1eval.grading.choice_answers",
    "Box": "r1eval.grading.math_answers",
    "canonical_form": "r1eval.grading.math_answers",
    "find_boxes": "r1eval.grading.math_answers",
    "grade_math": "r1eval.grading.math_answers",
    "normalise_digit_groups": "r1eval.grading.math_answers",
    "parse_gold": "r1eval.grading.math_answers",
    "GraderPool": "r1eval.grading.pool",
    "call_grader": "r1eval.grading.pool",
    "preload_math_verify": "r1eval.grading.pool",
}

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


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'r1eval.grading' has no attribute {name!r}")
