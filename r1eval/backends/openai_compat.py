"""Backend for any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, llama.cpp, ...).

The HTTP exchange is ``endpoint_http``, one attempt at a completion ``chat_attempts``, the
reading of a reply ``openai_reply``, the retries ``retry_policy`` (what is retried, how long to
wait and what is finally reported). Here: the choices asked for again, each attempt's outcome
told to the pool's rotation, and what the server is asked about itself (preflight, capacity,
setup).

- no streaming unless asked for several choices (``STREAM_MODES``);
- ``n`` is sent only when above 1, and when fewer choices come back than asked (llama.cpp and
  ``transformers serve`` ignore ``n``) the rest is asked for in further requests;
- a choice missing from a response (fewer than ``n``) or without output is asked for again,
  alone; HTTP 429, 408, 409 and 5xx, timeouts, dropped connections and bodies that are not a
  chat completion are retried, never graded.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from r1eval.backends import server_setup
from r1eval.backends.chat_attempts import STREAM_MODES, ChatAttempts, Deliver
from r1eval.backends.endpoint_http import DEFAULT_MAX_RESPONSE_BYTES, endpoint_identity
from r1eval.backends.openai_reply import (
    NoResponse,
    Reply,
    Retryable,
    max_running_requests,
    model_ids,
)
from r1eval.backends.retry_policy import RetryPolicy
from r1eval.backends.rotation import Rotation
from r1eval.errors import EndpointError, RequestFailed
from r1eval.types import Completion, Request, SamplingParams

__all__ = ["STREAM_MODES", "OpenAICompatBackend", "endpoint_identity"]

log = logging.getLogger(__name__)

#: The preflight's probe: one chat request for a single token.
_PROBE = Request(
    messages=({"role": "user", "content": "Hi"},), n=1, sampling=SamplingParams(max_tokens=1)
)
_NOT_ASKED = object()
_T = TypeVar("_T")


class OpenAICompatBackend(ChatAttempts):
    """Talks to one model behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

    ``timeout_s`` and ``idle_timeout_s``: see ``ChatAttempts``; ``stream``: see
    ``STREAM_MODES``. ``max_attempts`` counts the first try; waits between attempts grow
    exponentially from ``backoff_initial_s`` up to ``backoff_max_s`` with jitter, or follow
    the server's ``Retry-After`` up to ``retry_after_max_s``. ``max_connections`` should be
    at least the number of requests the caller keeps in flight. ``rotation``: the endpoint's
    standing in a pool of replicas (``r1eval.backends.replicas``), told of every attempt.
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
        rotation: Rotation | None = None,
    ) -> None:
        super().__init__(model, base_url, api_key, timeout_s=timeout_s,
                         max_connections=max_connections, max_response_bytes=max_response_bytes,
                         idle_timeout_s=idle_timeout_s, stream=stream)
        self._retry = RetryPolicy(self._base_url, max_attempts, backoff_initial_s,
                                  backoff_max_s, retry_after_max_s, rotation)
        #: Set from the first response that asked for several choices and got one.
        self.ignores_n = False
        self._n_checked = False
        self._listing: Reply | None = None  # GET /models, kept for server_setup
        self._server_info: object = _NOT_ASKED
        self._rotation = rotation

    def identity(self) -> dict[str, str]:
        """The model name and the normalised base URL (no key, no user:password)."""
        return endpoint_identity(self._model, self._base_url)

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
        except (Retryable, RequestFailed) as err:
            log.warning("%s: preflight request failed (%s); starting anyway", self._base_url, err)

    async def _listed_models(self) -> list[str]:
        """The model ids of ``GET /models``; [] when the endpoint gives no usable listing."""
        try:
            reply = await self._request("GET", "/models", None, self._preflight_timeout_s)
        except NoResponse as err:  # refused, unknown host, or no answer
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
        return model_ids(reply.body)

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
        return [replace(c, endpoint=self._base_url) for c in completions[: request.n]]

    async def _with_retries(self, request: Request, n: int) -> list[Completion]:
        """One HTTP request for ``n`` choices, retried on transient failures."""
        try:
            completions = await self._retry.run(self._observed(self._attempt), request, n)
        except Retryable as err:
            raise self._retry.gave_up(err) from None
        return completions

    def _observed(self, attempt: Callable[..., Awaitable[_T]]) -> Callable[..., Awaitable[_T]]:
        """``attempt``, its outcome told to the pool's ``Rotation`` (if any); not tried at all
        once the endpoint should leave (the retry loop then stops)."""
        rotation = self._rotation
        if rotation is None:
            return attempt

        async def observed(*args: Any) -> _T:
            if rotation.should_leave():
                raise Retryable("out of rotation")
            try:
                result = await attempt(*args)
            except Retryable as err:
                await self._judge(rotation, err)
                raise
            rotation.attempt_succeeded()
            return result

        return observed

    async def _judge(self, rotation: Rotation, err: Retryable) -> None:
        """Tell ``rotation`` of a failed attempt. No connection at all, or a dropped one
        where the server then does not answer ``GET /models`` either (a server that died):
        out at once, so its requests move now rather than after their back-off; else a 5xx
        or a silence counts towards the streak."""
        rotation.attempt_failed(
            endpoint_level=isinstance(err, NoResponse) or (err.status or 0) >= 500)
        if isinstance(err, NoResponse) and rotation.in_rotation and (
                err.unreachable or not await self.alive()):
            rotation.take_out(str(err))

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
            await deliver(replace(completion, endpoint=self._base_url))

        while delivered < request.n:
            asked: int
            served: int
            try:
                asked, served = await self._retry.run(
                    self._observed(self._attempt_each), request, lambda: request.n - delivered,
                    take)
            except Retryable as err:
                raise self._retry.gave_up(err) from None
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
        except (Retryable, RequestFailed) as err:
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


    async def capacity(self) -> int | None:
        """How many sequences the server generates at once, where it says: SGLang's
        ``max_running_requests`` (``GET /get_server_info`` at the server's root). None when
        it does not say (vLLM publishes no ``max_num_seqs``; hosted APIs nothing)."""
        return max_running_requests(await self._sglang_info())

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
        except (NoResponse, RequestFailed, EndpointError, json.JSONDecodeError,
                UnicodeDecodeError):
            return None

    def listing(self) -> object:
        """The JSON of the ``GET /models`` the preflight read; None when there was none."""
        try:
            return json.loads(self._listing.body) if self._listing else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None

    async def alive(self) -> bool:
        """Whether the server answers ``GET /models`` (below HTTP 500) within the
        preflight's time limit: the probe of a replica out of rotation."""
        try:
            reply = await self._request("GET", "/models", None, self._preflight_timeout_s)
        except (NoResponse, RequestFailed):
            return False
        return reply.status < 500

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
        listing = self._listing or Reply(0, {}, b"")
        listed = self.listing()
        return server_setup.combine([
            ("/get_server_info", server_setup.from_sglang_info(sglang)),
            ("/api/show", server_setup.from_ollama_show(ollama)),
            ("/api/version", server_setup.from_ollama_version(ollama_version)
             if ollama is not None else {}),
            ("/version", server_setup.from_vllm_version(vllm)),
            ("/v1/models", server_setup.from_models_listing(listed, self._model)),
            ("headers", server_setup.from_headers(listing.headers)),
        ])
