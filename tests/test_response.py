"""Splitting a response into reasoning and final answer, and grading only the answer."""

from __future__ import annotations

import subprocess
import sys

import pytest

from r1eval.errors import UsageError
from r1eval.grading.choice_answers import grade_choice
from r1eval.grading.final_answer import (
    FinalAnswer,
    Grader,
    grade_completion,
    split_response,
    trace_formats,
)
from r1eval.grading.math_answers import grade_math
from r1eval.run.config import build_config
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


SKY = "<|begin_of_thought|>\nmaybe \\boxed{4}\n<|end_of_thought|>\n\n<|begin_of_solution|>\n"
# (id, completion, expected reasoning, expected answer, expected truncated): issue 14, item 14
OTHER_FORMATS = [
    ("thought-solution", completion(SKY + "So \\boxed{5}.\n<|end_of_solution|>"),
     "maybe \\boxed{4}", "So \\boxed{5}.", False),
    ("thought-no-solution-markers", completion("<|begin_of_thought|>a<|end_of_thought|> 5"),
     "a", "5", False),
    ("thought-unterminated", completion("<|begin_of_thought|>\nmaybe \\boxed{4}", None),
     "maybe \\boxed{4}", None, False),
    ("thought-cut", completion("<|begin_of_thought|>\nmaybe \\boxed{4}", "length"),
     "maybe \\boxed{4}", None, True),
    ("solution-cut", completion(SKY + "So \\boxed{5", "length"), "maybe \\boxed{4}",
     "So \\boxed{5", True),
    ("thought-then-think", completion("<think>a</think><|begin_of_thought|>b"), "a",
     "<|begin_of_thought|>b", False),
]


def test_an_s1_response_is_graded_on_its_answer_section_only() -> None:
    # s1 / s1.1 write "<|im_start|>think" (often in the prompt) ... "<|im_start|>answer" answer.
    # In real published s1.1 responses the answer section was cut off after a boxed draft in
    # the thinking: without the "s1" delimiters that draft was graded as the answer.
    s1 = trace_formats(["s1"])
    finished = completion("so maybe \\boxed{4}\n<|im_start|>answer\nAnswer: \\boxed{5}")
    assert split_response(finished, s1).answer == "Answer: \\boxed{5}"
    assert grade_completion(finished, "5", grade_math, s1).correct
    cut = completion("we get \\boxed{23}.\n<|im_start|>answer\nAnswer: To add the roots, we")
    assert grade_completion(cut, "23", grade_math, s1).failure == "no_answer"
    assert grade_completion(cut, "23", grade_math).correct  # the default delimiters: the draft
    unterminated = completion("<|im_start|>think\nso \\boxed{4}")
    assert grade_completion(unterminated, "4", grade_math, s1).failure == "no_answer"


@pytest.mark.parametrize(
    ("given", "reasoning", "answer", "truncated"),
    [case[1:] for case in SPLITS + OTHER_FORMATS],
    ids=[case[0] for case in SPLITS + OTHER_FORMATS],
)
def test_split_response(
    given: Completion, reasoning: str | None, answer: str | None, truncated: bool
) -> None:
    final = split_response(given)
    assert (final.reasoning, final.answer, final.truncated) == (reasoning, answer, truncated)
    assert final.note


def test_a_sky_t1_response_is_graded_on_its_solution_only() -> None:
    given = completion(SKY + "So \\boxed{5}.\n<|end_of_solution|>")
    assert grade_completion(given, "5", grade_math).correct
    assert not grade_completion(given, "4", grade_math).correct
    unterminated = completion("<|begin_of_thought|>\nso \\boxed{4}", None)
    assert grade_completion(unterminated, "4", grade_math).failure == "no_answer"


def test_trace_formats_are_a_run_setting() -> None:
    only_think = trace_formats(["think"])
    given = completion("<|begin_of_thought|>a<|end_of_thought|> 5")
    assert split_response(given, only_think).answer == given.text
    custom = trace_formats(["<reasoning> </reasoning>"])
    assert split_response(completion("<reasoning>x</reasoning> 7"), custom).answer == "7"
    config = build_config({"model": "m", "tasks": "aime24",
                           "reasoning_delimiters": "think,thinking"}, None, {})
    assert config.model_dump(mode="json")["reasoning_delimiters"] == ["think", "thinking"]
    given = completion("<thinking>x</thinking> 7")
    assert split_response(given, config.trace_formats()).answer == "7"
    with pytest.raises(UsageError, match=r"--reasoning-delimiters: unknown .* 'nope'"):
        build_config({"model": "m", "tasks": "aime24", "reasoning_delimiters": "nope"}, None, {})


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
    code = "import sys, r1eval.grading.final_answer; assert 'math_verify' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
