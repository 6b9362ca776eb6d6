"""Backend for any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, llama.cpp, ...).

Talks HTTP with aiohttp directly, as lm-eval does, not through the ``openai`` SDK: the SDK
costs about 1 ms of CPU a request (request transforms, pydantic response models, httpx
wrappers), aiohttp about 0.12 ms, and a harness sharing a laptop's cores with its graders must
not spend them there (``bench/RESULTS.md``). Retries are decided here, in one place: what is
retried, how long to wait and what is finally reported.

Choices made for real servers (see REFERENCE.md section 5):

- no streaming: the SDK costs about 240 µs per streamed chunk;
- ``n`` is sent only when above 1, and when fewer choices come back than asked (llama.cpp and
  ``transformers serve`` ignore ``n``) the rest is asked for in further requests;
- an empty ``stop`` is omitted (``transformers serve`` fails on ``stop: []``), and so is every
  sampling parameter left at None (the server's default applies);
- the token limit is sent as ``max_tokens``: every OpenAI-compatible server reads it, while
  ``max_completion_tokens`` is newer and not read by all of them (older vLLM, llama.cpp and
  Ollama releases), which would then silently generate up to their own default length.
  OpenAI's own o-series models refuse ``max_tokens``; they are not a target of this backend;
- redirects are not followed, and a body over ``max_response_bytes`` is not read (``_whole_reply``).

What is an infrastructure fault (retried, never graded) and what is the model's outcome
(graded): HTTP 429, 408, 409 and 5xx, timeouts, dropped connections, bodies that are not a chat
completion, and choices that carry no output at all (``content: null`` with no reasoning, no
refusal and a finish_reason that does not explain it) are faults; a choice missing from a
response (fewer than ``n``) is asked for again, alone. An empty answer is the model's when the
server accounts for it: ``content: ""`` (the model stopped at once), or ``content: null`` beside
reasoning (the trace never ended), a refusal, or finish_reason "length" or "content_filter".

No exception leaves this module chained to the transport's: those may carry the raw server
reply, which may echo the API key. Messages keep the server's words, with the key redacted.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import logging
import math
import ssl
import time
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp
import certifi
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from r1eval import __version__
from r1eval.backends import server_setup
from r1eval.backends.server_setup import count
from r1eval.backends.sse import StreamAssembler, StreamError
from r1eval.errors import EndpointError, RequestFailed
from r1eval.run.thinking import body_fields
from r1eval.types import Completion, Request, SamplingParams, Usage

__all__ = ["STREAM_MODES", "OpenAICompatBackend", "endpoint_identity"]

log = logging.getLogger(__name__)

#: Sent when no key is given (as the openai SDK does); local servers ignore it.
_NO_KEY = "EMPTY"
#: Waiting for a TCP connection to open never needs the long generation timeout.
_CONNECT_TIMEOUT_S = 30.0
#: Statuses below 500 that are worth another attempt (timeout, conflict, rate limit).
_RETRYABLE_4XX = frozenset({408, 409, 429})
#: Finish reasons that do not explain a message without content (see the module docstring).
_SILENT_FINISH = frozenset({None, "stop"})
#: The preflight's probe: one chat request for a single token.
_PROBE = Request(
    messages=({"role": "user", "content": "Hi"},), n=1, sampling=SamplingParams(max_tokens=1)
)
#: Message fields that carry the reasoning apart from the answer, in order of preference:
#: ``reasoning_content`` (DeepSeek API, vLLM/SGLang reasoning parsers), ``reasoning``
#: (newer vLLM, Ollama).
_REASONING_FIELDS = ("reasoning_content", "reasoning")
_DETAIL_CHARS = 300
#: The largest response body read (``--max-response-mib``): far above any real completion
#: (32,768 tokens of text are well under 1 MiB), small enough that a server sending without end
#: cannot exhaust the memory. Bodies are read in chunks and counted as they arrive.
DEFAULT_MAX_RESPONSE_BYTES = 32 << 20
_READ_CHUNK = 1 << 16
#: A wait for the server's ``Retry-After`` at least this long is announced on screen.
_ANNOUNCED_WAIT_S = 10.0
#: ``auto``: stream requests for more than one choice (each choice is kept as it finishes);
#: ``on``: stream every request; ``off``: never stream.
STREAM_MODES = ("auto", "on", "off")
#: Where SGLang reports its limits (``max_running_requests``), relative to the server's root.

Deliver = Callable[[Completion], Awaitable[None]]


_NOT_ASKED = object()


class _Retryable(Exception):
    """One attempt failed in a way another attempt may not; never leaves this module."""

    def __init__(
        self, reason: str, *, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.retry_after_s = retry_after_s


class _NoResponse(_Retryable):
    """The request got no HTTP response: refused, dropped, timed out."""


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


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


class OpenAICompatBackend:
    """Talks to one model behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

    ``timeout_s`` bounds the wait for a response: the whole generation when it is not
    streamed; when it is, the wait for its first event, and ``idle_timeout_s`` each wait
    between two events after that (a stream that keeps coming is never cut for being long:
    the clock measures the server's silence, not the length of the trace). ``stream``: see
    ``STREAM_MODES``. ``max_attempts`` counts the first try; waits between attempts grow
    exponentially from ``backoff_initial_s`` up to ``backoff_max_s`` with jitter, or follow
    the server's ``Retry-After`` up to ``retry_after_max_s``. ``max_connections`` should be
    at least the number of requests the caller keeps in flight.
    """

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str | None,
        *,
        timeout_s: float = 1800.0,
        max_attempts: int = 8,
        max_connections: int = 512,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        retry_after_max_s: float = 120.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        idle_timeout_s: float = 300.0,
        stream: str = "auto",
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._model = model
        self._base_url = _normalise_url(base_url)
        self._key = api_key or None
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._backoff = wait_exponential_jitter(
            multiplier=backoff_initial_s, max=backoff_max_s, jitter=backoff_initial_s
        )
        self._retry_after_max_s = retry_after_max_s
        self._max_response_bytes = max_response_bytes
        self._preflight_timeout_s = min(timeout_s, _CONNECT_TIMEOUT_S)
        self._max_connections = max_connections
        self._headers = {
            "Authorization": f"Bearer {self._key or _NO_KEY}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"r1eval/{__version__}",
        }
        self._proxy = _proxy_for(self._base_url)
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        if stream not in STREAM_MODES:
            raise ValueError(f"stream must be one of {STREAM_MODES}, not {stream!r}")
        self._stream = stream
        self._idle_timeout_s = idle_timeout_s
        #: Set when the server answered a streamed request with a plain JSON body.
        self.streams = stream != "off"
        #: Set from the first response that asked for several choices and got one.
        self.ignores_n = False
        self._n_checked = False
        self._listing: _Reply | None = None  # GET /models, kept for server_setup
        self._server_info: object = _NOT_ASKED

    def identity(self) -> dict[str, str]:
        """The model name and the normalised base URL (no key, no user:password)."""
        return endpoint_identity(self._model, self._base_url)

    async def aclose(self) -> None:
        """Close the HTTP session and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        """The session of the running event loop, made on first use. An aiohttp session
        belongs to the loop it was made in: call ``aclose`` before that loop ends (as
        ``evaluate`` does); a backend used again under a new loop opens a new session."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            self._session_loop = loop
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, ssl=_tls_context()),
                headers=self._headers,
            )
        return self._session

    async def _request(
        self, method: str, path: str, body: dict[str, Any] | None, timeout_s: float
    ) -> _Reply:
        """One HTTP exchange; ``_NoResponse`` when no HTTP response came back whole.

        Redirects are not followed and a body over the limit is not read (``_whole_reply``).
        """
        timeout = aiohttp.ClientTimeout(
            total=timeout_s, sock_connect=min(timeout_s, _CONNECT_TIMEOUT_S)
        )
        data = None if body is None else json.dumps(body).encode()
        url = path if "://" in path else self._base_url + path
        try:
            async with self._http().request(
                method, url, data=data, timeout=timeout, proxy=self._proxy,
                allow_redirects=False,
            ) as response:
                return await self._whole_reply(url, response)
        except TimeoutError:  # asyncio's: its cause is a CancelledError, which says nothing
            raise _NoResponse(f"no response: timed out after {timeout_s:g} s") from None
        except (aiohttp.ClientError, OSError) as err:
            raise _NoResponse(f"no response: {self._detail(_root_cause(err))}") from None

    async def _whole_reply(self, url: str, response: aiohttp.ClientResponse) -> _Reply:
        """The reply to a request sent to ``url``: not a redirect (``EndpointError``: following
        it would turn a POST into a GET without its body (301, 302) or send the prompts to
        another host (307, 308)), and a body within the limit (``_read_capped``)."""
        if 300 <= response.status < 400:
            location = response.headers.get("Location")
            where = f"to {self._detail(urljoin(url, location))}" if location else "elsewhere"
            raise EndpointError(
                f"{url} redirects (HTTP {response.status}) {where}; r1eval does not follow "
                "redirects: set --base-url to the address that serves the API"
            )
        content = await _read_capped(response, self._max_response_bytes)
        return _Reply(response.status, response.headers, content)

    async def preflight(self) -> None:
        """Check, before a run is set up, that the endpoint answers and serves the model.

        ``GET /models`` first: it costs nothing, and vLLM, SGLang, llama.cpp, Ollama, DeepSeek
        and OpenAI all serve it. When the model is not listed there (llama.cpp lists a file
        name yet serves any model name; some servers have no such route and answer 404), one
        chat request for a single token decides. Raises ``EndpointError`` when the endpoint
        cannot be reached, rejects the key, or does not know the model; an endpoint that is
        only busy or failing (429, 5xx, timeouts) is left to the run's own retries.
        """
        served = await self._listed_models()
        if self._model in served:
            return
        try:
            await self._attempt(_PROBE, 1, timeout_s=self._preflight_timeout_s)
        except EndpointError as err:
            listing = f"; the endpoint serves: {', '.join(served[:10])}" if served else ""
            raise EndpointError(f"{err}{listing}") from None
        except (_Retryable, RequestFailed) as err:
            log.warning("%s: preflight request failed (%s); starting anyway", self._base_url, err)

    async def _listed_models(self) -> list[str]:
        """The model ids of ``GET /models``; [] when the endpoint gives no usable listing."""
        try:
            reply = await self._request("GET", "/models", None, self._preflight_timeout_s)
        except _NoResponse as err:  # refused, unknown host, or no answer
            raise EndpointError(
                f"cannot reach {self._base_url} ({str(err).removeprefix('no response: ')}); "
                "check the base URL and that the server is running"
            ) from None
        except RequestFailed:  # a listing too large to read: the probe decides
            return []
        if reply.status in (401, 403):
            raise self._status_error(reply)
        if reply.status >= 400:
            return []  # no such route (404), or it failed: the probe decides
        self._listing = reply
        return _model_ids(reply.body)

    async def generate(self, request: Request) -> list[Completion]:
        """Return ``request.n`` completions, topping up when the server sent fewer.

        Raises ``RequestFailed`` or ``EndpointError`` when the first request fails; when a
        top-up request fails, returns what was collected (fewer than ``n``).
        """
        if request.n < 1:
            raise ValueError(f"a request must ask for at least one completion, not {request.n}")
        completions = await self._with_retries(request, request.n)
        while len(completions) < request.n:
            try:
                completions += await self._with_retries(request, request.n - len(completions))
            except RequestFailed as err:
                log.warning(
                    "%s: returning %d of %d completions: %s",
                    self._base_url,
                    len(completions),
                    request.n,
                    err,
                )
                break
        return completions[: request.n]

    async def _with_retries(self, request: Request, n: int) -> list[Completion]:
        """One HTTP request for ``n`` choices, retried on transient failures."""
        try:
            completions: list[Completion] = await self._retrying()(self._attempt, request, n)
        except _Retryable as err:
            raise self._gave_up(err) from None
        return completions

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait_s,
            retry=retry_if_exception_type(_Retryable),
            before_sleep=self._log_retry,
            reraise=True,
        )

    def _gave_up(self, err: _Retryable) -> RequestFailed:
        return RequestFailed(
            f"{self._base_url}: gave up after {self._max_attempts} attempts; last: {err}",
            transient=True,
            status=err.status,
        )

    async def generate_each(self, request: Request, deliver: Deliver) -> None:
        """Hand each completion to ``deliver`` as soon as it is finished; ask again only for
        the ones not delivered.

        Requests for several choices are streamed (``stream``): each choice is delivered when
        its own last event arrives, so a stream that breaks after some choices finished keeps
        them, and the next attempt asks only for the others (with the retries and back-off of
        a request that failed whole). Returns once ``request.n`` were delivered, or fewer when
        the server ignores ``n`` (``ignores_n`` is then True: the caller sends the rest as
        separate requests, in parallel). Raises ``RequestFailed`` (or ``EndpointError``) when
        the attempts ran out; what was delivered before stays delivered.
        """
        if request.n < 1:
            raise ValueError(f"a request must ask for at least one completion, not {request.n}")
        delivered = 0

        async def take(completion: Completion) -> None:
            nonlocal delivered
            delivered += 1
            await deliver(completion)

        while delivered < request.n:
            asked: int
            served: int
            try:
                asked, served = await self._retrying()(
                    self._attempt_each, request, lambda: request.n - delivered, take
                )
            except _Retryable as err:
                raise self._gave_up(err) from None
            self._check_n(asked, served)
            if self.ignores_n:
                return

    async def detect_n(self) -> None:
        """Ask once for two one-token choices, before a run's first request for several
        samples: a server that answers one ignores ``n`` (``_check_n``), found out before any
        request for many samples holds room for choices the server will never generate. When
        the probe fails, the run's first answer decides."""
        if self._n_checked:
            return
        try:
            completions = await self._attempt(replace(_PROBE, n=2), 2,
                                              timeout_s=self._preflight_timeout_s)
        except (_Retryable, RequestFailed) as err:
            log.info("%s: probing n failed (%s): the first answer will tell", self._base_url,
                     err)
            return
        self._check_n(2, len(completions))

    def _check_n(self, asked: int, served: int) -> None:
        """Decide from the first response that asked for several choices whether the server
        honours ``n`` (llama.cpp and Ollama answer one choice whatever ``n`` is)."""
        if self._n_checked or asked < 2:
            return
        self._n_checked = True
        if served == 1:
            self.ignores_n = True
            log.warning(
                "%s ignores n (asked for %d choices, got 1): from now on one request per "
                "sample, all in parallel up to the sequence limit", self._base_url, asked
            )

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
            total=None, sock_connect=min(self._timeout_s, _CONNECT_TIMEOUT_S)
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
            raise _Retryable(f"{self._detail(str(err))} {kept()}") from None
        except TimeoutError:
            raise _NoResponse(f"no response: nothing came in {stream.waiting_for} {kept()}"
                              ) from None
        except (aiohttp.ClientError, OSError) as err:
            raise _NoResponse(f"no response: {self._detail(_root_cause(err))} {kept()}"
                              ) from None
        generated = len(stream.assembler.indexes)
        if stream.assembler.unfinished() or (not stream.assembler.done and generated < n):
            raise _NoResponse(f"the stream stopped before its end {kept()}")
        if not stream.delivered:
            raise _Retryable("malformed response: no choice carries any output")
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
                raise _read_capped_error(self._max_response_bytes, response.status)
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
        output = _output(choice)
        if output is None:
            return
        text, reasoning, finish_reason = output
        own = _usage(choice.get("usage"), shared_by=1)
        if own.completion_tokens is not None and stream.delivered:
            own = replace(own, prompt_tokens=0)
        stream.delivered += 1
        await stream.take(Completion(text, reasoning, finish_reason, own,
                                     time.perf_counter() - stream.started,
                                     stream.assembler.model,
                                     stream.first_output_s.get(choice.get("index", 0))))

    async def _unstreamed(self, reply: _Reply, n: int, started: float, take: Deliver) -> int:
        """A streamed request answered with an error status or a whole JSON body (a server
        that does not stream: it is not asked to stream again)."""
        if reply.status == 400 and self._stream == "auto":
            self.streams = False  # perhaps the stream options: asked again whole, at once
            log.warning("%s refused a streamed request (%s): not streaming", self._base_url,
                        self._detail(_server_message(reply)))
            raise _Retryable("HTTP 400 to a streamed request", retry_after_s=0.0)
        if reply.status >= 400:
            raise self._status_error(reply)
        if self.streams:
            self.streams = False
            log.info("%s answers streamed requests whole: not streaming", self._base_url)
        completions = self._parse(reply, started)
        for completion in completions[:n]:
            await take(completion)
        return len(completions)

    async def capacity(self) -> int | None:
        """How many sequences the server generates at once, where it says: SGLang's
        ``max_running_requests`` (``GET /get_server_info`` at the server's root). None when
        it does not say (vLLM publishes no ``max_num_seqs``; hosted APIs nothing)."""
        return _max_running_requests(await self._sglang_info())

    async def _sglang_info(self) -> object:
        """SGLang's server info, asked once per backend (capacity and setup share it)."""
        if self._server_info is _NOT_ASKED:
            self._server_info = await self._probe("GET", server_setup.SGLANG_INFO)
        return self._server_info

    async def _probe(self, method: str, route: str, body: dict[str, Any] | None = None
                     ) -> object:
        """The JSON of a route at the server's root (beside ``/v1``), or None: no such
        route, another answer, no answer within the preflight's time limit."""
        root = self._base_url.removesuffix("/v1")
        try:
            reply = await self._request(method, root + route, body, self._preflight_timeout_s)
            return json.loads(reply.body) if reply.status == 200 else None
        except (_NoResponse, RequestFailed, EndpointError, json.JSONDecodeError,
                UnicodeDecodeError):
            return None

    async def server_setup(self) -> dict[str, Any]:
        """What the server says about itself (``r1eval.backends.server_setup``): vLLM's ``/version``
        and model listing, SGLang's server info, Ollama's ``/api/show`` and version, and the
        listing's response headers; the probes run at once, each within the preflight's
        time limit, at the endpoint's own host only."""
        vllm, sglang, ollama, ollama_version = await asyncio.gather(
            self._probe("GET", server_setup.VLLM_VERSION), self._sglang_info(),
            self._probe("POST", server_setup.OLLAMA_SHOW, {"model": self._model}),
            self._probe("GET", server_setup.OLLAMA_VERSION),
        )
        listing = self._listing or _Reply(0, {}, b"")
        try:
            listed = json.loads(listing.body) if listing.body else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            listed = None
        return server_setup.combine([
            ("/get_server_info", server_setup.from_sglang_info(sglang)),
            ("/api/show", server_setup.from_ollama_show(ollama)),
            ("/api/version", server_setup.from_ollama_version(ollama_version)
             if ollama is not None else {}),
            ("/version", server_setup.from_vllm_version(vllm)),
            ("/v1/models", server_setup.from_models_listing(listed, self._model)),
            ("headers", server_setup.from_headers(listing.headers)),
        ])

    async def _attempt(
        self, request: Request, n: int, timeout_s: float | None = None
    ) -> list[Completion]:
        """One HTTP request; failures become ``_Retryable``, ``EndpointError`` or
        ``RequestFailed``."""
        started = time.perf_counter()
        reply = await self._request(
            "POST", "/chat/completions", self._body(request, n), timeout_s or self._timeout_s
        )
        if reply.status >= 400:
            raise self._status_error(reply)
        return self._parse(reply, started)

    def _parse(self, reply: _Reply, started: float) -> list[Completion]:
        """The completions of a whole (not streamed) HTTP 200 answer."""
        try:
            response = json.loads(reply.body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _Retryable("malformed response: the body is not valid JSON") from None
        if isinstance(response, dict) and "choices" not in response and "error" in response:
            message = self._detail(_server_message(reply))
            raise _Retryable(f"HTTP {reply.status} with an error instead of choices: {message}")
        return _completions(response, latency_s=time.perf_counter() - started)

    def _body(self, request: Request, n: int) -> dict[str, Any]:
        """The chat-completions body: parameters left at None are left out (the server's
        default applies), ``n`` only above 1, ``stop`` only when not empty; then the
        thinking controls (``r1eval.run.thinking``)."""
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

    def _status_error(self, reply: _Reply) -> Exception:
        """Classify an HTTP error status: retry, give up on the request, or on the run."""
        status = reply.status
        detail = self._detail(_server_message(reply))
        if status in (401, 403):
            sent = "the API key" if self._key else "the request (no API key was given)"
            return EndpointError(f"{self._base_url} rejected {sent} (HTTP {status}): {detail}")
        if status == 404:
            return EndpointError(
                f"model {self._model!r} not found at {self._base_url} (HTTP 404; check the "
                f"model name and the base URL): {detail}"
            )
        if status >= 500 or status in _RETRYABLE_4XX:
            retry_after_s = _retry_after_s(reply.headers)
            return _Retryable(
                f"HTTP {status}: {detail}", status=status, retry_after_s=retry_after_s
            )
        return RequestFailed(
            f"{self._base_url} rejected the request (HTTP {status}): {detail}",
            transient=False,
            status=status,
        )

    def _detail(self, text: str) -> str:
        """Text that came from elsewhere, made safe for a one-line message (key redacted)."""
        if self._key:
            text = text.replace(self._key, "***")
        line = " ".join(text.split())
        return line if len(line) <= _DETAIL_CHARS else line[: _DETAIL_CHARS - 3] + "..."

    def _wait_s(self, state: RetryCallState) -> float:
        """Seconds before the next attempt: the server's ``Retry-After`` (capped) if sent."""
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, _Retryable) and error.retry_after_s is not None:
            return min(error.retry_after_s, self._retry_after_max_s)
        return self._backoff(state)

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait_s = state.next_action.sleep if state.next_action is not None else 0.0
        asked = isinstance(error, _Retryable) and error.retry_after_s is not None
        if asked and wait_s >= _ANNOUNCED_WAIT_S:
            log.warning("%s", _announced_wait(self._base_url, str(error), wait_s))
            return
        log.info(
            "%s: attempt %d of %d failed (%s); retrying in %.1f s",
            self._base_url,
            state.attempt_number,
            self._max_attempts,
            error,
            wait_s,
        )


def _announced_wait(base_url: str, error: str, wait_s: float) -> str:
    """What a long wait asked for by the server waits for, and until when."""
    until = time.strftime("%H:%M:%S %Z", time.localtime(time.time() + wait_s))
    return (
        f"{base_url} asked to wait (Retry-After, after {error}): waiting {wait_s:.3g} s, "
        f"until {until}, before trying the request again"
    )


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, read a chunk at a time; ``RequestFailed`` as soon as it exceeds ``limit``
    bytes (as decoded: a compressed body is counted as it expands), so no more than ``limit``
    is ever held."""
    declared = response.content_length
    if declared is None or declared <= limit:
        body = bytearray()
        async for chunk in response.content.iter_chunked(_READ_CHUNK):
            body += chunk
            if len(body) > limit:
                break
        else:
            return bytes(body)
    raise _read_capped_error(limit, response.status)


def _read_capped_error(limit: int, status: int) -> RequestFailed:
    return RequestFailed(
        f"the response is larger than {limit / (1 << 20):g} MiB (--max-response-mib), "
        "far more than any completion: not read",
        transient=False, status=status,
    )


def endpoint_identity(model: str, base_url: str) -> dict[str, str]:
    """What identifies an endpoint in provenance and cache keys; raises on a malformed URL."""
    return {"model": model, "base_url": _normalise_url(base_url)}


def _completions(response: object, *, latency_s: float) -> list[Completion]:
    """The choices of a response that carry output; ``_Retryable`` when there are none.

    A choice without output is left out, like one the server did not send: ``generate`` asks
    for it again. The response's usage is shared by the choices kept, so sums stay what the
    endpoint reported. The body is whatever JSON the server sent: any field may be missing or
    of the wrong type here.
    """
    if not isinstance(response, dict):
        raise _Retryable("malformed response: not a chat completion")
    choices: object = response.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _Retryable("malformed response: no choices")
    outputs = [output for choice in choices if (output := _output(choice)) is not None]
    if not outputs:
        raise _Retryable("malformed response: no choice carries any output")
    usage = _usage(response.get("usage"), shared_by=len(outputs))
    model = response.get("model")
    return [
        Completion(text, reasoning, finish_reason, usage, latency_s,
                   model if isinstance(model, str) else None)
        for text, reasoning, finish_reason in outputs
    ]


def _output(choice: object) -> tuple[str, str | None, str | None] | None:
    """A choice's answer text, reasoning and finish_reason; None when it carries no output.

    No output: no message, or ``content: null`` with no reasoning, no refusal and a
    finish_reason that does not explain it (see the module docstring). A refusal with no
    content is kept as the text: it is what the model said, and it holds no answer.
    """
    if not isinstance(choice, dict) or not isinstance(message := choice.get("message"), dict):
        return None
    content: object = message.get("content")
    if content is not None and not isinstance(content, str):
        raise _Retryable("malformed response: message content is not text")
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


def _usage(usage: object, *, shared_by: int) -> Usage:
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


def _model_ids(body: bytes) -> list[str]:
    """The ``id`` of each entry of a ``/models`` listing; [] when the body is not one."""
    try:
        listing = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return []
    entries = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(entries, list):
        return []
    return [e["id"] for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)]


def _max_running_requests(info: object) -> int | None:
    """SGLang's limit, at the top of ``/get_server_info`` or in its ``internal_states``."""
    if not isinstance(info, dict):
        return None
    places = [info, *(s for s in info.get("internal_states") or () if isinstance(s, dict))]
    for place in places:
        value = count(place.get("max_running_requests"))
        if value is not None and value > 0:
            return value
    return None


def _root_cause(err: BaseException) -> str:
    """The innermost exception, named (aiohttp wraps the socket's error in its own)."""
    while err.__cause__ is not None:
        err = err.__cause__
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _server_message(reply: _Reply) -> str:
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


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
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


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The system's certificate authorities plus certifi's bundle (which the openai SDK
    trusts): some Python builds (python.org's on macOS) come with no system store."""
    context = ssl.create_default_context()
    context.load_verify_locations(certifi.where())
    return context


def _proxy_for(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY``/``HTTP_PROXY``, unless
    ``NO_PROXY`` covers its host), as the openai SDK honours them. Looked up once: aiohttp's
    ``trust_env`` looks it up again in a thread at every request."""
    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _normalise_url(url: str) -> str:
    """``url`` with scheme and host lower-cased, no user:password, no trailing slash."""
    parts = urlsplit(url.strip())
    try:
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number
        host = port = None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise EndpointError(f"not an http(s) URL: {url!r} (expected e.g. http://HOST:PORT/v1)")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), parts.query, ""))
