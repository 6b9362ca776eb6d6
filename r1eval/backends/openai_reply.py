"""Reading an OpenAI-compatible server's replies: which are completions, which are faults.

What is an infrastructure fault (``Retryable``: retried, never graded) and what is the model's
outcome (graded) is decided here: bodies that are not a chat completion and choices that carry
no output at all (``content: null`` with no reasoning, no refusal and a finish_reason that does
not explain it) are faults. An empty answer is the model's when the server accounts for it:
``content: ""`` (the model stopped at once), or ``content: null`` beside reasoning (the trace
never ended), a refusal, or finish_reason "length" or "content_filter".
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC

from r1eval.backends.server_setup import count
from r1eval.types import Completion, Usage

__all__ = [
    "NoResponse",
    "Reply",
    "Retryable",
    "choice_output",
    "listed_ids",
    "max_running_requests",
    "model_ids",
    "parse_completions",
    "retry_after_header_s",
    "server_message",
    "usage_of",
]

#: Finish reasons that do not explain a message without content (see the module docstring).
_SILENT_FINISH = frozenset({None, "stop"})
#: Message fields that carry the reasoning apart from the answer, in order of preference:
#: ``reasoning_content`` (DeepSeek API, vLLM/SGLang reasoning parsers), ``reasoning``
#: (newer vLLM, Ollama).
_REASONING_FIELDS = ("reasoning_content", "reasoning")


class Retryable(Exception):
    """One attempt failed in a way another attempt may not; never leaves the backend."""

    def __init__(
        self, reason: str, *, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.retry_after_s = retry_after_s


class NoResponse(Retryable):
    """The request got no HTTP response: refused, dropped, timed out. ``unreachable``: no
    connection could be opened at all (refused, no route, unknown host)."""

    def __init__(self, reason: str, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.unreachable = unreachable


@dataclass(frozen=True)
class Reply:
    """One whole HTTP answer."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def parse_completions(response: object, *, latency_s: float) -> list[Completion]:
    """The choices of a response that carry output; ``Retryable`` when there are none.

    A choice without output is left out, like one the server did not send: ``generate`` asks
    for it again. The response's usage is shared by the choices kept, so sums stay what the
    endpoint reported. The body is whatever JSON the server sent: any field may be missing or
    of the wrong type here.
    """
    if not isinstance(response, dict):
        raise Retryable("malformed response: not a chat completion")
    choices: object = response.get("choices")
    if not isinstance(choices, list) or not choices:
        raise Retryable("malformed response: no choices")
    outputs = [output for choice in choices if (output := choice_output(choice)) is not None]
    if not outputs:
        raise Retryable("malformed response: no choice carries any output")
    usage = usage_of(response.get("usage"), shared_by=len(outputs))
    model = response.get("model")
    return [
        Completion(text, reasoning, finish_reason, usage, latency_s,
                   model if isinstance(model, str) else None)
        for text, reasoning, finish_reason in outputs
    ]


def choice_output(choice: object) -> tuple[str, str | None, str | None] | None:
    """A choice's answer text, reasoning and finish_reason; None when it carries no output.

    No output: no message, or ``content: null`` with no reasoning, no refusal and a
    finish_reason that does not explain it (see the module docstring). A refusal with no
    content is kept as the text: it is what the model said, and it holds no answer.
    """
    if not isinstance(choice, dict) or not isinstance(message := choice.get("message"), dict):
        return None
    content: object = message.get("content")
    if content is not None and not isinstance(content, str):
        raise Retryable("malformed response: message content is not text")
    reasoning = _reasoning(message)
    refusal = _text(message.get("refusal"))
    finish = _text(choice.get("finish_reason"))
    if content is None and reasoning is None and not refusal and finish in _SILENT_FINISH:
        return None
    return (content if content is not None else refusal or ""), reasoning, finish


def _reasoning(message: Mapping[str, object]) -> str | None:
    """The separate reasoning text if the server sent one (a field beside ``content``)."""
    texts = [value for name in _REASONING_FIELDS if isinstance(value := message.get(name), str)]
    # A non-empty field wins over an empty one; "" still says the server separates reasoning.
    return next((text for text in texts if text), texts[0] if texts else None)


def usage_of(usage: object, *, shared_by: int) -> Usage:
    """Token counts as reported for the whole response, shared by its choices."""
    if not isinstance(usage, dict):
        return Usage(shared_by=shared_by)
    details = usage.get("completion_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return Usage(
        prompt_tokens=count(usage.get("prompt_tokens")),
        completion_tokens=count(usage.get("completion_tokens")),
        reasoning_tokens=count(reasoning),
        shared_by=shared_by,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def model_ids(body: bytes) -> list[str]:
    """The ``id`` of each entry of a ``/models`` listing; [] when the body is not one."""
    try:
        listing = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return []
    return listed_ids(listing)


def listed_ids(listing: object) -> list[str]:
    """The ``id`` of each entry of a parsed ``/models`` listing; [] when it is not one."""
    entries = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(entries, list):
        return []
    return [e["id"] for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)]


def max_running_requests(info: object) -> int | None:
    """SGLang's limit, at the top of ``/get_server_info`` or in its ``internal_states``."""
    if not isinstance(info, dict):
        return None
    places = [info, *(s for s in info.get("internal_states") or () if isinstance(s, dict))]
    for place in places:
        value = count(place.get("max_running_requests"))
        if value is not None and value > 0:
            return value
    return None


def server_message(reply: Reply) -> str:
    """The server's own error message: an OpenAI-style ``{"error": {"message": ...}}`` body,
    or ``{"message": ...}``, else the body's text, else the status alone."""
    text = reply.body.decode("utf-8", errors="replace")
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        body = text
    if isinstance(body, dict) and "error" in body:
        body = body["error"]
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    if isinstance(body, str) and body.strip():
        return body
    return f"HTTP {reply.status} with {text.strip() or 'an empty body'}"


def retry_after_header_s(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks to wait: ``retry-after-ms``, else ``Retry-After`` as seconds or
    as an HTTP date; None when absent or unreadable."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        seconds = _number(headers.get(name))
        if seconds is not None:
            return max(0.0, seconds * scale)
    http_date = headers.get("retry-after")
    if http_date is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value
