"""Grade a final answer against a math gold answer (MATH-500 LaTeX, or an AIME integer).

The prediction is, in order of preference:

- ``boxed``: the content of the last balanced ``\\boxed{...}`` / ``\\fbox{...}`` (or
  ``\\boxed 5``) of the answer, found here by brace matching and given alone to math-verify.
  Given the whole text, math-verify would parse several boxes as one set ({3, 5} for
  ``\\boxed{5} Wait, actually \\boxed{3}``), which matches neither gold.
- ``boxed_multi``: when the gold is a set of several values (``1,-2``, ``1 \\pm \\sqrt{19}``)
  and the answer ends with a run of boxes joined only by commas, "and" or "or"
  (``\\boxed{1} and \\boxed{-2}``), the contents of that run, read as one set.
- ``fallback``: with no box at all, math-verify's own anchors ("the final answer is 9", the last
  ``$...$``) on the last ``TAIL_CHARS`` characters of the answer.

math-verify's timeouts use ``signal.alarm``, which only works in a process's main thread:
they are on there (the grader pool's workers) and off in any other thread. math-verify reports
a timeout only as a log warning, returning "no value" or "no match" as if the answer were
simply unreadable or wrong: the warning is caught here and the answer fails as
``grader_timeout``, with no extracted answer (as when the pool's wall-clock limit strikes).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import signal
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

from r1eval.errors import DataError
from r1eval.types import Grade

TAIL_CHARS = 4_000
TIMEOUT_S = 5
_EXPLAIN_CHARS = 80

# A thin space, negative space, "{,}" or "\ " between digit groups: "1\,000" would parse as 1*0.
_DIGIT_GROUP_SEPARATOR = re.compile(r"(?<=\d)(?:\\[,!;: ]|\{,\})(?=\d{3}(?!\d))")
# What may stand between two boxes of one multi-valued answer: "$\boxed{1}$ and $\boxed{-2}$".
_BOX_JOINER = re.compile(
    r"[\s$,;.]*(?:(?:and|or|\\text\{\s*(?:and|or)\s*\}|\\quad|\\qquad)[\s$,;.]*)?"
    r"(?:[A-Za-z]\s*=[\s$]*)?"
)
_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_BOX_BRACE = re.compile(r"[ \t]*\{")
_BRACE_OR_ESCAPE = re.compile(r"\\.|[{}]", re.DOTALL)
# "\boxed 5": TeX boxes one token; a model writing "\boxed 25." means 25.
_BARE_BOX_TOKEN = re.compile(r"[ \t]+([^\s${}\\]+)")
_FALLBACK_CONFIG = (LatexExtractionConfig(), ExprExtractionConfig())
# An integer without signs of formatting, short enough for int() (limited to 4,300 digits).
_PLAIN_INTEGER = re.compile(r"-?\d{1,100}")


def grade_math(answer: str, gold: str) -> Grade:
    """Grade ``answer`` (a final answer, reasoning already removed) against ``gold``.

    Raises ``DataError`` when the gold answer itself does not parse.
    """
    quick = integer_grade(answer, gold)
    if quick is not None:
        return quick
    timeout = _timeout()
    gold_parsed = list(_parsed_gold(gold, timeout))
    with _math_verify_timeouts() as timeouts:
        parsed, extracted, method = _prediction(answer, gold_parsed, timeout)
        found = bool(parsed) and extracted is not None
        correct = found and bool(verify(gold_parsed, parsed, timeout_seconds=timeout))
    if timeouts.seen:
        why = f"math-verify gave up after {TIMEOUT_S} s ({timeouts.seen})"
        return Grade(False, None, None, method, "grader_timeout", f"{method}: {why}")
    if not found or extracted is None:
        why = "the boxed answer does not parse" if method != "fallback" else "no answer found"
        return Grade(False, extracted, None, method, "no_answer", f"{method}: {why}")
    return _verdict(correct, extracted, canonical_form(parsed, extracted), method, gold)


def integer_grade(answer: str, gold: str) -> Grade | None:
    """The grade of a last box holding a plain integer against a plain-integer gold (every
    AIME answer, most of MATH-500's), compared as integers: math-verify reaches the same
    verdict and canonical form through sympy, a hundred times slower. None otherwise."""
    if not _PLAIN_INTEGER.fullmatch(gold.strip()):
        return None
    boxes = find_boxes(answer)
    if not boxes or not _PLAIN_INTEGER.fullmatch(boxes[-1].content):
        return None
    extracted = boxes[-1].content
    value = int(extracted)
    return _verdict(value == int(gold), extracted, str(value), "boxed", gold)


def _verdict(correct: bool, extracted: str, canonical: str, method: str, gold: str) -> Grade:
    shown = extracted if len(extracted) <= _EXPLAIN_CHARS else extracted[:_EXPLAIN_CHARS] + "..."
    verdict = "matches" if correct else "does not match"
    return Grade(
        correct=correct,
        extracted=extracted,
        canonical=canonical,
        method=method,
        failure=None if correct else "wrong",
        explanation=f"{method}: {shown!r} {verdict} gold {gold!r}",
    )


def normalise_digit_groups(latex: str) -> str:
    """Remove LaTeX spacing between groups of three digits: ``1\\,000`` -> ``1000``."""
    return _DIGIT_GROUP_SEPARATOR.sub("", latex)


def parse_gold(gold: str) -> list[Any]:
    """Parse a gold answer the way ``grade_math`` does (wrapped in ``\\boxed{}``)."""
    return _parse_boxed(gold, _timeout())


@functools.lru_cache(maxsize=1024)
def _parsed_gold(gold: str, timeout: int | None) -> tuple[Any, ...]:
    """Remembered: the K responses to a question, graded in between those to other questions,
    share their gold, and parsing it is the larger part of grading a short answer. A gold that
    does not parse raises, so a failure is never remembered."""
    parsed = tuple(_parse_boxed(gold, timeout))
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


def _parse_boxed(latex: str, timeout: int | None) -> list[Any]:
    """Parse one answer wrapped in a box, so that math-verify reads all of it as one value.

    Unwrapped, ``[-2,7]`` or ``\\text{(C)}`` may parse to nothing and a pmatrix to one entry.
    """
    wrapped = "\\boxed{" + normalise_digit_groups(latex) + "}"
    return list(parse(wrapped, parsing_timeout=timeout))


def _prediction(
    answer: str, gold_parsed: list[Any], timeout: int | None
) -> tuple[list[Any], str | None, str]:
    """Parse the prediction: (parsed values, the string that was parsed, method)."""
    boxes = find_boxes(answer)
    if boxes:
        content, method = _boxed_content(answer, boxes, gold_parsed)
        return _parse_boxed(content, timeout), content, method
    tail = normalise_digit_groups(answer[-TAIL_CHARS:])
    parsed = list(parse(tail, extraction_config=_FALLBACK_CONFIG, parsing_timeout=timeout))
    # parse() returns [value, matched string], [matched string] if that did not parse, or [].
    matched = [item for item in parsed if isinstance(item, str)]
    return parsed, (matched[-1] if matched else None), "fallback"


def _boxed_content(answer: str, boxes: list[Box], gold_parsed: list[Any]) -> tuple[str, str]:
    """The box content to grade and its method: the last box, or the last run of boxes."""
    run = [boxes[-1]]
    for box in reversed(boxes[:-1]):
        joined = box.end <= run[-1].start  # not a box nested in the next one
        if not (joined and _BOX_JOINER.fullmatch(answer, box.end, run[-1].start)):
            break
        run.append(box)
    if len(run) > 1 and _is_multi_valued(gold_parsed):
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
