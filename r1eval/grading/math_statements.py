"""Find a math answer that is stated rather than (only) boxed.

Two readings, both of the END of a final answer (the reasoning is already removed):

- ``answer_statement``: the last explicit statement, "the (final) answer is X", "Final Answer: X",
  "answer = X". X is a ``$...$`` / ``\\(...\\)`` / ``\\[...\\]`` span, a box, or the
  mathematical part of the rest of the sentence ("\\dfrac{1}{3}", "x^2 + 2*x + 1", "20 cm"),
  or a single word ("east").
- ``final_sentence``: with no box and no explicit statement, the value the last sentence ends
  on: its last ``$...$`` span, or what follows its last "=" or " is " ("Therefore, n is 3.",
  "a + b + c = 11 + 9 + 0 = 20"), followed by at most a unit. A last sentence that ends on no
  value (a response cut off mid-thought) states no answer: nothing earlier is taken instead.

Every pattern is linear in the text; callers pass a bounded tail.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Statement", "answer_statement", "final_sentence", "is_whole", "math_prefix"]

# "The final answer is", "Final Answer:", "answer =", "**Answer:**", "answer is:".
_PHRASE = re.compile(
    r"(?i:\banswer)(?:\*\*|__)?[ \t]*(?:(?i:is)\b[ \t]*:?|:|：|=)(?:\*\*|__)?[ \t]*"
)
# Display or inline math right after the phrase, possibly on the next line.
_SPAN_OPENERS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))
# A sentence ends at a line break or at ".", "!", "?" followed by a space or the end.
_SENTENCE_END = re.compile(r"\n|[.!?](?=\s|$)")
_TEXT_COMMAND = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox|operatorname)[ \t]*(?=\{)")
_COMMAND = re.compile(r"\\(?:[A-Za-z]+|.)")
_WORD = re.compile(r"[A-Za-z]{2,}")
_SINGLE_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
# What may follow a value at the end of a sentence: nothing, or up to two words (a unit)
# ending the sentence ("cm.": a cut-off "60 and we" does not).
_UNIT_TAIL = re.compile(
    r"[ \t*_]*[.!]?[ \t*_]*|[ \t]*(?:[A-Za-z]+(?:\^\{?\d\}?)?[ \t]*){1,2}[.!][ \t*_]*"
)
_ANCHOR = re.compile(r"=|\b(?:is|are|equals|be)\b")
# After a statement, only this much may follow before the end of the answer: a statement
# followed by pages of text is a thought in the middle of reasoning, not the answer.
STATEMENT_TAIL_CHARS = 300
# What a whole value never ends on: an operator, or a command still waiting for its argument.
_DANGLING_END = re.compile(
    r"(?:[-+*/=^_,]|\\(?:[dtc]?frac|sqrt|[dt]?binom|left|right|boxed|fbox|text\w*|math\w*|"
    r"operatorname|overline|vec|hat|bar|cdot|times|div|pm|mp|leq?|geq?|neq?|approx)?)\s*$"
)
_ESCAPED_BRACE = re.compile(r"\\[{}]")


@dataclass(frozen=True)
class Statement:
    """A stated answer: ``value`` starts at ``start`` of the text; ``text_answer`` for a word;
    ``cut_off`` for a statement that stops mid-expression (it states no answer)."""

    start: int
    value: str
    text_answer: bool
    cut_off: bool = False  # a statement whose value stops mid-expression (``is_whole``)

    @property
    def end(self) -> int:
        return self.start + len(self.value)


def answer_statement(text: str) -> Statement | None:
    """The last explicit answer statement of ``text`` with a readable value, if it is near the
    end (at most ``STATEMENT_TAIL_CHARS`` follow it), else None. The last statement may be one
    cut off mid-expression (``cut_off``): it hides the earlier ones, and states no answer."""
    found = None
    for phrase in _PHRASE.finditer(text):
        statement = _value_at(text, phrase.end())
        if statement is not None:
            found = statement
    if found is None or len(text.rstrip()) - found.end > STATEMENT_TAIL_CHARS:
        return None
    return found


def final_sentence(text: str) -> Statement | None:
    """The value the last sentence of ``text`` ends on, or None (see the module docstring)."""
    stripped = text.rstrip()
    body = stripped.rstrip(".!")
    start = _sentence_start(body)
    sentence = stripped[start:]
    span = _last_math_span(sentence)
    if span is not None:
        value_start, value_end = span
        if _UNIT_TAIL.fullmatch(sentence, value_end + _closer_length(sentence, value_end)):
            value = sentence[value_start:value_end].strip()
            return Statement(start + value_start, value, False) if value else None
    anchor = _last(_ANCHOR.finditer(sentence))
    if anchor is None:
        return None
    rest_start = anchor.end()
    rest = sentence[rest_start:]
    value = math_prefix(rest)
    if value:
        after = rest.find(value) + len(value)
        if _UNIT_TAIL.fullmatch(rest, after) and is_whole(value):
            return Statement(start + rest_start + rest.find(value), value, False)
        return None
    word = rest.strip().rstrip(".!").strip("*_")
    if stripped.endswith((".", "!")) and _SINGLE_WORD.fullmatch(word):
        return Statement(start + rest_start + rest.find(word), word, True)
    return None


def math_prefix(rest: str) -> str:
    """The mathematical beginning of ``rest``: up to the first plain word of two or more
    letters outside LaTeX commands and their ``\\text{}`` arguments, without a trailing
    ``,`` / ``;`` / ``.``. Empty when it holds no digit, command or lone letter."""
    position, end = 0, len(rest)
    cut = end
    while position < end:
        text_command = _TEXT_COMMAND.match(rest, position)
        if text_command is not None:
            position = _after_group(rest, text_command.end())
            continue
        command = _COMMAND.match(rest, position)
        if command is not None:
            position = command.end()
            continue
        word = _WORD.match(rest, position)
        if word is not None and (position == 0 or not rest[position - 1].isalnum()):
            cut = position
            break
        if rest[position] == "\n":
            cut = position
            break
        position += 1
    value = rest[:cut].strip().rstrip(",;:.* \t").strip()  # "**42**." is 42
    if not re.search(r"[0-9\\A-Za-z]", value):
        return ""
    return value


def is_whole(value: str) -> bool:
    """False for a value cut off mid-expression (see the module docstring)."""
    if _DANGLING_END.search(value):
        return False
    depth = 0
    for char in _ESCAPED_BRACE.sub("", value):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    opened = value.count("(") + value.count("[")
    return depth == 0 and opened == value.count(")") + value.count("]")


def _last(matches: Iterator[re.Match[str]]) -> re.Match[str] | None:
    found = None
    for found in matches:  # noqa: B007 - the last one is wanted
        continue
    return found


def _after_group(text: str, brace: int) -> int:
    """The index after the brace group opening at ``brace`` (or the end, if unclosed)."""
    depth = 0
    for index in range(brace, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index + 1
    return len(text)


def _value_at(text: str, start: int) -> Statement | None:
    """The value stated right after an answer phrase ending at ``start``."""
    position = start
    while position < len(text) and text[position] in " \t\n*_":
        position += 1
    for opener, closer in _SPAN_OPENERS:
        if text.startswith(opener, position):
            close = text.find(closer, position + len(opener))
            if close < 0:
                return None
            value = text[position + len(opener) : close].strip()
            return Statement(position + len(opener), value, False) if value else None
    line_end = _SENTENCE_END.search(text, position)
    rest = text[position : line_end.start() if line_end else len(text)]
    value = math_prefix(rest)
    if value:
        return Statement(position, value, False, cut_off=not is_whole(value))
    word = rest.strip().strip("*_")
    if _SINGLE_WORD.fullmatch(word):
        return Statement(position + rest.find(word), word, True)
    return None


def _sentence_start(text: str) -> int:
    """Where the last sentence of ``text`` begins (math spans are not split)."""
    start = 0
    inside = False
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and text.startswith(("\\[", "\\("), index):
            inside, index = True, index + 2
            continue
        if char == "\\" and text.startswith(("\\]", "\\)"), index):
            inside, index = False, index + 2
            continue
        if char == "$":
            inside = not inside
        elif not inside and (char == "\n" or (char in ".!?" and text[index + 1 : index + 2]
                                              in (" ", "\n", "\t"))):
            start = index + 1
        index += 1
    return start


def _last_math_span(sentence: str) -> tuple[int, int] | None:
    """(start, end) of the content of the sentence's last ``$...$`` / ``\\(...\\)`` /
    ``\\[...\\]`` span."""
    best: tuple[int, int] | None = None
    for match in re.finditer(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", sentence,
                             re.DOTALL):
        group = next(g for g in range(1, 5) if match.group(g) is not None)
        best = (match.start(group), match.end(group))
    return best


def _closer_length(sentence: str, end: int) -> int:
    for closer in ("$$", "\\)", "\\]", "$"):
        if sentence.startswith(closer, end):
            return len(closer)
    return 0
