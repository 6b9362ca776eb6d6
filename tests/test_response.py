"""Splitting a response into reasoning and final answer, and grading only the answer."""

from __future__ import annotations

import subprocess
import sys

import pytest

from r1eval.grading.choice_answers import grade_choice
from r1eval.grading.math_answers import grade_math
from r1eval.response import FinalAnswer, Grader, grade_completion, split_response
from r1eval.types import Completion, Grade


def completion(text: str, finish: str | None = "stop", reasoning: str | None = None) -> Completion:
    return Completion(text=text, reasoning=reasoning, finish_reason=finish)


R = "work \\boxed{5}"
# (id, completion, expected reasoning, expected answer, expected truncated)
SPLITS = [
    ("both-tags", completion("<think>\nwork\n</think>\n\n\\boxed{3}"), "work", "\\boxed{3}", False),
    ("closing-tag-only", completion("work\n</think>\nAnswer: B"), "work", "Answer: B", False),
    ("last-closing-tag-wins", completion("a</think>b</think> c "), "a</think>b", "c", False),
    ("separate-reasoning", completion(" 42 ", reasoning="work"), "work", "42", False),
    ("leaked-tag", completion("x</think>42", reasoning="work"), "work", "42", False),
    ("separate-reasoning-cut", completion("", "length", reasoning="work"), "work", None, True),
    ("separate-reasoning-empty", completion("  ", reasoning=""), "", None, False),
    ("unterminated-cut", completion("<think>\nwork \\boxed{5}", "length"), R, None, True),
    ("unterminated-stop", completion("<think>\nwork \\boxed{5}"), R, None, False),
    ("no-tags", completion("The answer is 9."), None, "The answer is 9.", False),
    ("no-tags-cut", completion("Let me think... \\boxed{5", "length"), None, None, True),
    ("empty-after-tag", completion("<think>work</think>\n  \n"), "work", None, False),
    ("cut-after-tag", completion("work</think>\\boxed{1", "length"), "work", "\\boxed{1", True),
    ("no-finish-reason", completion("7", None), None, "7", False),
]


@pytest.mark.parametrize(
    ("given", "reasoning", "answer", "truncated"),
    [case[1:] for case in SPLITS],
    ids=[case[0] for case in SPLITS],
)
def test_split_response(
    given: Completion, reasoning: str | None, answer: str | None, truncated: bool
) -> None:
    final = split_response(given)
    assert (final.reasoning, final.answer, final.truncated) == (reasoning, answer, truncated)
    assert final.note


def test_unterminated_reasoning_is_explained() -> None:
    final = split_response(completion("<think>\nstill going", "length"))
    assert final == FinalAnswer("still going", None, True, final.note)
    assert "unterminated" in final.note


# (id, completion, gold, grader, expected correct, expected failure)
GRADED = [
    (
        "boxed-decoy-in-reasoning",
        completion("<think>maybe \\boxed{5}?</think>So \\boxed{3}"),
        "3",
        grade_math,
        True,
        None,
    ),
    (
        "boxed-decoy-is-not-the-answer",
        completion("<think>maybe \\boxed{5}?</think>So \\boxed{3}"),
        "5",
        grade_math,
        False,
        "wrong",
    ),
    (
        "letter-decoy-in-reasoning",
        completion("<think>Answer: B? no.</think>\nAnswer: C"),
        "C",
        grade_choice,
        True,
        None,
    ),
    (
        "letter-decoy-in-separate-reasoning",
        completion("Answer: C", reasoning="Answer: B"),
        "B",
        grade_choice,
        False,
        "wrong",
    ),
    (
        "decoy-box-without-answer",
        completion("<think>so \\boxed{5}</think>\n"),
        "5",
        grade_math,
        False,
        "no_answer",
    ),
    (
        "decoy-letter-without-answer",
        completion("Answer: B\n</think>"),
        "B",
        grade_choice,
        False,
        "no_answer",
    ),
    (
        "decoy-in-separate-reasoning-without-answer",
        completion("", reasoning="\\boxed{5}"),
        "5",
        grade_math,
        False,
        "no_answer",
    ),
    (
        "unterminated-is-truncated-not-graded",
        completion("<think>so \\boxed{5}", "length"),
        "5",
        grade_math,
        False,
        "truncated",
    ),
    (
        "untagged-cut-off-is-truncated",
        completion("so \\boxed{5} and more", "length"),
        "5",
        grade_math,
        False,
        "truncated",
    ),
    (
        "untagged-finished-is-graded",
        completion("so \\boxed{5}"),
        "5",
        grade_math,
        True,
        None,
    ),
]


@pytest.mark.parametrize(
    ("given", "gold", "grader", "correct", "failure"),
    [case[1:] for case in GRADED],
    ids=[case[0] for case in GRADED],
)
def test_grade_completion(
    given: Completion, gold: str, grader: Grader, correct: bool, failure: str | None
) -> None:
    grade = grade_completion(given, gold, grader)
    assert (grade.correct, grade.failure) == (correct, failure)


def test_grader_is_not_called_without_an_answer() -> None:
    calls: list[tuple[str, str]] = []

    def grader(answer: str, gold: str) -> Grade:
        calls.append((answer, gold))
        return Grade(True, answer, answer, "test", None)

    grade_completion(completion("<think>\\boxed{1}", "length"), "1", grader)
    assert calls == []
    grade_completion(completion("<think>work</think> \\boxed{1} "), "1", grader)
    assert calls == [("\\boxed{1}", "1")]


def test_response_module_does_not_import_math_verify() -> None:
    code = "import sys, r1eval.response; assert 'math_verify' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
