"""Math grading with math-verify: boxes, fallbacks, and the traps around them."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from r1eval.errors import DataError
from r1eval.grading import math_answers
from r1eval.grading.math_answers import (
    canonical_form,
    find_boxes,
    grade_math,
    normalise_digit_groups,
    parse_gold,
)
from r1eval.types import Grade

# (response, gold, expected correct, expected method, expected failure)
CASES = [
    # boxes, nested braces, \fbox, "\boxed 5"
    ("So the answer is $\\boxed{42}$.", "42", True, "boxed", None),
    ("\\boxed{41}", "42", False, "boxed", "wrong"),
    ("\\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{\\sqrt{2}}{2}", True, "boxed", None),
    ("\\boxed{\\dfrac{\\sqrt{3}}{3}}", "\\frac{\\sqrt{3}}{3}", True, "boxed", None),
    ("\\fbox{7}", "7", True, "boxed", None),
    ("hence \\boxed 5.", "5", True, "boxed", None),
    ("\\boxed{\\{1,2\\}}", "1,2", True, "boxed", None),
    # fractions and decimals: math-verify parses 0.5 to the rational 1/2
    ("\\boxed{0.5}", "\\frac{1}{2}", True, "boxed", None),
    ("\\boxed{\\frac12}", "0.5", True, "boxed", None),
    ("\\boxed{\\frac54}", "1.25", True, "boxed", None),
    ("\\boxed{0.33}", "\\frac{1}{3}", False, "boxed", "wrong"),
    # intervals: open and closed ends differ
    ("\\boxed{[-2,7]}", "[-2,7]", True, "boxed", None),
    ("\\boxed{(-2,7)}", "[-2,7]", False, "boxed", "wrong"),
    ("\\boxed{(-\\infty,0]}", "(-\\infty, 0]", True, "boxed", None),
    ("\\boxed{(0,9)\\cup(9,36)}", "(0,9) \\cup (9,36)", True, "boxed", None),
    # sets and tuples
    ("\\boxed{3, 5, 7}", "3, 5, 7", True, "boxed", None),
    ("\\boxed{7, 5, 3}", "3, 5, 7", True, "boxed", None),
    ("\\boxed{7}", "3, 5, 7", False, "boxed", "wrong"),
    ("\\boxed{1 + \\sqrt{19}, 1 - \\sqrt{19}}", "1 \\pm \\sqrt{19}", True, "boxed", None),
    (
        "\\boxed{\\left(3, \\frac{\\pi}{2}\\right)}",
        "\\left( 3, \\frac{\\pi}{2} \\right)",
        True,
        "boxed",
        None,
    ),
    ("\\boxed{(1,-16,-4,43)}", "(1,-16,-4,43)", True, "boxed", None),
    ("\\boxed{(-16,1,-4,43)}", "(1,-16,-4,43)", False, "boxed", "wrong"),
    (
        "\\boxed{\\begin{pmatrix} -2 \\\\ -14 \\end{pmatrix}}",
        "\\begin{pmatrix} -2 \\\\ -14 \\end{pmatrix}",
        True,
        "boxed",
        None,
    ),
    # text answers
    ("\\boxed{\\text{(C)}}", "\\text{(C)}", True, "boxed", None),
    ("\\boxed{C}", "\\text{(C)}", True, "boxed", None),
    ("\\boxed{\\text{(D)}}", "\\text{(C)}", False, "boxed", "wrong"),
    ("\\boxed{\\text{Monday}}", "\\text{Monday}", True, "boxed", None),
    ("\\boxed{\\text{Tuesday}}", "\\text{Monday}", False, "boxed", "wrong"),
    # AIME: zero-padded gold
    ("\\boxed{25}", "025", True, "boxed", None),
    ("\\boxed{025}", "025", True, "boxed", None),
    ("\\boxed{025}", "25", True, "boxed", None),
    ("\\boxed{52}", "025", False, "boxed", "wrong"),
    # digit group separators: math-verify alone reads "1\,000" as 1*0
    ("\\boxed{1\\,000}", "1000", True, "boxed", None),
    ("\\boxed{1{,}000}", "1000", True, "boxed", None),
    ("\\boxed{1\\!000}", "1000", True, "boxed", None),
    ("\\boxed{1\\ 000\\ 000}", "1000000", True, "boxed", None),
    ("\\boxed{10,\\!080}", "10080", True, "boxed", None),
    ("\\boxed{1,000}", "1000", True, "boxed", None),
    ("\\boxed{1\\,000}", "0", False, "boxed", "wrong"),
    # several boxes: the last one wins
    ("\\boxed{5} Wait, actually \\boxed{3}", "3", True, "boxed", None),
    ("\\boxed{5} Wait, actually \\boxed{3}", "5", False, "boxed", "wrong"),
    ("\\boxed{5} and \\boxed{7}", "7", True, "boxed", None),
    ("\\boxed{5} and \\boxed{7}", "5", False, "boxed", "wrong"),
    # ...except a run of boxes read as one set when the gold has several values
    ("$\\boxed{1}$ and $\\boxed{-2}$", "1,-2", True, "boxed_multi", None),
    ("$x = \\boxed{-2}$ or $x = \\boxed{1}$", "1,-2", True, "boxed_multi", None),
    ("\\boxed{1}, \\boxed{-2}, \\boxed{5}", "1,-2", False, "boxed_multi", "wrong"),
    ("\\boxed{1} no wait, \\boxed{-2}", "1,-2", False, "boxed", "wrong"),
    ("\\boxed{\\boxed{1}}", "1,-2", False, "boxed", "wrong"),
    # empty boxes are not answers ("put your answer in \boxed{}")
    ("I will put it in \\boxed{}. The final answer is 4.", "4", True, "stated", None),
    ("\\boxed{3} \\boxed{ }", "3", True, "boxed", None),
    # no box: an answer statement, else the value the last sentence ends on
    ("The final answer is 9", "9", True, "stated", None),
    ("First I get 5. The final answer is 9.", "9", True, "stated", None),
    ("So the height is $\\frac{3}{2}$ cm.", "\\frac{3}{2}", True, "fallback", None),
    ("The final answer is 8", "9", False, "stated", "wrong"),
    ("The total is 1\\,000", "1000", True, "fallback", None),
    ("I could not solve it.", "9", False, "fallback", "no_answer"),
    ("", "9", False, "fallback", "no_answer"),
]


# Issue 14, items 1-9: each was graded wrongly before (the comment says how).
ISSUE_14_CASES = [
    # 1. the final statement wins over an earlier "answer" phrase (was: 0, 11)
    ("I need to express the answer as a residue from 0 to 8.\n\n120 mod 9 = 3.\n\n"
     "Therefore, n is 3.", "3", True, "fallback", None),
    ("We want the answer in lowest terms, 1 less than 12.\nSo a + b + c = 11 + 9 + 0 = 20",
     "20", True, "fallback", None),
    ("The answer must be below 5, say 4.\nTherefore, the value of n is 3.", "3", True,
     "fallback", None),
    # 2. a later explicit final answer beats an earlier box (was: 255)
    ("so the sum is $= \\boxed{255}$. Total 10,455.\nFinal Answer: The final answer is "
     "$10455$.", "10455", True, "stated", None),
    ("$\\boxed{255}$. Final Answer: The final answer is $10455$.", "255", False, "stated",
     "wrong"),
    # ...but words after a box are not an answer: "the answer is correct"
    ("\\boxed{7}. I checked: the answer is correct.", "7", True, "boxed", None),
    # 3. boxes joined by several connectors are one answer (was: 1)
    ("\\[ \\boxed{-2} \\quad \\text{and} \\quad \\boxed{1}. \\]", "1,-2", True,
     "boxed_multi", None),
    ("$\\boxed{-2}$ \\quad and \\quad $\\boxed{1}$", "1,-2", True, "boxed_multi", None),
    # 4. ordinal suffixes (was: wrong)
    ("\\boxed{12^{\\text{th}}\\text{ grade}}", "12", True, "boxed", None),
    ("\\boxed{12^{\\mathrm{th}}}", "12", True, "boxed", None),
    ("\\boxed{12\\text{th}}", "12", True, "boxed", None),
    ("\\boxed{13^{\\text{th}}}", "12", False, "boxed", "wrong"),
    # 5. a word answer without a box (was: no answer)
    ("It points 3 ways at first.\nSo, the final answer is east.", "\\text{east}", True,
     "stated", None),
    ("So, the final answer is west.", "\\text{east}", False, "stated", "wrong"),
    ("Hence the direction is east.", "\\text{east}", True, "fallback", None),
    # 6. undelimited LaTeX after an answer phrase (was: nothing; 1)
    ("The final answer is \\dfrac{1}{3}", "\\frac{1}{3}", True, "stated", None),
    ("The answer is x^2 + 2*x + 1", "x^2+2x+1", True, "stated", None),
    ("The answer is x^2 + 2*x + 1", "1", False, "stated", "wrong"),
    ("Thus the answer is **42**.", "42", True, "stated", None),
    ("Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.", "0.5", True,
     "stated", None),
    # 7. number bases are compared with their base (was: right)
    ("\\boxed{4343_5}", "4343_6", False, "boxed", "wrong"),
    ("\\boxed{4343_{10}}", "4343_6", False, "boxed", "wrong"),
    ("\\boxed{4343_6}", "4343_6", True, "boxed", None),
    ("\\boxed{4343_{6}}", "4343_6", True, "boxed", None),
    ("\\boxed{4343}", "4343_6", True, "boxed", None),
    ("\\boxed{1010_2}", "10", True, "boxed", None),
    ("\\boxed{1010_3}", "10", False, "boxed", "wrong"),
    # 8. cut off mid-reasoning with no answer statement at the end (was: a number from it)
    ("Let me compute 3 + 4 = 7, and then 12 * 5 is 60, so the next step is to", "60", False,
     "fallback", "no_answer"),
    ("The answer is 60? Let me check.\n" + "We expand each term and compare. " * 20
     + "Next, 3 * 20 = 60 and we", "60", False, "fallback", "no_answer"),
    # 9. a gold in percent is a number of percent (decided: 0.25 is 0.25 %, was: right)
    ("\\boxed{0.25}", "25\\%", False, "boxed", "wrong"),
    ("\\boxed{25}", "25\\%", True, "boxed", None),
    ("\\boxed{25\\%}", "25\\%", True, "boxed", None),
    ("\\boxed{25\\%}", "0.25", True, "boxed", None),
]


# Found by grading 1,030 real published responses (bench/grading_corpus.py; the cases are our own
# words, the failure is theirs): a response cut off in the middle of an expression, with no
# finish_reason to say so, was graded on the fragment. math-verify reads "\frac{2}{5} - \frac"
# as 2/5 (credited, was: right) and other fragments as some wrong value (was: wrong, with junk
# such as "\frac{15" as the extracted answer); a cut-off statement hid nothing before it.
CUT_OFF_CASES = [
    ("Collecting terms we get \\(q = \\frac{2}{5} - \\frac", "\\frac{2}{5}", False,
     "fallback", "no_answer"),
    ("Collecting terms, q = \\frac{2}{5} - \\frac", "\\frac{2}{5}", False, "fallback",
     "no_answer"),
    ("First the answer is \\frac{3}{4}. Actually, the answer is \\frac{3}{4} - \\frac",
     "\\frac{3}{4}", False, "fallback", "no_answer"),
    ("We halve it and the ratio is \\frac{15", "\\frac{15}{2}", False, "fallback", "no_answer"),
    ("Adding the parts, the length is 40 \\cdot \\sqrt", "40", False, "fallback", "no_answer"),
    ("The total is 12 +", "12", False, "fallback", "no_answer"),
    ("So \\boxed{506} was a guess.\nFinal Answer: \\boxed{", "506", False, "fallback",
     "no_answer"),
    # ...while whole values, brackets and escaped braces included, are still answers
    ("Hence the value is \\(3\\sqrt{2} + 1\\).", "3\\sqrt{2}+1", True, "fallback", None),
    ("so the set is \\{1, 2\\}", "\\{1,2\\}", True, "fallback", None),
    ("The interval is (0, 1]", "(0,1]", True, "fallback", None),
    ("The final answer is 2\\pi", "2\\pi", True, "stated", None),
    ("The answer is 12 + \\frac{1}{2}, not \\boxed{12}", "12", True, "boxed", None),
]


@pytest.mark.parametrize(("response", "gold", "correct", "method", "failure"),
                         CASES + ISSUE_14_CASES + CUT_OFF_CASES)
def test_grade_math(
    response: str, gold: str, correct: bool, method: str, failure: str | None
) -> None:
    grade = grade_math(response, gold)
    assert (grade.correct, grade.method, grade.failure) == (correct, method, failure)
    assert grade.explanation
    if failure != "no_answer":
        assert grade.extracted and grade.canonical


def test_extracted_is_the_last_box_content() -> None:
    grade = grade_math("\\boxed{5} Wait, actually \\boxed{\\frac{1}{\\sqrt{2}}}", "5")
    assert grade.extracted == "\\frac{1}{\\sqrt{2}}"


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("\\frac12", "\\frac{1}{2}", True),
        ("\\dfrac{1}{2}", "0.5", True),
        ("025", "25", True),
        ("1\\,000", "1000", True),
        ("\\{3,5\\}", "5, 3", True),
        ("\\frac{1}{2}", "\\frac{1}{3}", False),
        ("[-2,7]", "(-2,7)", False),
    ],
)
def test_canonical_forms_for_majority_voting(first: str, second: str, same: bool) -> None:
    one, two = (grade_math(f"\\boxed{{{answer}}}", "0").canonical for answer in (first, second))
    assert (one == two) is same


def test_canonical_form_falls_back_to_the_extracted_string() -> None:
    assert canonical_form(["x y"], " x y ") == "xy"
    assert canonical_form([], "a + b") == "a+b"


@pytest.mark.parametrize(
    ("text", "contents"),
    [
        ("\\boxed{1} and \\boxed{\\frac{1}{2}}", ["1", "\\frac{1}{2}"]),
        ("\\boxed{\\{1,2\\}}", ["\\{1,2\\}"]),
        ("\\boxed {3}", ["3"]),
        ("\\boxed{3", []),
        ("\\boxed{}", []),
        ("\\boxed 25$", ["25"]),
        ("\\boxedx{3}", []),
        ("\\fbox{2} \\boxed{\\boxed{4}}", ["2", "\\boxed{4}", "4"]),
        ("} { \\boxed{6} {", ["6"]),
    ],
)
def test_find_boxes(text: str, contents: list[str]) -> None:
    assert [box.content for box in find_boxes(text)] == contents


def test_find_boxes_is_linear_on_adversarial_input() -> None:
    assert find_boxes("\\boxed{" * 40_000) == []
    assert len(find_boxes("\\boxed{1}" * 20_000)) == 20_000


@pytest.mark.parametrize(
    ("latex", "normalised"),
    [
        ("1\\,000", "1000"),
        ("1{,}000{,}000", "1000000"),
        ("1\\!000", "1000"),
        ("1\\ 000", "1000"),
        ("x\\,y", "x\\,y"),
        ("1\\,00", "1\\,00"),
        ("1\\,0000", "1\\,0000"),
        ("2\\, \\text{cm}", "2\\, \\text{cm}"),
    ],
)
def test_normalise_digit_groups(latex: str, normalised: str) -> None:
    assert normalise_digit_groups(latex) == normalised


def test_a_gold_that_does_not_parse_is_a_data_error() -> None:
    with pytest.raises(DataError):
        grade_math("\\boxed{1}", "")


def _timing_out_parse(times: int, calls: list[Any]) -> Any:
    """math-verify's parse, timing out (its warning, no value) on its first ``times`` calls."""
    real = math_answers.parse

    def parse(text: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("parsing_timeout"))
        if len(calls) <= times:
            logging.getLogger("math_verify").warning("Timeout during parsing: %s", text)
            return []
        return real(text, *args, **kwargs)

    return parse


def test_a_gold_that_times_out_is_a_timeout_not_an_unparsable_gold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 14, item 10: under load a gold answer timed out and was reported as unparsable."""
    calls: list[Any] = []
    monkeypatch.setattr(math_answers, "parse", _timing_out_parse(2, calls))
    grade = grade_math("\\boxed{\\left( 3, \\frac{\\pi}{3} \\right)}",
                       "\\left( 3, \\frac{\\pi}{3} \\right)")
    assert (grade.correct, grade.failure) == (False, "grader_timeout")
    assert "gold" in grade.explanation and "does not parse" not in grade.explanation
    assert calls == [math_answers.TIMEOUT_S, math_answers.TIMEOUT_S * math_answers.RETRY_FACTOR]


def test_a_timed_out_grade_is_tried_again_with_a_longer_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(math_answers, "parse", _timing_out_parse(1, calls))
    grade = grade_math("\\boxed{\\frac{2}{7}}", "\\frac{4}{14}")
    assert (grade.correct, grade.failure, grade.method) == (True, None, "boxed")
    longer = math_answers.TIMEOUT_S * math_answers.RETRY_FACTOR
    assert calls[0] == math_answers.TIMEOUT_S and set(calls[1:]) == {longer}


def test_grade_math_outside_the_main_thread() -> None:
    """math-verify's signal timeouts would raise ValueError here: they are turned off."""
    results: list[Grade] = []
    thread = threading.Thread(target=lambda: results.append(grade_math("\\boxed{2}", "2")))
    thread.start()
    thread.join()
    assert results and results[0].correct


def read_answers(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line)["answer"] for line in lines]


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize(("folder", "count"), [("math500", 500), ("aime24", 30)])
def test_every_official_gold_answer_grades_its_own_box(
    folder: str, count: int, data_dir: Path
) -> None:
    golds = read_answers(data_dir / folder / "test.jsonl")
    assert len(golds) == count
    failures = []
    for gold in golds:
        grade = grade_math(f"Reasoning done.\n\nThe answer is $\\boxed{{{gold}}}$.", gold)
        if not (parse_gold(gold) and grade.correct and grade.canonical):
            failures.append((gold, grade))
    assert failures == []


@pytest.mark.data
def test_aime_golds_match_unpadded_answers(data_dir: Path) -> None:
    golds = read_answers(data_dir / "aime24" / "test.jsonl")
    assert any(gold.startswith("0") for gold in golds)
    assert all(grade_math(f"\\boxed{{{int(gold)}}}", gold).correct for gold in golds)


@pytest.mark.parametrize("gold", ["25", "025", "-3", "0", "1000", " 7 "])
@pytest.mark.parametrize(
    "answer",
    ["\\boxed{25}", "\\boxed{025}", "\\boxed{-3}", "\\boxed{-0}", "\\boxed{1000}", "\\boxed 7.",
     "\\boxed{24} or \\boxed{25}", "\\boxed{+25}", "\\boxed{25.0}", "\\boxed{1,000}"],
)
def test_integers_are_compared_directly_with_math_verifys_verdict(
    answer: str, gold: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain integers on both sides skip sympy: same verdict, extraction and canonical form."""
    quick = grade_math(answer, gold)
    monkeypatch.setattr("r1eval.grading.math_answers.integer_grade", lambda a, g: None)
    slow = grade_math(answer, gold)
    assert (quick.correct, quick.extracted, quick.canonical, quick.method, quick.failure) == (
        slow.correct, slow.extracted, slow.canonical, slow.method, slow.failure)
