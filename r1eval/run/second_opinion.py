"""A second opinion on math grading: where math-verify and a plain check disagree.

The check is independent of math-verify (no sympy, no parser): the extracted answer and the
gold are normalised as strings (spaces, ``$``, ``\\left``/``\\right``, ``\\dfrac``, ``\\text{}``,
degree and percent signs, thousands separators, a leading ``x =``, a trailing period) and, when
both read as numbers (integers, decimals, ``a/b``, ``\\frac{a}{b}``), compared as numbers, else
as strings. It is cruder than math-verify: it misses equivalent forms (``\\sqrt{18}`` and
``3\\sqrt{2}``), so most disagreements are math-verify being right. The list shows where to
look when a reproduction gap might come from grading rather than from the model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from r1eval.run.regrade import Regraded

__all__ = ["Disagreement", "audit", "independent_check", "normalise", "number"]

_DROP = re.compile(r"\\left|\\right|\\[!,;: ]|\\displaystyle|~|\$|\^\{?\\circ\}?|°|\\%|%")
_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox|operatorname)\{([^{}]*)\}")
_THOUSANDS = re.compile(r"(?<=\d)(?:,|\{,\})(?=\d{3}(?!\d))")
_ASSIGNMENT = re.compile(r"^[A-Za-z]\s*=\s*")
_FRAC = re.compile(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}|(-?)\\frac(\d)(\d)")
_SLASH = re.compile(r"(-?\d+)/(-?\d+)")


def normalise(answer: str) -> str:
    """The answer as a plain string for comparison (see the module docstring)."""
    text = answer.strip()
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = _WRAPPERS.sub(r"\1", text)
    text = _DROP.sub("", text)
    text = _THOUSANDS.sub("", text)
    text = "".join(text.split()).rstrip(".")
    return _ASSIGNMENT.sub("", text)


def number(text: str) -> Fraction | None:
    """A normalised answer's exact value, when it is a plain number or fraction."""
    frac = _FRAC.fullmatch(text)
    if frac:
        sign, top, bottom = (frac.group(1), frac.group(2), frac.group(3)) if frac.group(2) \
            else (frac.group(4), frac.group(5), frac.group(6))
        return _ratio(top, bottom, negative=sign == "-")
    slash = _SLASH.fullmatch(text)
    if slash:
        return _ratio(slash.group(1), slash.group(2), negative=False)
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def _ratio(top: str, bottom: str, negative: bool) -> Fraction | None:
    if int(bottom) == 0:
        return None
    value = Fraction(int(top), int(bottom))
    return -value if negative else value


def independent_check(extracted: str, gold: str) -> tuple[bool, str]:
    """Whether ``extracted`` equals ``gold`` by the plain check, and how it compared."""
    answer, expected = normalise(extracted), normalise(gold)
    answer_value, gold_value = number(answer), number(expected)
    if answer_value is not None and gold_value is not None:
        return answer_value == gold_value, "numeric"
    return answer == expected, "string"


@dataclass(frozen=True)
class Disagreement:
    task: str
    sample_id: str
    repeat: int
    extracted: str
    gold: str
    math_verify: bool
    check: bool
    compared: str
    method: str | None


def audit(regraded: Iterable[Regraded], tasks: Iterable[str]) -> list[Disagreement]:
    """The responses of ``tasks`` (those graded by math-verify) with an extracted answer on
    which math-verify's verdict and the independent check disagree."""
    wanted = set(tasks)
    found = []
    for r in regraded:
        grade = r.after
        if r.task not in wanted or grade.extracted is None:
            continue
        agrees, compared = independent_check(grade.extracted, r.gold)
        if agrees != grade.correct:
            found.append(Disagreement(r.task, r.sample_id, r.repeat, grade.extracted, r.gold,
                                      grade.correct, agrees, compared, grade.method))
    return found
