"""Find the chosen letter of a multiple-choice answer, and grade it.

The LAST answer statement of the answer wins, whichever of these rules found it:

- ``answer_line``: ``Answer: C`` (any case of "answer"; ``**Answer:** C``, ``Answer: (C)``,
  ``Answer: $C$``, ``Answer: \\boxed{C}``, ``Answer: \\textbf{C}``, ``Answer: C) text``,
  ``Answer: Option C``, full-width colon, ``Answer - C``, ``答案：C``).
- ``boxed``: a box holding only the letter, ``\\boxed{C}`` or ``\\boxed{\\text{C}}``.
- ``answer_is``: "the answer is (C)", "correct option is C".
- ``is_correct``: "(C) is correct", "Option C is the correct answer".
- ``i_choose``: "I choose C", "I pick (C)", "I'll go with C".

Only with no statement at all, ``final_line``: a last non-empty line that is only the letter:
``C``, ``(C)``, ``**C**``, ``C.``.

A statement naming several letters ("Answer: B and C", "Answer: A, B", "the answer is (A) or
(B)") is a hedge, not one answer: it gets no credit (``no_answer``, said so on the grade).

The letter must stand alone: never the start of a word (``Answer: Apple``), never part of a
symbol (``Answer: \\Delta E``, ``\\mathrm{B}_0``, ``B^2``, ``A'``), never the article or the
pronoun ("Answer: A larger field", "Answer: I think"). Rules only read a letter right after
their anchor, through a fixed set of wrappers, so a trailing symbol is never taken.
Letters are uppercase, except in parentheses (``Answer: (c)``) or alone at the end of an
answer line (``answer: b``): a bare lowercase "a" inside a sentence is the article.
Any letters A-Z work (``letters``: "ABCD" for GPQA, "ABCDEFGHIJ" for ten options).

In every pattern, no two neighbouring repeated parts can match the same character, so a
failed match never backtracks far and matching is linear in the text length; ``final_line``
only looks at a last line of at most ``_FINAL_LINE_MAX`` characters.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from r1eval.types import Grade

DEFAULT_LETTERS = "ABCD"
TEN_LETTERS = "ABCDEFGHIJ"  # MMLU-Pro: up to ten options
_FINAL_LINE_MAX = 40
# Markdown, "$", and up to two wrapping commands ("\boxed{\text{C}}") before the letter.
_WRAP = r"[ \t*_]*(?:\$[ \t]*)?(?:\\(?:boxed|text|textbf|textrm|mathrm|mathbf)[ \t]*\{[ \t]*){0,2}"
_OPTION = r"(?:(?i:option|choice)[ \t]*)?"  # "Answer: Option C"
_ANSWER_IS = r"(?i:\b(?:answer|option|choice)[ \t]+is:?)"
_CLOSE_BOX = r"[ \t]*(?:[)\]][ \t]*)?\}(?:[ \t]*\})?"
# "A larger field", "I think": a lowercase word right after "A" or "I" (not "A and B").
_WORD_AFTER = re.compile(r"[ \t]+(?!(?:and|or)\b)[a-z]{2,}")
_CLOSE_LINE = r"[ \t]*[)\]]?\}{0,2}\$?[.:]?[ \t*_]*"


_SEPARATOR = r"(?:[:：]|-(?![-\d]))"  # "Answer: C", "Answer：C", "Answer - C"
_HEDGE_JOINER = r"[ \t*_$]*(?:[)\]}][ \t*_$]*)?(?:,|/|&|\b(?i:and|or)\b)[ \t*_$]*"


@dataclass(frozen=True)
class Choice:
    """A letter found by ``method``; ``hedge`` is the other letter when the statement names
    several ("B and C")."""

    letter: str
    method: str
    hedge: str | None = None


@functools.lru_cache(maxsize=8)
def _rules(letters: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """The statement rules' patterns for these choice letters."""
    _check(letters)
    letter = _letter(letters)
    # A bare lowercase letter counts only alone at the end of an answer line ("answer: b").
    line_letter = rf"(?:{letter}|(?P<bare>[{letters.lower()}])(?=[ \t*_.]*(?:\n|$)))"
    anchor = r"(?:(?<![A-Za-z])(?i:answer)|答案)"
    answer_line = rf"{anchor}[ \t*_]*{_SEPARATOR}{_WRAP}{_OPTION}{line_letter}"
    boxed = rf"\\boxed[ \t]*\{{{_WRAP}{letter}{_CLOSE_BOX}"
    is_correct = (rf"(?<![A-Za-z\\]){_OPTION}{letter}[)\]]?[ \t*_]*(?i:is)[ \t]+"
                  r"(?i:the[ \t]+)?(?i:correct|right)\b")
    i_choose = (r"\bI(?:[ \t]+|'ll[ \t]+|[ \t]+will[ \t]+)(?i:choose|pick|select|go[ \t]+with)"
                rf"[ \t]+{_WRAP}{_OPTION}{letter}")
    return (
        ("answer_line", re.compile(answer_line)),
        ("boxed", re.compile(boxed)),
        ("answer_is", re.compile(_ANSWER_IS + _WRAP + _OPTION + letter)),
        ("is_correct", re.compile(is_correct)),
        ("i_choose", re.compile(i_choose)),
    )


@functools.lru_cache(maxsize=8)
def _final_line_rule(letters: str) -> re.Pattern[str]:
    _check(letters)
    return re.compile(_WRAP + _letter(letters) + _CLOSE_LINE)


@functools.lru_cache(maxsize=8)
def _hedge_rule(letters: str) -> re.Pattern[str]:
    """A second letter right after the first: "B and C", "A, B", "(A) or (B)"."""
    _check(letters)
    return re.compile(_HEDGE_JOINER + r"(?:(?i:option|choice)[ \t]*)?(?:[(\[][ \t]?)?"
                      rf"(?:\\text\{{)?([{letters}])(?![A-Za-z0-9_^'])")


def _check(letters: str) -> None:
    if not re.fullmatch(r"[A-Z]+", letters):
        raise ValueError(f"choice letters must be uppercase A-Z, got {letters!r}")


def _letter(letters: str) -> str:
    return rf"(?:\((?P<lower>[{letters.lower()}])\)|(?:[(\[][ \t]?)?(?P<upper>[{letters}]))"


def find_choice(answer: str, letters: str = DEFAULT_LETTERS) -> Choice | None:
    """The last answer statement's letter (and a hedge, if any), else the final line's."""
    last: tuple[int, Choice] | None = None
    for method, pattern in _rules(letters):
        for match in pattern.finditer(answer):
            letter = _standalone_letter(answer, match)
            at = _letter_end(match)  # the same letter found by two rules: the first rule's
            if letter is not None and (last is None or at > last[0]):
                hedge = _hedge_rule(letters).match(answer, at)
                other = hedge.group(1) if hedge and hedge.group(1) != letter else None
                last = (at, Choice(letter, method, other))
    if last is not None:
        return last[1]
    letter = _final_line_letter(answer, _final_line_rule(letters))
    return None if letter is None else Choice(letter, "final_line")


def extract_choice(answer: str, letters: str = DEFAULT_LETTERS) -> tuple[str | None, str | None]:
    """The chosen letter of ``answer`` and the rule that found it, or (None, None) (also for a
    hedge: no single letter was chosen)."""
    choice = find_choice(answer, letters)
    if choice is None or choice.hedge is not None:
        return None, None
    return choice.letter, choice.method


def grade_choice(answer: str, gold_letter: str, letters: str = DEFAULT_LETTERS) -> Grade:
    """Grade a multiple-choice answer against the gold letter (one of ``letters``)."""
    gold = gold_letter.strip().upper()
    if len(gold) != 1 or gold not in letters:
        raise ValueError(f"gold letter {gold_letter!r} is not one of {letters!r}")
    choice = find_choice(answer, letters)
    if choice is None:
        return Grade(False, None, None, None, "no_answer", "no answer letter found")
    if choice.hedge is not None:
        why = f"{choice.method}: hedged between {choice.letter} and {choice.hedge}: not one answer"
        return Grade(False, None, None, choice.method, "no_answer", why)
    correct = choice.letter == gold
    return Grade(
        correct=correct,
        extracted=choice.letter,
        canonical=choice.letter,
        method=choice.method,
        failure=None if correct else "wrong",
        explanation=f"{choice.method}: {choice.letter} {'=' if correct else '!='} gold {gold}",
    )


def grade_choice_up_to_ten(answer: str, gold_letter: str) -> Grade:
    """``grade_choice`` for questions of up to ten options, letters A-J (MMLU-Pro)."""
    return grade_choice(answer, gold_letter, TEN_LETTERS)


def _final_line_letter(text: str, pattern: re.Pattern[str]) -> str | None:
    stripped = text.rstrip()
    last_line = stripped[stripped.rfind("\n") + 1 :].strip()
    if len(last_line) > _FINAL_LINE_MAX:
        return None
    match = pattern.fullmatch(last_line)
    return None if match is None else _standalone_letter(last_line, match)


def _letter_end(match: re.Match[str]) -> int:
    for name, extra in (("upper", 0), ("lower", 1), ("bare", 0)):
        if name in match.re.groupindex and match.group(name):
            return match.end(name) + extra
    raise AssertionError("a rule matched without a letter")


def _standalone_letter(text: str, match: re.Match[str]) -> str | None:
    """The matched letter, unless it continues into a word or a symbol, or is the article
    "A" or the pronoun "I" starting a sentence ("A larger field", "I think").

    Rejects ``Apple``, ``B2``, ``B_0``, ``B^2``, ``A'`` and, past closing braces,
    ``\\mathrm{B}_0``.
    """
    end = _letter_end(match)
    letter = text[end - 1] if not match.group("lower") else match.group("lower")
    following = text[end : end + 1]
    if following and (following.isalnum() or following in "_^'"):
        return None
    past_braces = text[end : end + 8].lstrip("}")[:1]
    if past_braces and past_braces in "_^'":
        return None
    if letter in "AI" and _WORD_AFTER.match(text, end) and not match.group("lower"):
        return None
    return letter.upper()
