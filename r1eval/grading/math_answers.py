"""Grade a final answer against a math gold answer (MATH-500 LaTeX, or an AIME integer).

The prediction is the LAST answer statement of the answer, boxed or not (``choose_answer``):

- ``boxed``: the content of the last balanced ``\\boxed{...}`` / ``\\fbox{...}`` (or
  ``\\boxed 5``) of the answer, found here by brace matching and given alone to math-verify.
  Given the whole text, math-verify would parse several boxes as one set ({3, 5} for
  ``\\boxed{5} Wait, actually \\boxed{3}``), which matches neither gold.
- ``boxed_multi``: when the gold is a set of several values (``1,-2``, ``1 \\pm \\sqrt{19}``)
  and the answer ends with a run of boxes joined only by connectors (commas, "and", "or",
  ``\\quad``, ``$``: ``\\boxed{1} \\quad \\text{and} \\quad \\boxed{-2}``), read as one set.
- ``stated``: an explicit statement ("The final answer is $10455$", "Final Answer: east") after
  the last box, or with no box at all (``r1eval.grading.math_statements``).
- ``fallback``: with neither, the value the last sentence ends on ("Therefore, n is 3."); a
  last sentence that states no value (a response cut off mid-reasoning) has no answer.
- none: an answer that stops in the middle of its last statement or value ("The answer is
  \\frac{3}{4} - \\frac", "Final Answer: \\boxed{") has no answer, whatever came before it.

Before math-verify compares them, ordinal suffixes are dropped (``12^{\\text{th}}``), a gold
in percent is compared as a number of percent (``0.25`` is not ``25\\%``), and numbers written
in a base are compared with their base (``4343_5`` is not ``4343_6``).

math-verify's timeouts use ``signal.alarm``, which only works in a process's main thread:
they are on there (the grader pool's workers) and off in any other thread. math-verify reports
a timeout only as a log warning, returning "no value" or "no match" as if the answer were
simply unreadable or wrong: the warning is caught here and the answer fails as
``grader_timeout``, with no extracted answer (as when the pool's wall-clock limit strikes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import re
import signal
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from math_verify import parse, verify

from r1eval.errors import DataError
from r1eval.grading.math_statements import answer_statement, final_sentence
from r1eval.types import Grade

TAIL_CHARS = 4_000
TIMEOUT_S = 5
RETRY_FACTOR = 3
_EXPLAIN_CHARS = 80

# A thin space, negative space, "{,}" or "\ " between digit groups: "1\,000" would parse as 1*0.
_DIGIT_GROUP_SEPARATOR = re.compile(r"(?<=\d)(?:\\[,!;: ]|\{,\})(?=\d{3}(?!\d))")
# What may stand between two boxes of one multi-valued answer: "$\boxed{1}$ and $\boxed{-2}$".
# Any number of connectors: "\boxed{-2} \quad \text{and} \quad \boxed{1}".
_BOX_JOINER = re.compile(
    r"(?:[\s$,;.]|\\[,;: ]|\\[\[\]()]|\\quad|\\qquad|and|or|\\text\{\s*(?:and|or)\s*\})*"
    r"(?:[A-Za-z]\s*=[\s$]*)?"
)
# "12^{\text{th}}", "12^{\mathrm{th}}", "12^\text{th}", "12\text{th}": the ordinal is the number.
_ORDINAL_SUFFIX = re.compile(
    r"(?<=\d)(?:\^\{?[ \t]*)?\\(?:text|mathrm|textrm|rm)[ \t]*\{[ \t]*(?:st|nd|rd|th)[ \t]*\}"
    r"(?:[ \t]*\})?"
)
_PERCENT_SIGN = re.compile(r"\\%|%|\\text\{\s*\\?%\s*\}")
# A number in a base: "4343_6", "4343_{6}", "1011_{2}"; without a base, only digits.
_BASED_NUMBER = re.compile(r"(?P<digits>[0-9A-Za-z]+?)(?:_\{?(?P<base>\d{1,2})\}?)?")
_TEXT_WRAPPER = re.compile(r"\\(?:text|mathrm|textrm)\{([^{}]*)\}")
_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_BOX_BRACE = re.compile(r"[ \t]*\{")
_BRACE_OR_ESCAPE = re.compile(r"\\.|[{}]", re.DOTALL)
# "\boxed 5": TeX boxes one token; a model writing "\boxed 25." means 25.
_BARE_BOX_TOKEN = re.compile(r"[ \t]+([^\s${}\\]+)")
# An integer without signs of formatting, short enough for int() (limited to 4,300 digits).
_PLAIN_INTEGER = re.compile(r"-?\d{1,100}")


def grade_math(answer: str, gold: str) -> Grade:
    """Grade ``answer`` (a final answer, reasoning already removed) against ``gold``.

    Raises ``DataError`` when the gold answer itself does not parse. A math-verify timeout
    is retried once with ``RETRY_FACTOR`` times the limit before the answer fails as
    ``grader_timeout`` (a loaded machine must not change a verdict).
    """
    quick = integer_grade(answer, gold)
    if quick is not None:
        return quick
    timeout = _timeout()
    grade = _grade_with_math_verify(answer, gold, timeout)
    if grade.failure == "grader_timeout" and timeout is not None:
        grade = _grade_with_math_verify(answer, gold, timeout * RETRY_FACTOR)
        if grade.failure == "grader_timeout":
            why = grade.explanation.replace(" after ", f" after {timeout} s, then ", 1)
            grade = dataclasses.replace(grade, explanation=why)
    return grade


def _grade_with_math_verify(answer: str, gold: str, timeout: int | None) -> Grade:
    with _math_verify_timeouts() as timeouts:
        try:
            gold_parsed = list(_parsed_gold(gold, timeout))
        except DataError:
            if not timeouts.seen:
                raise
            gold_parsed = []
        if gold_parsed:
            chosen = choose_answer(answer, _is_multi_valued(gold_parsed))
            parsed = [] if chosen is None else _parse_prediction(chosen, gold, timeout)
            found = chosen is not None and bool(parsed)
            correct = found and bool(verify(gold_parsed, parsed, timeout_seconds=timeout))
    if timeouts.seen:
        why = f"math-verify gave up after {timeout} s ({timeouts.seen}"
        why += " of the gold answer)" if not gold_parsed else ")"
        return Grade(False, None, None, None, "grader_timeout", why)
    method = "fallback" if chosen is None else chosen.method
    if chosen is None or not found:
        why = "no answer found at the end of the answer" if chosen is None else \
            f"the {'boxed' if method.startswith('boxed') else 'stated'} answer does not parse"
        extracted = None if chosen is None else chosen.content
        return Grade(False, extracted, None, method, "no_answer", f"{method}: {why}")
    based_equal = based_numbers_equal(chosen.content, gold)
    if based_equal is not None:
        correct = based_equal
    return _judged(correct, chosen.content, canonical_form(parsed, chosen.content), method, gold)


def integer_grade(answer: str, gold: str) -> Grade | None:
    """The grade of a final answer that is a plain integer against a plain-integer gold
    (every AIME answer, most of MATH-500's), compared as integers: math-verify reaches the same
    result and canonical form through sympy, far slower (bench/grading.py). None otherwise."""
    if not _PLAIN_INTEGER.fullmatch(gold.strip()):
        return None
    chosen = choose_answer(answer, multi_valued=False)
    if chosen is None or not _PLAIN_INTEGER.fullmatch(chosen.content):
        return None
    value = int(chosen.content)
    return _judged(value == int(gold), chosen.content, str(value), chosen.method, gold)


@dataclass(frozen=True)
class Chosen:
    """The answer to grade: its text and how it was found (``boxed``, ``boxed_multi``,
    ``stated``, ``fallback``); ``text_answer`` for a bare word ("east")."""

    content: str
    method: str
    text_answer: bool = False


def choose_answer(answer: str, multi_valued: bool) -> Chosen | None:
    """The final answer of ``answer`` (see the module docstring), or None."""
    offset = max(0, len(answer) - TAIL_CHARS)
    tail = answer[offset:]
    boxes = find_boxes(answer)
    statement = answer_statement(tail)
    if statement is not None and statement.cut_off:
        if not boxes or offset + statement.start >= boxes[-1].end:
            return None  # the answer stops mid-statement: it states nothing
        statement = None
    if boxes:
        later = statement is not None and not statement.text_answer \
            and offset + statement.start >= boxes[-1].end
        if statement is not None and later:
            return Chosen(statement.value, "stated")
        content, method = _boxed_content(answer, boxes, multi_valued)
        return Chosen(content, method)
    if statement is not None:
        return Chosen(statement.value, "stated", statement.text_answer)
    final = final_sentence(tail)
    return None if final is None else Chosen(final.value, "fallback", final.text_answer)


def based_numbers_equal(answer: str, gold: str) -> bool | None:
    """Compare numbers written in a base (``4343_6``; math-verify drops the subscript): equal
    values, an answer without a base read in the gold's. None when neither has a base."""
    gold_match = _BASED_NUMBER.fullmatch(_strip_text(gold))
    answer_match = _BASED_NUMBER.fullmatch(_strip_text(answer))
    if answer_match is None or gold_match is None:
        return None
    gold_base, answer_base = gold_match.group("base"), answer_match.group("base")
    if gold_base is None and answer_base is None:
        return None
    gold_value = _in_base(gold_match.group("digits"), gold_base or "10")
    answer_value = _in_base(answer_match.group("digits"), answer_base or gold_base or "10")
    return gold_value is not None and gold_value == answer_value


def _in_base(digits: str, base: str) -> int | None:
    try:
        return int(digits, int(base))
    except ValueError:
        return None


def _strip_text(latex: str) -> str:
    return _TEXT_WRAPPER.sub(r"\1", latex.strip().strip("$")).replace(" ", "")


def _judged(correct: bool, extracted: str, canonical: str, method: str, gold: str) -> Grade:
    shown = extracted if len(extracted) <= _EXPLAIN_CHARS else extracted[:_EXPLAIN_CHARS] + "..."
    relation = "matches" if correct else "does not match"
    return Grade(
        correct=correct,
        extracted=extracted,
        canonical=canonical,
        method=method,
        failure=None if correct else "wrong",
        explanation=f"{method}: {shown!r} {relation} gold {gold!r}",
    )


def normalise_digit_groups(latex: str) -> str:
    """Remove LaTeX spacing between groups of three digits: ``1\\,000`` -> ``1000``."""
    return _DIGIT_GROUP_SEPARATOR.sub("", latex)


def parse_gold(gold: str) -> list[Any]:
    """Parse a gold answer the way ``grade_math`` does (wrapped in ``\\boxed{}``)."""
    return _parse_boxed(gold, _timeout(), percent=_is_percent(gold))


@functools.lru_cache(maxsize=1024)
def _parsed_gold(gold: str, timeout: int | None) -> tuple[Any, ...]:
    """Remembered: the K responses to a question, graded in between those to other questions,
    share their gold, and parsing it is the larger part of grading a short answer. A gold that
    does not parse raises, so a failure is never remembered."""
    parsed = tuple(_parse_boxed(gold, timeout, percent=_is_percent(gold)))
    if not parsed:
        raise DataError(f"the gold answer {gold!r} does not parse")
    return parsed


def canonical_form(parsed: Sequence[Any], extracted: str) -> str:
    """A string for majority voting: the parsed value printed by sympy, else the raw string.

    ``\\frac12``, ``\\frac{1}{2}`` and ``0.5`` all become ``1/2``.
    """
    for item in parsed:
        if not isinstance(item, str):
            try:
                return str(item)
            except ValueError:  # an integer beyond Python's int-to-str digit limit
                break
    return "".join(extracted.split())


@dataclass(frozen=True)
class Box:
    """One box of a text: ``text[start:end]`` is the whole ``\\boxed{...}``."""

    start: int
    end: int
    content: str


def find_boxes(text: str) -> list[Box]:
    """Every balanced, non-empty ``\\boxed{}`` / ``\\fbox{}`` / ``\\boxed 5`` of ``text``.

    Linear time: the braces are matched in one pass (``\\{`` and ``\\}`` are not braces).
    """
    closing = _matching_braces(text)
    boxes = []
    for command in _BOX_COMMAND.finditer(text):
        box = _box_at(text, command.start(), command.end(), closing)
        if box is not None:
            boxes.append(box)
    return boxes


class _TimeoutWarnings(logging.Handler):
    """Notes math-verify's timeout warnings raised in one thread (its only sign of a timeout).

    While attached, it also keeps them from Python's last-resort output to stderr (a grading
    worker configures no logging), which would copy the whole answer to the terminal.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.seen = ""

    def emit(self, record: logging.LogRecord) -> None:
        message = str(record.msg)
        if record.thread == self.thread and message.startswith("Timeout during"):
            self.seen = message.split(":", 1)[0].lower()  # "timeout during parsing"


@contextlib.contextmanager
def _math_verify_timeouts() -> Iterator[_TimeoutWarnings]:
    handler = _TimeoutWarnings()
    logger = logging.getLogger("math_verify")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        if threading.current_thread() is threading.main_thread():
            # A math-verify timeout can leave its SIGALRM pending (seen under load): it would
            # then go off later, in code that has nothing to do with grading.
            signal.alarm(0)


def _timeout() -> int | None:
    """math-verify's signal timeouts raise outside the main thread: turn them off there."""
    return TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


def _parse_boxed(latex: str, timeout: int | None, percent: bool) -> list[Any]:
    """Parse one answer wrapped in a box, so that math-verify reads all of it as one value.

    Unwrapped, ``[-2,7]`` or ``\\text{(C)}`` may parse to nothing and a pmatrix to one entry.
    Digit groups and ordinal suffixes are removed first, and, against a gold in percent,
    the percent sign (see ``_is_percent``).
    """
    latex = _ORDINAL_SUFFIX.sub("", normalise_digit_groups(latex))
    if percent:
        latex = _PERCENT_SIGN.sub("", latex)
    return list(parse("\\boxed{" + latex + "}", parsing_timeout=timeout))


def _is_percent(gold: str) -> bool:
    """A gold in percent (``25\\%``) is answered by the number of percent, ``25`` or
    ``25\\%``; ``0.25`` reads as 0.25 % and is wrong (the README's grading section)."""
    return _PERCENT_SIGN.search(gold) is not None


def _parse_prediction(chosen: Chosen, gold: str, timeout: int | None) -> list[Any]:
    content = f"\\text{{{chosen.content}}}" if chosen.text_answer else chosen.content
    return _parse_boxed(content, timeout, percent=_is_percent(gold))


def _boxed_content(answer: str, boxes: list[Box], multi_valued: bool) -> tuple[str, str]:
    """The box content to grade and its method: the last box, or the last run of boxes."""
    run = [boxes[-1]]
    for box in reversed(boxes[:-1]):
        joined = box.end <= run[-1].start  # not a box nested in the next one
        if not (joined and _BOX_JOINER.fullmatch(answer, box.end, run[-1].start)):
            break
        run.append(box)
    if len(run) > 1 and multi_valued:
        return ", ".join(box.content for box in reversed(run)), "boxed_multi"
    return boxes[-1].content, "boxed"


def _is_multi_valued(parsed: list[Any]) -> bool:
    """True when the (gold) answer parsed to a finite set of several values."""
    first = next((item for item in parsed if not isinstance(item, str)), None)
    return first is not None and bool(getattr(first, "is_FiniteSet", False)) and len(first) > 1


def _box_at(text: str, start: int, after: int, closing: dict[int, int]) -> Box | None:
    """The box whose command spans ``text[start:after]``; None if unbalanced or empty."""
    opening = _BOX_BRACE.match(text, after)
    if opening is not None:
        end = closing.get(opening.end() - 1)
        if end is None:
            return None
        content = text[opening.end() : end].strip()
        return Box(start, end + 1, content) if content else None
    bare = _BARE_BOX_TOKEN.match(text, after)
    if bare is None:
        return None
    token = bare.group(1).rstrip(".,;:")
    return Box(start, bare.end(), token) if token else None


def _matching_braces(text: str) -> dict[int, int]:
    """Map the index of each ``{`` that is closed to the index of its ``}``."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for token in _BRACE_OR_ESCAPE.finditer(text):
        if token.group() == "{":
            stack.append(token.start())
        elif token.group() == "}" and stack:
            pairs[stack.pop()] = token.start()
    return pairs
