"""Assembling a streamed chat completion (server-sent events) into its finished choices.

A streamed response is a series of ``data: {chunk}`` events ending with ``data: [DONE]``. Each
chunk carries, per choice ``index``, a ``delta`` (pieces of ``content`` and of the reasoning,
``reasoning_content`` or ``reasoning``) and, on the choice's last chunk, its ``finish_reason``.
With ``stream_options: {"include_usage": true}`` a last chunk with no choices carries the
request's ``usage``; with ``"continuous_usage_stats": true`` (vLLM) every chunk carries one,
counting the tokens of the one choice it holds. ``StreamAssembler`` turns that into the
choices in the shape of a non-streamed response (``{"index", "message", "finish_reason"}``),
each handed out the moment its finish_reason arrives, so that a choice that finished is never
lost with the rest of the stream. A choice without a finish_reason when the stream stops did
not finish: it is never a short answer (the caller asks for it again).

Only the stream format lives here; what counts as output and what is retried is the backend's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["StreamAssembler", "StreamError"]

#: Delta fields that carry the reasoning apart from the answer.
_REASONING_FIELDS = ("reasoning_content", "reasoning")


class StreamError(Exception):
    """The stream cannot be read as a chat completion, or the server reported an error in it."""


@dataclass
class _Choice:
    content: list[str] | None = None
    reasoning: dict[str, list[str]] = field(default_factory=dict)
    refusal: list[str] | None = None
    finish_reason: str | None = None

    def add(self, delta: dict[str, Any]) -> None:
        content = delta.get("content")
        if isinstance(content, str):
            if self.content is None:
                self.content = []
            self.content.append(content)
        for name in _REASONING_FIELDS:
            piece = delta.get(name)
            if isinstance(piece, str):
                self.reasoning.setdefault(name, []).append(piece)
        refusal = delta.get("refusal")
        if isinstance(refusal, str):
            if self.refusal is None:
                self.refusal = []
            self.refusal.append(refusal)

    def has_output(self) -> bool:
        return bool(self.content or self.reasoning or self.refusal)

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(self.content) if self.content is not None else None,
        }
        for name, pieces in self.reasoning.items():
            message[name] = "".join(pieces)
        if self.refusal is not None:
            message["refusal"] = "".join(self.refusal)
        return message


@dataclass
class StreamAssembler:
    """Feed it the lines of an SSE stream; it returns each choice as it finishes.

    ``done`` is True once ``data: [DONE]`` arrived; ``usage`` and ``model`` are the last ones
    seen; ``indexes`` is every choice index the stream mentioned (how many choices the server
    is generating: fewer than ``n`` when it ignores ``n``).
    """

    usage: dict[str, Any] | None = None
    model: str | None = None
    done: bool = False
    indexes: set[int] = field(default_factory=set)
    _choices: dict[int, _Choice] = field(default_factory=dict)
    _data: list[str] = field(default_factory=list)
    _began: list[int] = field(default_factory=list)

    def began(self) -> list[int]:
        """The choices whose first output came since the last call (to time it)."""
        began, self._began = self._began, []
        return began

    def feed(self, line: bytes) -> list[dict[str, Any]]:
        """One line of the stream; the choices that this line finished (usually none)."""
        text = line.decode("utf-8", errors="replace").rstrip("\r\n")
        if text.startswith("data:"):
            self._data.append(text[5:].removeprefix(" "))
            return []
        if text or not self._data:  # a comment, another field, or a blank line with no event
            return []
        event, self._data = "\n".join(self._data), []
        return self._event(event)

    def close(self) -> list[dict[str, Any]]:
        """The end of the stream: an event still waiting for its blank line is read."""
        if not self._data:
            return []
        event, self._data = "\n".join(self._data), []
        return self._event(event)

    def unfinished(self) -> int:
        """Choices the stream started and did not finish."""
        return sum(1 for choice in self._choices.values() if choice.finish_reason is None)

    def _event(self, data: str) -> list[dict[str, Any]]:
        if data.strip() == "[DONE]":
            self.done = True
            return []
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            raise StreamError("malformed stream: an event is not valid JSON") from None
        if not isinstance(chunk, dict):
            raise StreamError("malformed stream: an event is not a chat completion chunk")
        if "error" in chunk:
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise StreamError(f"the server reported an error in the stream: {message}")
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        if isinstance(chunk.get("model"), str):
            self.model = chunk["model"]
        entries = chunk.get("choices") or ()
        # vLLM's continuous usage stats: a chunk of one choice counts that choice's tokens
        own_usage = chunk.get("usage") if len(entries) == 1 else None
        return [done for entry in entries
                if (done := self._choice(entry, own_usage)) is not None]

    def _choice(self, entry: object, usage: object) -> dict[str, Any] | None:
        """One choice's part of a chunk; the whole choice when this part finished it (with
        its own ``usage`` when the server counted its tokens apart)."""
        if not isinstance(entry, dict) or not isinstance(index := entry.get("index", 0), int):
            raise StreamError("malformed stream: a choice has no index")
        self.indexes.add(index)
        choice = self._choices.setdefault(index, _Choice())
        if choice.finish_reason is not None:
            return None  # a chunk after the choice finished (e.g. per-choice usage): nothing
        delta = entry.get("delta")
        if isinstance(delta, dict):
            had_output = choice.has_output()
            choice.add(delta)
            if not had_output and choice.has_output():
                self._began.append(index)
        reason = entry.get("finish_reason")
        if not isinstance(reason, str):
            return None
        choice.finish_reason = reason
        finished = {"index": index, "message": choice.message(), "finish_reason": reason}
        if isinstance(usage, dict):
            finished["usage"] = usage
        return finished
