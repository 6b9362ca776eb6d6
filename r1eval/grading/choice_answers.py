"""Find the chosen letter of a multiple-choice answer, and grade it.

Rules, tried in order; each takes the LAST occurrence in the answer that names a letter:

1. ``answer_line``: ``Answer: C`` (any case of "answer"; ``**Answer:** C``, ``Answer: (C)``,
   ``Answer: $C$``, ``Answer: \\boxed{C}``, ``Answer: \\textbf{C}``, ``Answer: C) text``,
   ``Answer: Option C``, full-width colon).
2. ``boxed``: a box holding only the letter, ``\\boxed{C}`` or ``\\boxed{\\text{C}}``.
3. ``answer_is``: "the answer is (C)", "correct option is C".
4. ``final_line``: a last non-empty line that is only the letter: ``C``, ``(C)``, ``**C**``, ``C.``.

The letter must stand alone: never the start of a word (``Answer: Apple``), never part of a
symbol (``Answer: \\Delta E``, ``\\mathrm{B}_0``, ``B^2``, ``A'``). Rules only read a letter
right after their anchor, through a fixed set of wrappers, so a trailing symbol is never taken.
Letters are uppercase, except in parentheses (``Answer: (c)``): a bare lowercase "a" is too
often the article.

In every pattern, no two neighbouring repeated parts can match the same character, so a
failed match never backtracks far and matching is linear in the text length; ``final_line``
only looks at a last line of at most ``_FINAL_LINE_MAX`` characters.
"""

from __future__ import annotations

import functools
import re

from r1eval.types import Grade

DEFAULT_LETTERS = "ABCD"
TEN_LETTERS = "ABCDEFGHIJ"  # MMLU-Pro: up to ten options
_FINAL_LINE_MAX = 40
# Markdown, "$", and up to two wrapping commands ("\boxed{\text{C}}") before the letter.
_WRAP = r"[ \t*_]*(?:\$[ \t]*)?(?:\\(?:boxed|text|textbf|textrm|mathrm|mathbf)[ \t]*\{[ \t]*){0,2}"
_OPTION = r"(?:(?i:option|choice)[ \t]*)?"  # "Answer: Option C"
_ANSWER_IS = r"(?i:\b(?:answer|option|choice)[ \t]+is:?)"
_CLOSE_BOX = r"[ \t]*(?:[)\]][ \t]*)?\}(?:[ \t]*\})?"
_CLOSE_LINE = r"[ \t]*[)\]]?\}{0,2}\$?[.:]?[ \t*_]*"


@functools.lru_cache(maxsize=8)
def _rules(letters: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """The rules' patterns for these choice letters, in the order they are tried."""
    if not re.fullmatch(r"[A-Z]+", letters):
        raise ValueError(f"choice letters must be uppercase A-Z, got {letters!r}")
    letter = rf"(?:\((?P<lower>[{letters.lower()}])\)|(?:[(\[][ \t]?)?(?P<upper>[{letters}]))"
    answer_line = rf"(?<![A-Za-z])(?i:answer)[ \t*_]*[:：]{_WRAP}{_OPTION}{letter}"
    boxed = rf"\\boxed[ \t]*\{{{_WRAP}{letter}{_CLOSE_BOX}"
    return (
        ("answer_line", re.compile(answer_line)),
        ("boxed", re.compile(boxed)),
        ("answer_is", re.compile(_ANSWER_IS + _WRAP + _OPTION + letter)),
        ("final_line", re.compile(_WRAP + letter + _CLOSE_LINE)),
    )


def extract_choice(answer: str, letters: str = DEFAULT_LETTERS) -> tuple[str | None, str | None]:
    """The chosen letter of ``answer`` and the rule that found it, or (None, None)."""
    for method, pattern in _rules(letters):
        if method == "final_line":
            letter = _final_line_letter(answer, pattern)
        else:
            letter = _last_letter(answer, pattern)
        if letter is not None:
            return letter, method
    return None, None


def grade_choice(answer: str, gold_letter: str, letters: str = DEFAULT_LETTERS) -> Grade:
    """Grade a multiple-choice answer against the gold letter (one of ``letters``)."""
    gold = gold_letter.strip().upper()
    if len(gold) != 1 or gold not in letters:
        raise ValueError(f"gold letter {gold_letter!r} is not one of {letters!r}")
    letter, method = extract_choice(answer, letters)
    if letter is None:
        return Grade(False, None, None, None, "no_answer", "no answer letter found")
    correct = letter == gold
    return Grade(
        correct=correct,
        extracted=letter,
        canonical=letter,
        method=method,
        failure=None if correct else "wrong",
        explanation=f"{method}: {letter} {'=' if correct else '!='} gold {gold}",
    )


def grade_choice_up_to_ten(answer: str, gold_letter: str) -> Grade:
    """``grade_choice`` for questions of up to ten options, letters A-J (MMLU-Pro)."""
    return grade_choice(answer, gold_letter, TEN_LETTERS)


def _last_letter(text: str, pattern: re.Pattern[str]) -> str | None:
    """The letter of the last match of ``pattern`` whose letter stands alone."""
    found = None
    for match in pattern.finditer(text):
        letter = _standalone_letter(text, match)
        if letter is not None:
            found = letter
    return found


def _final_line_letter(text: str, pattern: re.Pattern[str]) -> str | None:
    stripped = text.rstrip()
    last_line = stripped[stripped.rfind("\n") + 1 :].strip()
    if len(last_line) > _FINAL_LINE_MAX:
        return None
    match = pattern.fullmatch(last_line)
    return None if match is None else _standalone_letter(last_line, match)


def _standalone_letter(text: str, match: re.Match[str]) -> str | None:
    """The matched letter, unless it continues into a word or a symbol.

    Rejects ``Apple``, ``B2``, ``B_0``, ``B^2``, ``A'`` and, past closing braces,
    ``\\mathrm{B}_0``.
    """
    upper, lower = match.group("upper"), match.group("lower")
    end = match.end("upper") if upper else match.end("lower") + 1
    following = text[end : end + 1]
    if following and (following.isalnum() or following in "_^'"):
        return None
    past_braces = text[end : end + 8].lstrip("}")[:1]
    if past_braces and past_braces in "_^'":
        return None
    return upper if upper else lower.upper()
