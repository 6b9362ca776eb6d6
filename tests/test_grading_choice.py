"""Multiple-choice letter extraction: the rules, their order, and the known traps."""

from __future__ import annotations

import pytest

from r1eval.grading.choice_answers import (
    DEFAULT_LETTERS,
    TEN_LETTERS,
    extract_choice,
    grade_choice,
    grade_choice_up_to_ten,
)

# (answer text, expected letter, expected method)
EXTRACTIONS = [
    # answer line, in its many spellings
    ("Answer: C", "C", "answer_line"),
    ("answer: C", "C", "answer_line"),
    ("ANSWER:B", "B", "answer_line"),
    ("Final Answer: D", "D", "answer_line"),
    ("**Answer:** D", "D", "answer_line"),
    ("**Answer**: D", "D", "answer_line"),
    ("Answer: (C)", "C", "answer_line"),
    ("Answer: [B]", "B", "answer_line"),
    ("Answer: $C$", "C", "answer_line"),
    ("Answer: \\boxed{C}", "C", "answer_line"),
    ("Answer: $\\boxed{\\text{A}}$", "A", "answer_line"),
    ("Answer: \\textbf{C}", "C", "answer_line"),
    ("Answer: C) 12 m/s", "C", "answer_line"),
    ("Answer: B. The field doubles.", "B", "answer_line"),
    ("Answer：B", "B", "answer_line"),
    ("Answer: Option C", "C", "answer_line"),
    ("**Answer: option (B)**", "B", "answer_line"),
    ("Answer: A", "A", "answer_line"),
    # lowercase only inside parentheses ("a" alone is the article)
    ("Answer: (c)", "C", "answer_line"),
    ("Answer: c", "C", "answer_line"),  # alone at the end of the line: the letter
    ("Answer: a larger field", None, None),
    # the last answer line wins, not the first
    ("Answer: B\nOn reflection...\nAnswer: C", "C", "answer_line"),
    ("Answer: C\nAnswer: A", "A", "answer_line"),
    # a letter that is part of a word or a symbol is never taken
    ("Answer: \\Delta E", None, None),
    ("Answer: $\\Delta E$", None, None),
    ("Answer: Apple", None, None),
    ("Answer: B_0", None, None),
    ("Answer: $\\mathrm{B}_0$", None, None),
    ("Answer: B^2", None, None),
    ("Answer: A'", None, None),
    ("Answer: B2", None, None),
    ("Answer: E", None, None),
    ("Answer: D\nThen Answer: \\Delta E", "D", "answer_line"),
    # boxed
    ("so the choice is \\boxed{C}", "C", "boxed"),
    ("$\\boxed{\\text{C}}$", "C", "boxed"),
    ("\\boxed{(B)}", "B", "boxed"),
    ("\\boxed{A} ... no: \\boxed{D}", "D", "boxed"),
    ("\\boxed{\\mathrm{B}_0}", None, None),
    ("\\boxed{C_1}", None, None),
    # "the answer is"
    ("The answer is (C).", "C", "answer_is"),
    ("so the answer is D", "D", "answer_is"),
    ("The correct option is C", "C", "answer_is"),
    ("The correct answer is option B.", "B", "answer_is"),
    ("The answer is: **B**", "B", "answer_is"),
    ("The answer is A, no, the answer is B", "B", "answer_is"),
    ("The answer is \\Delta E", None, None),
    ("The answer is not obvious", None, None),
    # a last line that is only the letter
    ("Reasoning...\nC", "C", "final_line"),
    ("Reasoning...\n(C)", "C", "final_line"),
    ("Reasoning...\n**C**", "C", "final_line"),
    ("Reasoning...\nC.", "C", "final_line"),
    ("Reasoning...\n$D$\n\n", "D", "final_line"),
    ("Reasoning...\nE", None, None),
    ("Reasoning...\nC is tiny", None, None),
    # issue 14, item 12: the last answer statement wins, whichever rule found it
    ("Answer: B\nWait, actually the answer is C.", "C", "answer_is"),
    ("Answer: A\n\\boxed{B}", "B", "boxed"),
    ("\\boxed{B}\nthe answer is C", "C", "answer_is"),
    ("The answer is C.\nAnswer: B", "B", "answer_line"),
    ("Answer: B\nC", "B", "answer_line"),  # a final line is read only with no statement
    # issue 14, item 13 (decided: all five are answers; see the README's grading section)
    ("answer: b", "B", "answer_line"),
    ("答案：B", "B", "answer_line"),
    ("Answer - B", "B", "answer_line"),
    ("(B) is correct", "B", "is_correct"),
    ("So option C is the correct answer.", "C", "is_correct"),
    ("I choose B", "B", "i_choose"),
    ("I'll go with (D).", "D", "i_choose"),
    ("(B) is incorrect", None, None),
    ("answer: b is smaller than c", None, None),
    ("Answer: A larger field", None, None),
    ("Answer: I think it is", None, None),
    ("Answer: I think it is\nthe answer is D", "D", "answer_is"),
    # nothing
    ("", None, None),
    ("I believe A and B are both plausible.", None, None),
]


# issue 14, item 11: a statement naming several letters is a hedge, not an answer
HEDGES = [
    "Answer: B and C",
    "Answer: A, B",
    "The answer is (A) or (B)",
    "Answer: B/C",
    "**Answer:** $B$ or $C$",
    "\\boxed{A} and \\boxed{B}... no: I choose C or D",
]


@pytest.mark.parametrize("text", HEDGES)
def test_hedged_answers_get_no_credit_and_say_so(text: str) -> None:
    assert extract_choice(text) == (None, None)
    for gold in "ABCD":
        grade = grade_choice(text, gold)
        assert (grade.correct, grade.failure, grade.extracted) == (False, "no_answer", None)
        assert "hedged" in grade.explanation


@pytest.mark.parametrize(
    ("text", "letter"),
    [("Answer: A, because B fails", "A"), ("Answer: B. A and C fail", "B"),
     ("Answer: B and c", "B"), ("Answer: A, Because", "A")],
)
def test_a_letter_followed_by_other_words_is_not_a_hedge(text: str, letter: str) -> None:
    assert extract_choice(text)[0] == letter


@pytest.mark.parametrize(
    ("text", "letter", "method"),
    [("Answer: J", "J", "answer_line"), ("\\boxed{H}", "H", "boxed"),
     ("the answer is (G).", "G", "answer_is"), ("Reasoning...\n(F)", "F", "final_line"),
     ("Answer: I", "I", "answer_line"), ("Answer: (i)", "I", "answer_line"),
     ("Answer: I think so.\nAnswer: E", "E", "answer_line"), ("Answer: I think so.", None, None),
     ("Answer: E and J", None, None), ("Answer: \\Delta E", None, None),
     ("Answer: K", None, None)],
)
def test_ten_options_follow_the_same_rules(text: str, letter: str | None,
                                            method: str | None) -> None:
    assert extract_choice(text, letters=TEN_LETTERS) == (letter, method)


@pytest.mark.parametrize(("text", "letter", "method"), EXTRACTIONS)
def test_extract_choice(text: str, letter: str | None, method: str | None) -> None:
    assert extract_choice(text) == (letter, method)


def test_choice_letters_are_a_parameter() -> None:
    assert extract_choice("Answer: E", letters="ABCDE") == ("E", "answer_line")
    assert extract_choice("Answer: \\Delta E", letters="ABCDE") == (None, None)
    with pytest.raises(ValueError, match="uppercase"):
        extract_choice("Answer: a", letters="abcd")


# (answer text, gold letter, expected correct, expected failure)
GRADES = [
    ("Answer: C", "C", True, None),
    ("Answer: C", "c", True, None),
    ("Answer: B", "C", False, "wrong"),
    ("Answer: \\Delta E", "E", False, "no_answer"),
    ("Answer: B\nAnswer: C", "C", True, None),
    ("Answer: B\nAnswer: C", "B", False, "wrong"),
    ("nothing", "A", False, "no_answer"),
]


@pytest.mark.parametrize(("text", "gold", "correct", "failure"), GRADES)
def test_grade_choice(text: str, gold: str, correct: bool, failure: str | None) -> None:
    letters = "ABCDE" if gold == "E" else "ABCD"
    grade = grade_choice(text, gold, letters)
    assert (grade.correct, grade.failure) == (correct, failure)
    if failure != "no_answer":
        assert grade.extracted == grade.canonical == text[-1]
        assert grade.method == "answer_line"
    else:
        assert grade.extracted is None and grade.method is None


def test_gold_letter_must_be_a_choice() -> None:
    with pytest.raises(ValueError, match="gold letter"):
        grade_choice("Answer: A", "E")


@pytest.mark.parametrize(
    "text",
    [
        "Answer:" + " " * 200_000 + "x",
        "Answer: " + "*" * 200_000,
        "answer is" + " " * 200_000 + "x",
        "the answer is option " * 10_000,
        "Answer: option" + " " * 200_000 + "x",
        "\\boxed{C" + " " * 200_000 + "x",
        "\\boxed{" * 30_000,
        "Answer: $\\boxed{\\text{" * 10_000,
        "Answer: " + "(" * 200_000,
        "A" * 200_000,
        "*" * 200_000 + "C" + "*" * 200_000,
    ],
    ids=lambda text: repr(text[:24]),
)
def test_adversarial_input_completes(text: str) -> None:
    """Linear-time patterns: each of these would take hours with backtracking ones."""
    assert len(text) >= 200_000
    extract_choice(text)


# Up to ten options (MMLU-Pro): letters A-J, the same rules as A-D.
TEN_OPTION_EXTRACTIONS = [
    ("Answer: J", "J", "answer_line"),
    ("**Answer:** (H)", "H", "answer_line"),
    ("Answer: $\\boxed{\\text{F}}$", "F", "answer_line"),
    ("The answer is (G).", "G", "answer_is"),
    ("so the answer is I.", "I", "answer_is"),
    ("\\boxed{E}", "E", "boxed"),
    ("Comparing all ten options.\n(J)", "J", "final_line"),
    ("Answer: (j)", "J", "answer_line"),
    ("The answer is (B). Wait, no: the answer is (J).", "J", "answer_is"),
]


@pytest.mark.parametrize(("text", "letter", "method"), TEN_OPTION_EXTRACTIONS)
def test_letters_a_to_j(text: str, letter: str, method: str) -> None:
    assert extract_choice(text, TEN_LETTERS) == (letter, method)
    assert grade_choice_up_to_ten(text, letter).correct


@pytest.mark.parametrize(
    "text",
    ["Answer: K", "Answer: \\Delta E", "Answer: Joule", "The answer is I'", "Answer: H_2O",
     "Answer: \\mathrm{J}_0"],
)
def test_letters_a_to_j_keep_the_standalone_rules(text: str) -> None:
    assert extract_choice(text, TEN_LETTERS) == (None, None)


def test_four_letters_still_ignore_e_to_j() -> None:
    assert extract_choice("Answer: F", DEFAULT_LETTERS) == (None, None)
    assert extract_choice("Answer: F", TEN_LETTERS) == ("F", "answer_line")
    with pytest.raises(ValueError, match="gold letter"):
        grade_choice_up_to_ten("Answer: A", "K")
