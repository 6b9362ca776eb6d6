"""One attempt at a chat completion: its body, and its answer read whole or as a stream.

Choices made for real servers (see REFERENCE.md section 5):

- ``n`` is sent only when above 1 (the backend asks again for choices a server did not send);
- an empty ``stop`` is omitted (``transformers serve`` fails on ``stop: []``), and so is every
  sampling parameter left at None (the server's default applies);
- the token limit is sent as ``max_tokens``: every OpenAI-compatible server reads it, while
  ``max_completion_tokens`` is newer and not read by all of them (older vLLM, llama.cpp and
  Ollama releases), which would then silently generate up to their own default length.
  OpenAI's own o-series models refuse ``max_tokens``; they are not a target of this backend;
- a streamed request (``STREAM_MODES``) delivers each choice as its own last event arrives;
  a server that answers whole, or refuses the stream options, is not asked to stream again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp

from r1eval.backends.endpoint_http import (
    CONNECT_TIMEOUT_S,
    EndpointHTTP,
    too_large_error,
)
from r1eval.backends.openai_reply import (
    NoResponse,
    Reply,
    Retryable,
    choice_output,
    parse_completions,
    server_message,
    usage_of,
)
from r1eval.backends.sse import StreamAssembler, StreamError
from r1eval.backends.thinking import body_fields
from r1eval.types import Completion, Request

__all__ = ["STREAM_MODES", "ChatAttempts", "Deliver"]

log = logging.getLogger(__name__)

#: ``auto``: stream requests for more than one choice (each choice is kept as it finishes);
#: ``on``: stream every request; ``off``: never stream.
STREAM_MODES = ("auto", "on", "off")

Deliver = Callable[[Completion], Awaitable[None]]


@dataclass
class _Stream:
    """What one streamed request has brought so far."""

    started: float
    take: Deliver
    waiting_for: str
    assembler: StreamAssembler = field(default_factory=StreamAssembler)
    delivered: int = 0
    first_output_s: dict[int, float] = field(default_factory=dict)  # by choice index

    def finished(self, choices: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``choices`` the last line finished, after timing the first output of those it
        began (a choice may begin and finish in one event)."""
        now = time.perf_counter() - self.started
        for index in self.assembler.began():
            self.first_output_s.setdefault(index, now)
        return choices



class ChatAttempts(EndpointHTTP):
    """Single attempts at ``/chat/completions`` (no retries: the backend decides those).

    ``timeout_s`` bounds the wait for a response: the whole generation when it is not
    streamed; when it is, the wait for its first event, and ``idle_timeout_s`` each wait
    between two events after that (a stream that keeps coming is never cut for being long:
    the clock measures the server's silence, not the length of the trace).
    """

    def __init__(self, model: str, base_url: str, api_key: str | None, *,
                 idle_timeout_s: float, stream: str, **http: Any) -> None:
        """``http``: ``EndpointHTTP``'s options (timeout, connections, response size)."""
        super().__init__(model, base_url, api_key, **http)
        if stream not in STREAM_MODES:
            raise ValueError(f"stream must be one of {STREAM_MODES}, not {stream!r}")
        self._stream = stream
        self._idle_timeout_s = idle_timeout_s
        #: Set when the server answered a streamed request with a plain JSON body.
        self.streams = stream != "off"

    async def _attempt_each(
        self, request: Request, wanted: Callable[[], int], take: Deliver
    ) -> tuple[int, int]:
        """One HTTP request for the ``wanted()`` choices still missing, each handed to
        ``take`` when finished; returns (choices asked, choices the server generated)."""
        n = wanted()
        if self.streams and (self._stream == "on" or n > 1):
            return n, await self._stream_attempt(request, n, take)
        completions = await self._attempt(request, n)
        for completion in completions[:n]:
            await take(completion)
        return n, len(completions)

    async def _stream_attempt(self, request: Request, n: int, take: Deliver) -> int:
        """One streamed request: the first event within ``timeout_s``, each next one within
        ``idle_timeout_s``; returns how many choices the server generated."""
        body = {**self._body(request, n), "stream": True,
                "stream_options": {"include_usage": True, "continuous_usage_stats": True}}
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=min(self._timeout_s, CONNECT_TIMEOUT_S)
        )
        stream = _Stream(time.perf_counter(), take,
                         waiting_for=f"the first event within {self._timeout_s:g} s")

        def kept() -> str:
            return f"({stream.delivered} of {n} choices kept)"

        try:
            async with asyncio.timeout(self._timeout_s) as deadline:
                url = self._base_url + "/chat/completions"
                async with self._http().post(
                    url, data=json.dumps(body).encode(), timeout=timeout, proxy=self._proxy,
                    headers={"Accept": "text/event-stream"}, allow_redirects=False,
                ) as response:
                    if response.status >= 300 or response.content_type != "text/event-stream":
                        reply = await self._whole_reply(url, response)
                        return await self._unstreamed(reply, n, stream.started, take)
                    await self._read_events(response, stream, deadline)
            for choice in stream.finished(stream.assembler.close()):
                await self._deliver_streamed(choice, stream)
        except StreamError as err:
            raise Retryable(f"{self._detail(str(err))} {kept()}") from None
        except TimeoutError:
            raise NoResponse(f"no response: nothing came in {stream.waiting_for} {kept()}"
                              ) from None
        except (aiohttp.ClientError, OSError) as err:
            raise self._no_response(err, f" {kept()}") from None
        generated = len(stream.assembler.indexes)
        if stream.assembler.unfinished() or (not stream.assembler.done and generated < n):
            raise NoResponse(f"the stream stopped before its end {kept()}")
        if not stream.delivered:
            raise Retryable("malformed response: no choice carries any output")
        return generated

    async def _read_events(
        self, response: aiohttp.ClientResponse, stream: _Stream, deadline: asyncio.Timeout
    ) -> None:
        """Read a stream to its end, delivering each choice as it finishes; the deadline
        moves to ``idle_timeout_s`` after each event (not while delivering: logging and
        grading are not the server's silence)."""
        loop = asyncio.get_running_loop()
        read = 0
        while line := await response.content.readline():
            read += len(line)
            if read > self._max_response_bytes:  # a stream without end
                raise too_large_error(self._max_response_bytes, response.status)
            stream.waiting_for = f"the next event within {self._idle_timeout_s:g} s"
            deadline.reschedule(None)
            for choice in stream.finished(stream.assembler.feed(line)):
                await self._deliver_streamed(choice, stream)
            deadline.reschedule(loop.time() + self._idle_timeout_s)

    async def _deliver_streamed(self, choice: dict[str, Any], stream: _Stream) -> None:
        """Deliver one finished choice of a stream; nothing when it carries no output (it is
        asked for again).

        Its token counts are its own where the server counted them per choice (vLLM's
        ``continuous_usage_stats``), the prompt's counted once, on the request's first
        choice delivered, so sums stay what the server billed. Otherwise it carries none
        and the log estimates them from its text (marked so): the request's usage comes
        only after its last choice.
        """
        output = choice_output(choice)
        if output is None:
            return
        text, reasoning, finish_reason = output
        own = usage_of(choice.get("usage"), shared_by=1)
        if own.completion_tokens is not None and stream.delivered:
            own = replace(own, prompt_tokens=0)
        stream.delivered += 1
        await stream.take(Completion(text, reasoning, finish_reason, own,
                                     time.perf_counter() - stream.started,
                                     stream.assembler.model,
                                     stream.first_output_s.get(choice.get("index", 0))))

    async def _unstreamed(self, reply: Reply, n: int, started: float, take: Deliver) -> int:
        """A streamed request answered with an error status or a whole JSON body (a server
        that does not stream: it is not asked to stream again)."""
        if reply.status == 400 and self._stream == "auto":
            self.streams = False  # perhaps the stream options: asked again whole, at once
            log.warning("%s refused a streamed request (%s): not streaming", self._base_url,
                        self._detail(server_message(reply)))
            raise Retryable("HTTP 400 to a streamed request", retry_after_s=0.0)
        if reply.status >= 400:
            raise self._status_error(reply)
        if self.streams:
            self.streams = False
            log.info("%s answers streamed requests whole: not streaming", self._base_url)
        completions = self._parse(reply, started)
        for completion in completions[:n]:
            await take(completion)
        return len(completions)


    async def _attempt(
        self, request: Request, n: int, timeout_s: float | None = None
    ) -> list[Completion]:
        """One HTTP request; failures become ``Retryable``, ``EndpointError`` or
        ``RequestFailed``."""
        started = time.perf_counter()
        reply = await self._request(
            "POST", "/chat/completions", self._body(request, n), timeout_s or self._timeout_s
        )
        if reply.status >= 400:
            raise self._status_error(reply)
        return self._parse(reply, started)

    def _parse(self, reply: Reply, started: float) -> list[Completion]:
        """The completions of a whole (not streamed) HTTP 200 answer."""
        try:
            response = json.loads(reply.body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise Retryable("malformed response: the body is not valid JSON") from None
        if isinstance(response, dict) and "choices" not in response and "error" in response:
            message = self._detail(server_message(reply))
            raise Retryable(f"HTTP {reply.status} with an error instead of choices: {message}")
        return parse_completions(response, latency_s=time.perf_counter() - started)

    def _body(self, request: Request, n: int) -> dict[str, Any]:
        """The chat-completions body: parameters left at None are left out (the server's
        default applies), ``n`` only above 1, ``stop`` only when not empty; then the
        thinking controls (``r1eval.backends.thinking``)."""
        sampling = request.sampling
        body: dict[str, Any] = {"model": self._model, "messages": list(request.messages)}
        if n > 1:
            body["n"] = n
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        given = {
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "seed": sampling.seed,
        }
        body.update((name, value) for name, value in given.items() if value is not None)
        body.update(body_fields(sampling.record()))
        return body
