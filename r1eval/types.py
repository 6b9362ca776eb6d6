"""Core value types passed along the run pipeline (ARCHITECTURE.md, "The flow of one run")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Message = dict[str, str]

FailureReason = Literal["no_answer", "truncated", "wrong", "grader_timeout", "grader_error"]


@dataclass(frozen=True)
class Sample:
    """One benchmark question, before it is turned into a prompt.

    ``choices`` holds the answer options of a multiple-choice question in the data's own
    order; ``target`` is the gold answer: a LaTeX answer for math, and for multiple choice
    the letter of the correct option in the data's own order (before any shuffling).
    """

    id: str
    input: str
    target: str
    choices: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Prompt:
    """What one repeat of a sample sends, and the gold answer for exactly that prompt.

    ``metadata`` records what varies per repeat (the GPQA option order, for instance).
    """

    messages: tuple[Message, ...]
    gold: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Usage:
    """Token counts as the endpoint reported them (None when it reported none).

    When one HTTP response carried several choices, endpoints report only the request's
    total: the same totals are then kept on each choice with ``shared_by`` = number of
    choices, so per-sample figures are ``value / shared_by`` and sums stay exact.
    ``estimated`` marks counts approximated from text length (the endpoint reported none).
    """

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    shared_by: int = 1
    estimated: bool = False


@dataclass(frozen=True)
class Completion:
    """One response from a backend: the answer text, the separate reasoning if any."""

    text: str
    reasoning: str | None
    finish_reason: str | None
    usage: Usage = Usage()
    latency_s: float | None = None
    model: str | None = None
    # seconds from sending the request to this choice's first output (streamed only)
    first_token_s: float | None = None
    # the endpoint (base URL) that answered: one of the run's replicas (``--base-url``)
    endpoint: str | None = None


@dataclass(frozen=True)
class Grade:
    """How one response was judged.

    ``extracted`` is the answer as found in the response (None when none was found);
    ``canonical`` is a normalised form used for majority voting; ``method`` names the
    extraction path that found it (e.g. ``boxed``, ``fallback``, ``answer_line``).
    """

    correct: bool
    extracted: str | None
    canonical: str | None
    method: str | None
    failure: FailureReason | None
    explanation: str = ""


#: A task's grader: (final answer, gold answer) -> ``Grade``. It runs in a grading worker
#: process (``r1eval.grading.pool``), so it is a module-level function, picklable by name.
Grader = Callable[[str, str], Grade]


#: The thinking controls (``r1eval.backends.thinking``): part of a run's identity only when set, so
#: the keys and identity of a run made without them stay what they were.
THINKING_CONTROLS = ("reasoning_effort", "chat_template_kwargs", "system_prompt", "extra_body")


@dataclass(frozen=True)
class SamplingParams:
    """Everything sent to the model that changes its output, besides the task's messages.

    ``system_prompt`` is sent as a system turn before them. The JSON objects
    (``chat_template_kwargs``, ``extra_body``) are left out of the hash, not of equality.
    """

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    reasoning_effort: str | None = None
    chat_template_kwargs: dict[str, Any] | None = field(default=None, hash=False)
    system_prompt: str | None = None
    extra_body: dict[str, Any] | None = field(default=None, hash=False)

    def record(self) -> dict[str, Any]:
        """The parameters as a run records them: the thinking controls only when set."""
        return {name: value for name, value in asdict(self).items()
                if value is not None or name not in THINKING_CONTROLS}


@dataclass(frozen=True)
class Request:
    """``n`` responses wanted for the same messages."""

    messages: tuple[Message, ...]
    n: int
    sampling: SamplingParams


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One response wanted: repeat ``repeat`` of one question of one task (slots: a plan holds
    100,000 of them, and each one fewer object for the cyclic garbage collector to scan)."""

    task: str
    sample: Sample
    repeat: int
    prompt: Prompt
    key: str
