"""Split a response into its reasoning and its final answer, and grade only the answer.

Only the final answer is graded: a ``\\boxed{}`` or ``Answer: B`` inside the reasoning is a
draft, not the model's answer. A response cut off before its reasoning ended has no answer at
all (it is reported as truncated, never graded). This module imports no math library.

Reasoning is delimited by ``<think>...</think>`` (DeepSeek-R1 and most open reasoning models)
or by another trace format (``TRACE_FORMATS``: Sky-T1's ``<|begin_of_thought|>`` ...
``<|end_of_thought|>`` ``<|begin_of_solution|>`` answer ``<|end_of_solution|>``); which ones are
recognised is a run setting (``reasoning_delimiters``, recorded in run.json). Every format
follows the same rules: the answer is what follows the last closing delimiter (without the
format's answer markers); an opening delimiter never closed means no answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from r1eval.types import Completion, Grade, Grader


@dataclass(frozen=True)
class TraceFormat:
    """How a model delimits its reasoning, and optionally its answer."""

    open: str
    close: str
    answer_open: str | None = None
    answer_close: str | None = None


#: The trace formats known by name (``--reasoning-delimiters think,thought``).
TRACE_FORMATS = {
    "think": TraceFormat("<think>", "</think>"),
    "thought": TraceFormat("<|begin_of_thought|>", "<|end_of_thought|>",
                           "<|begin_of_solution|>", "<|end_of_solution|>"),
    "thinking": TraceFormat("<thinking>", "</thinking>"),
    "reasoning": TraceFormat("<reasoning>", "</reasoning>"),
    "seed": TraceFormat("<seed:think>", "</seed:think>"),
    # s1 / s1.1 (simplescaling): "<|im_start|>think ... <|im_start|>answer Answer: ...".
    "s1": TraceFormat("<|im_start|>think", "<|im_start|>answer"),
}
DEFAULT_DELIMITERS = ("think", "thought")
OPEN_TAG = TRACE_FORMATS["think"].open
CLOSE_TAG = TRACE_FORMATS["think"].close


def trace_formats(names: Iterable[str] = DEFAULT_DELIMITERS) -> tuple[TraceFormat, ...]:
    """The formats named: a name of ``TRACE_FORMATS``, or a custom ``"OPEN CLOSE"`` pair
    (two delimiters separated by whitespace). Raises ``ValueError`` for anything else."""
    formats = []
    for name in names:
        parts = name.split()
        if name in TRACE_FORMATS:
            formats.append(TRACE_FORMATS[name])
        elif len(parts) == 2 and parts[0] != parts[1]:
            formats.append(TraceFormat(parts[0], parts[1]))
        else:
            known = ", ".join(TRACE_FORMATS)
            raise ValueError(f"unknown reasoning delimiters {name!r}: give one of {known}, "
                             "or a custom pair 'OPEN CLOSE'")
    return tuple(formats)


DEFAULT_FORMATS = trace_formats()


def run_trace_formats(recorded: Sequence[str] | None) -> tuple[TraceFormat, ...]:
    """The reasoning delimiters a run was made with, as its run.json records them (a run
    older than the setting: the default ones). Raises ``ValueError`` for an unknown name."""
    return trace_formats(recorded or DEFAULT_DELIMITERS)


@dataclass(frozen=True)
class FinalAnswer:
    """A response split in two; ``answer`` is None when there is nothing to grade."""

    reasoning: str | None
    answer: str | None
    truncated: bool
    note: str


def split_response(
    completion: Completion, formats: tuple[TraceFormat, ...] = DEFAULT_FORMATS
) -> FinalAnswer:
    """Find the final answer of a completion (see the module docstring)."""
    text = completion.text
    truncated = completion.finish_reason == "length"
    closing = _last_close(text, formats)
    if completion.reasoning is not None:
        # Some servers still leak a closing tag into the content: cut at it as well.
        answer = text if closing is None else text[closing[1] + len(closing[0].close):]
        answer = _without_answer_markers(answer, formats)
        return _final(completion.reasoning, answer, truncated, "reasoning given separately")
    if closing is not None:
        trace, at = closing
        before, answer = text[:at], text[at + len(trace.close):]
        note = f"answer after the last {trace.close}"
        answer = _without_answer_markers(answer, formats)
        return _final(_without_open_tag(before, trace), answer, truncated, note)
    opened = next((trace for trace in formats if trace.open in text), None)
    if opened is not None:
        note = f"unterminated reasoning: {opened.open} without {opened.close}"
        return FinalAnswer(_without_open_tag(text, opened), None, truncated, note)
    if truncated:
        note = "cut off at the length limit with no think tags: reasoning and answer inseparable"
        return FinalAnswer(None, None, True, note)
    return _final(None, text, False, "no think tags: the whole text is the answer")


def _last_close(text: str, formats: tuple[TraceFormat, ...]) -> tuple[TraceFormat, int] | None:
    """The format whose closing delimiter comes last in ``text``, and where."""
    found = [(text.rfind(trace.close), trace) for trace in formats]
    at, trace = max(found, key=lambda pair: pair[0], default=(-1, None))
    return None if trace is None or at < 0 else (trace, at)


def _without_answer_markers(answer: str, formats: tuple[TraceFormat, ...]) -> str:
    """The answer inside a format's answer markers (``<|begin_of_solution|>``), if any."""
    answer = answer.strip()
    for trace in formats:
        if trace.answer_open and answer.startswith(trace.answer_open):
            answer = answer.removeprefix(trace.answer_open)
            if trace.answer_close:
                answer = answer.partition(trace.answer_close)[0]
    return answer


def _without_open_tag(reasoning: str, trace: TraceFormat) -> str:
    return reasoning.strip().removeprefix(trace.open).strip()


def _final(reasoning: str | None, answer: str, truncated: bool, note: str) -> FinalAnswer:
    answer = answer.strip()
    if not answer:
        return FinalAnswer(reasoning, None, truncated, f"{note}; the answer is empty")
    return FinalAnswer(reasoning, answer, truncated, note)


def final_answer(
    completion: Completion, formats: tuple[TraceFormat, ...] = DEFAULT_FORMATS
) -> str | Grade:
    """The final answer of ``completion`` to give a grader, or, when it has none, its grade:
    failed as ``truncated`` (cut off at the length limit) or ``no_answer``."""
    final = split_response(completion, formats)
    if final.answer is None:
        return Grade(
            correct=False,
            extracted=None,
            canonical=None,
            method=None,
            failure="truncated" if final.truncated else "no_answer",
            explanation=final.note,
        )
    return final.answer


def grade_completion(
    completion: Completion, gold: str, grader: Grader,
    formats: tuple[TraceFormat, ...] = DEFAULT_FORMATS,
) -> Grade:
    """Grade the final answer of ``completion`` against ``gold`` with ``grader``.

    A completion without a final answer is not passed to the grader (see ``final_answer``).
    """
    answer = final_answer(completion, formats)
    return answer if isinstance(answer, Grade) else grader(answer, gold)
