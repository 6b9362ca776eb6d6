"""A real OpenAI-compatible HTTP server for tests (aiohttp, 127.0.0.1, an OS-chosen port).

It runs in its own thread with its own event loop, so the client under test goes through real
sockets exactly as against vLLM or llama.cpp::

    with OpenAIServer(ignore_n=True, faults=[503, Fault(429, retry_after="1")]) as server:
        backend = OpenAICompatBackend(server.model, server.base_url, None)
        ...
    assert len(server.requests) == 3

Endpoints: ``POST /v1/chat/completions`` and ``GET /v1/models``. Every setting is a plain
attribute that a test may change while the server runs.

Faults: ``Fault`` scripts one answer (an HTTP error, a dropped connection, a malformed body, a
slow or altered answer); ``RandomFaults(rate, seed, kinds)`` injects them at random, seeded::

    faults = RandomFaults(rate=0.2, seed=1)
    with OpenAIServer(faults=faults) as server:
        ...
    faults.injected  # Counter of the faults injected, by kind

``completions_served`` counts the completions the server really delivered (the server's bill),
so a test can check that nothing was asked for twice after it had been received.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NoReturn

from aiohttp import web

__all__ = [
    "FAULT_KINDS",
    "Fault",
    "Faults",
    "OpenAIServer",
    "RandomFaults",
    "Responder",
    "default_responder",
    "last_user_text",
    "prompt_answer",
]

Body = dict[str, Any]
#: ``(request body, choice index within the response) -> message fields and finish_reason``.
Responder = Callable[[Body, int], Mapping[str, Any]]

_SCRIPTED = re.compile(r"\[\[answer:\s*(.*?)\s*\]\]")
_REASONING_KEYS = ("reasoning_content", "reasoning")


@dataclass(frozen=True)
class Fault:
    """How to answer one request instead of serving it.

    By default an OpenAI-style JSON error with ``status`` (and ``Retry-After: retry_after``);
    ``body`` replaces that body verbatim (e.g. ``Fault(200, body="not json")`` or a 200 with no
    choices); ``drop`` closes the connection without any answer; ``drop_mid_body`` sends the
    headers and half of a normal answer, then closes the connection.

    ``stall_mid_body`` sends the headers and half of a normal answer, then nothing more (a
    server that hangs while answering); ``endless`` sends a 200 whose body never ends (1 MiB
    chunks, up to ``endless_mib`` of them, until the client hangs up); ``headers`` are added
    to an injected answer (e.g. ``Fault(302, headers={"Location": ...})``).

    ``serve`` answers normally (HTTP 200) instead, altered by ``max_choices`` (at most that
    many choices: fewer than ``n``) or ``null_content`` (every message has ``content: null``
    and no reasoning: nothing of the model comes back). ``delay_s`` waits before answering:
    past the client's timeout, a slow response. ``cut_after_choices`` closes a streamed
    answer's connection once that many of its choices finished (the others never do).
    """

    status: int = 500
    retry_after: str | None = None
    body: str | None = None
    content_type: str = "application/json"
    drop: bool = False
    drop_mid_body: bool = False
    stall_mid_body: bool = False
    endless: bool = False
    endless_mib: int = 4096
    headers: Mapping[str, str] | None = None
    serve: bool = False
    max_choices: int | None = None
    null_content: bool = False
    delay_s: float = 0.0
    cut_after_choices: int | None = None


#: Per request: ``(request body, request number from 0) -> Fault | status | None``, or a list
#: indexed by request number (requests past its end are served normally).
Faults = Callable[[Body, int], Fault | int | None] | Sequence[Fault | int | None]

#: What ``RandomFaults`` injects: rate limits (with and without ``Retry-After``), server
#: errors, a response slower than the client's timeout (a hang before answering), a hang in
#: the middle of the body, connections dropped before or during the answer, a body that is not
#: JSON, an HTTP 200 carrying an error instead of choices, an empty ``choices`` list,
#: ``content: null``, and fewer choices than ``n``.
FAULT_KINDS = (
    "429", "429_retry_after", "500", "502", "503", "slow", "stall_mid_body", "drop",
    "drop_mid_body", "malformed_json", "error_200", "empty_choices", "null_content",
    "fewer_choices",
)
_ERROR_200 = json.dumps({"error": {"message": "upstream model crashed", "code": 500}})
_EMPTY_CHOICES = json.dumps(
    {"id": "chatcmpl-empty", "object": "chat.completion", "created": 0, "model": "m",
     "choices": []}
)


class RandomFaults:
    """Injects a fault into a share ``rate`` of requests, of a kind drawn from ``kinds``.

    Seeded: the same requests in the same order get the same faults. ``injected`` counts the
    faults by kind; a slow response takes ``slow_s`` (make it longer than the client's
    timeout) and a 429 with ``Retry-After`` asks for ``retry_after`` seconds.
    """

    def __init__(
        self,
        rate: float = 0.2,
        seed: int = 0,
        kinds: Sequence[str] = FAULT_KINDS,
        *,
        slow_s: float = 30.0,
        retry_after: str = "1",
    ) -> None:
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown or not kinds or not 0 <= rate <= 1:
            raise ValueError(f"rate must be in [0, 1] and kinds among {FAULT_KINDS}")
        self.rate = rate
        self.kinds = tuple(kinds)
        self.injected: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._faults = {
            "429": Fault(429),
            "429_retry_after": Fault(429, retry_after=retry_after),
            "500": Fault(500),
            "502": Fault(502),
            "503": Fault(503),
            "slow": Fault(serve=True, delay_s=slow_s),
            "drop": Fault(drop=True),
            "drop_mid_body": Fault(drop_mid_body=True),
            "stall_mid_body": Fault(stall_mid_body=True),
            "error_200": Fault(200, body=_ERROR_200),
            "malformed_json": Fault(200, body='{"id": "chatcmpl-torn", "choices": [{"ind'),
            "empty_choices": Fault(200, body=_EMPTY_CHOICES),
            "null_content": Fault(serve=True, null_content=True),
        }

    def __call__(self, body: Body, number: int) -> Fault | None:
        with self._lock:
            if self._random.random() >= self.rate:
                return None
            kind = self._random.choice(self.kinds)
            self.injected[kind] += 1
        if kind == "fewer_choices":
            return Fault(serve=True, max_choices=_choices_asked(body) - 1)
        return self._faults[kind]


def _choices_asked(body: Body) -> int:
    n = body.get("n", 1)
    return n if isinstance(n, int) else 1


def prompt_answer(prompt: str) -> str:
    """The answer ``default_responder`` gives to a prompt.

    The text inside ``[[answer: ...]]`` when the prompt has one (so a test scripts the answer
    in its data), else a number from 0 to 999 derived from the prompt's SHA-256.
    """
    scripted = _SCRIPTED.search(prompt)
    if scripted:
        return scripted.group(1)
    return str(int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % 1000)


def last_user_text(body: Body) -> str:
    """The content of the last user message of a request ("" when there is none)."""
    users = [m for m in body.get("messages", []) if isinstance(m, dict) and m.get("role") == "user"]
    content = users[-1].get("content", "") if users else ""
    return content if isinstance(content, str) else json.dumps(content)


def default_responder(body: Body, index: int) -> dict[str, Any]:
    """A reasoning model's answer, deterministic in the prompt: separate reasoning, boxed answer."""
    prompt = last_user_text(body)
    return {
        "reasoning_content": f"Choice {index}. Thinking about: {prompt[:60]}",
        "content": f"The answer is \\boxed{{{prompt_answer(prompt)}}}.",
        "finish_reason": "stop",
    }


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    body = {"error": {"message": message, "type": "error", "param": None, "code": status}}
    return web.json_response(body, status=status, headers=headers)


def _tokens(text: object) -> int:
    return len(text.split()) if isinstance(text, str) else 0


def _usage(body: Body, choices: list[dict[str, Any]]) -> dict[str, Any]:
    """Whole-response token counts (one token per word), as real servers report them."""
    messages = [m.get("message", {}) for m in choices]
    reasoning = sum(_tokens(m.get(key)) for m in messages for key in _REASONING_KEYS)
    completion = sum(_tokens(m.get("content")) for m in messages) + reasoning
    prompt = sum(_tokens(m.get("content")) for m in body.get("messages", []) if isinstance(m, dict))
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if any(key in m for m in messages for key in _REASONING_KEYS):
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return usage


class OpenAIServer:
    """An OpenAI-compatible server in a background thread; use it as a context manager.

    ``responder`` makes each choice; ``ignore_n`` returns one choice whatever ``n`` is (as
    llama.cpp does); ``faults`` answers chosen requests with an error instead; ``delay_s``
    delays every answer; ``strict_model`` answers 404 for a model other than ``model``;
    ``api_key`` requires ``Authorization: Bearer <api_key>`` (the 401 body echoes what was
    received, like a careless proxy, so tests can check that clients redact it).
    ``GET /v1/models`` lists ``listed`` (default: ``model``), or answers 404 when
    ``models_route`` is False (a server without that route).

    Like a GPU server: each choice generates for ``seconds(body, index)`` (default 0), at most
    ``slots`` choices at once (0: no limit), the others waiting first come first served; a
    client that disconnects aborts its choices, as vLLM does. ``sequences_started`` counts the
    choices that began generating (the server's work, wasted or not) and ``most_generating``
    the most at once. ``"stream": true`` is answered with server-sent events (one event per
    ``tick_s`` of generation per choice, each choice ending with its own finish_reason, then
    the usage and ``[DONE]``), unless ``streams`` is False (the whole JSON body instead).
    ``reports_capacity`` serves SGLang's ``GET /get_server_info`` with ``max_running_requests``
    = ``slots``.

    ``engine`` ("vllm", "sglang" or "ollama") also answers that engine's own routes about its
    setup, in the engine's shapes: vLLM's ``GET /version`` and the extra fields of its model
    listing (``root``, ``max_model_len``, ``owned_by: vllm``); SGLang's ``/get_server_info``
    server arguments; Ollama's ``POST /api/show`` and ``GET /api/version``. ``version``,
    ``quantization`` and ``context_length`` are what it states; ``routes_asked`` counts the
    requests to each of those routes; ``setup_delay_s`` delays vLLM's ``/version`` answer.
    """

    def __init__(
        self,
        *,
        model: str = "test-model",
        responder: Responder = default_responder,
        ignore_n: bool = False,
        faults: Faults | None = None,
        delay_s: float = 0.0,
        strict_model: bool = False,
        api_key: str | None = None,
        listed: Sequence[str] | None = None,
        models_route: bool = True,
        port: int = 0,
        slots: int = 0,
        seconds: Callable[[Body, int], float] | None = None,
        streams: bool = True,
        tick_s: float = 0.02,
        reports_capacity: bool = False,
        engine: str | None = None,
        version: str = "0.8.5",
        quantization: str | None = None,
        context_length: int = 32768,
        setup_delay_s: float = 0.0,
        served_log: str | None = None,
    ) -> None:
        self.served_log = served_log
        self.engine = engine
        self.setup_delay_s = setup_delay_s
        self.version = version
        self.quantization = quantization
        self.context_length = context_length
        self.routes_asked: dict[str, int] = {}
        self.model = model
        self.slots = slots
        self.seconds = seconds
        self.streams = streams
        self.tick_s = tick_s
        self.reports_capacity = reports_capacity
        self.sequences_started = 0
        self.most_generating = 0
        self._generating = 0
        self._slots: asyncio.Semaphore | None = None
        self.responder = responder
        self.ignore_n = ignore_n
        self.faults = faults
        self.delay_s = delay_s
        self.strict_model = strict_model
        self.api_key = api_key
        self.listed = listed
        self.models_route = models_route
        self.port = port
        self.model_listings = 0
        self._lock = threading.Lock()
        self._requests: list[Body] = []
        self._headers: list[dict[str, str]] = []
        self._served = 0
        self._served_by_request: dict[int, int] = {}
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._startup_error: BaseException | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[Body]:
        """A copy of the JSON bodies of all chat requests received so far, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def request_headers(self) -> list[dict[str, str]]:
        """The HTTP headers of those requests, in the same order."""
        with self._lock:
            return list(self._headers)

    @property
    def completions_served(self) -> int:
        """How many completions were delivered: the choices of normal HTTP 200 answers (also
        when fewer than asked), not the null contents or half-sent bodies of faults."""
        with self._lock:
            return self._served

    def completions_served_to(self, keep: Callable[[Body], bool]) -> int:
        """``completions_served``, counting only the requests whose body ``keep`` accepts."""
        with self._lock:
            return sum(count for number, count in self._served_by_request.items()
                       if keep(self._requests[number]))

    def start(self) -> OpenAIServer:
        """Start serving; returns once the port is known."""
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=10):
            raise RuntimeError("the test server did not start within 10 s")
        if self._startup_error is not None:
            raise RuntimeError("the test server failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/test/stats", self._stats)
        app.router.add_get("/get_server_info", self._server_info)
        app.router.add_get("/version", self._vllm_version)
        app.router.add_post("/api/show", self._ollama_show)
        app.router.add_get("/api/version", self._ollama_version)
        # handler_cancellation: a client that gave up (timeout) cancels the slow handler.
        runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None
        )
        try:
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            self.port = runner.addresses[0][1]
        except OSError as err:
            self._startup_error = err
        finally:
            self._ready.set()
        try:
            if self._startup_error is None:
                await self._stopping.wait()
        finally:
            await runner.cleanup()

    def _asked(self, route: str, engine: str) -> bool:
        with self._lock:
            self.routes_asked[route] = self.routes_asked.get(route, 0) + 1
        return self.engine == engine

    async def _server_info(self, request: web.Request) -> web.Response:
        if not self._asked("/get_server_info", "sglang") and not self.reports_capacity:
            return web.Response(status=404, text="404: Not Found")
        if self.engine != "sglang":
            return web.json_response({"model_path": self.model,
                                      "max_running_requests": self.slots})
        # SGLang: its server arguments, the scheduler's state and its version
        return web.json_response({
            "model_path": f"/models/{self.model}", "tokenizer_path": f"/models/{self.model}",
            "host": "127.0.0.1", "port": self.port, "tp_size": 1, "dp_size": 1,
            "dtype": "auto", "kv_cache_dtype": "auto", "quantization": self.quantization,
            "context_length": self.context_length, "max_running_requests": self.slots or None,
            "mem_fraction_static": 0.88, "chunked_prefill_size": 8192,
            "internal_states": [{"max_total_num_tokens": 400000,
                                 "max_running_requests": self.slots or 4096}],
            "version": self.version,
        })

    async def _vllm_version(self, request: web.Request) -> web.Response:
        if not self._asked("/version", "vllm"):
            return web.Response(status=404, text="404: Not Found")
        await asyncio.sleep(self.setup_delay_s)
        return web.json_response({"version": self.version})

    async def _ollama_show(self, request: web.Request) -> web.Response:
        if not self._asked("/api/show", "ollama"):
            return web.Response(status=404, text="404: Not Found")
        body = await request.json()
        if body.get("model") != self.model:
            return web.json_response({"error": f"model '{body.get('model')}' not found"},
                                     status=404)
        return web.json_response({
            "license": "MIT", "modelfile": f"FROM /models/{self.model}.gguf\n",
            "parameters": f"num_ctx                        {self.context_length}\n"
                          'stop                           "<|end▁of▁sentence|>"',
            "template": "{{ .System }}{{ .Prompt }}",
            "details": {"parent_model": "", "format": "gguf", "family": "qwen2",
                        "families": ["qwen2"], "parameter_size": "7.6B",
                        "quantization_level": self.quantization or "F16"},
            "model_info": {"general.architecture": "qwen2", "general.parameter_count": 7615616512,
                           "qwen2.context_length": 131072, "qwen2.block_count": 28},
            "capabilities": ["completion", "thinking"],
            "modified_at": "2025-01-28T10:00:00.000000000Z",
        })

    async def _ollama_version(self, request: web.Request) -> web.Response:
        if not self._asked("/api/version", "ollama"):
            return web.Response(status=404, text="404: Not Found")
        return web.json_response({"version": self.version})

    async def _stats(self, request: web.Request) -> web.Response:
        """The server's counts, for a test that runs it in another process."""
        with self._lock:
            return web.json_response({
                "requests": len(self._requests), "completions_served": self._served,
                "sequences_started": self.sequences_started,
                "most_generating": self.most_generating,
                "n_asked": [r.get("n", 1) for r in self._requests],
            })

    async def _models(self, request: web.Request) -> web.Response:
        with self._lock:
            self.model_listings += 1
        if not self.models_route:
            return web.Response(status=404, text="404: Not Found")
        refusal = self._check_key(request)
        if refusal is not None:
            return refusal
        names = [self.model] if self.listed is None else self.listed
        entries: list[dict[str, Any]] = [
            {"id": name, "object": "model", "created": 0, "owned_by": "r1eval-tests"}
            for name in names]
        if self.engine == "vllm":  # vLLM's ModelCard: the weights served and the context
            for entry in entries:
                entry.update(owned_by="vllm", root=f"/models/{entry['id']}", parent=None,
                             max_model_len=self.context_length,
                             permission=[{"id": "modelperm-0", "object": "model_permission",
                                          "allow_sampling": True, "is_blocking": False}])
            return web.json_response({"object": "list", "data": entries},
                                     headers={"Server": "uvicorn"})
        return web.json_response({"object": "list", "data": entries})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "the request body is not JSON")
        if not isinstance(body, dict):
            return _error(400, "the request body is not a JSON object")
        with self._lock:
            number = len(self._requests)
            self._requests.append(body)
            self._headers.append(dict(request.headers))
        refusal = self._check_key(request) or self._check_model(body)
        if refusal is not None:
            return refusal
        fault = self._fault(body, number)
        delay_s = self.delay_s + (fault.delay_s if fault is not None else 0.0)
        if delay_s:
            await asyncio.sleep(delay_s)  # cancelled if the client gives up first
        if fault is not None and (fault.drop_mid_body or fault.stall_mid_body):
            return await self._drop_mid_body(request, body, number, stall=fault.stall_mid_body)
        if fault is not None and fault.endless:
            return await _endless(request, fault.endless_mib)
        if fault is not None and not fault.serve:
            return self._inject(request, fault)
        if body.get("stream") and self.streams:
            return await self._stream(request, body, number, fault)
        if self.seconds is not None or self.slots:
            await asyncio.gather(*(self._generate(body, i) for i in range(self._n(body))))
        return self._answer(body, number, fault)

    def _n(self, body: Body) -> int:
        n = 1 if self.ignore_n else body.get("n", 1)
        return n if isinstance(n, int) and n >= 1 else 1

    async def _generate(self, body: Body, index: int, tick: Callable[[], Any] | None = None
                        ) -> None:
        """Generate one choice: wait for a slot, hold it for ``seconds``, calling ``tick``
        every ``tick_s`` (a streamed token)."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.slots or 1_000_000)
        async with self._slots:
            with self._lock:
                self.sequences_started += 1
                self._generating += 1
                self.most_generating = max(self.most_generating, self._generating)
            try:
                left = self.seconds(body, index) if self.seconds is not None else 0.0
                while True:
                    await asyncio.sleep(min(left, self.tick_s))
                    left -= self.tick_s
                    if left <= 0:
                        break
                    if tick is not None:
                        await tick()
            finally:
                with self._lock:
                    self._generating -= 1

    async def _stream(
        self, request: web.Request, body: Body, number: int, fault: Fault | None
    ) -> web.StreamResponse:
        """A streamed answer: each choice's events as it generates, its finish when done."""
        n = self._n(body)
        if fault is not None and fault.max_choices is not None:
            n = max(0, min(n, fault.max_choices))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        writing = asyncio.Lock()
        finished = 0

        async def send(choice: Body | None, usage: Body | None = None) -> None:
            chunk = {"id": f"chatcmpl-{number}", "object": "chat.completion.chunk",
                     "created": int(time.time()), "model": body.get("model", self.model),
                     "choices": [choice] if choice is not None else []}
            if usage is not None:
                chunk["usage"] = usage
            async with writing:
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        options = body.get("stream_options") or {}

        async def one(index: int) -> dict[str, Any]:
            nonlocal finished
            fields = dict(self.responder(body, index))
            reason = fields.pop("finish_reason", "stop")
            if fault is not None and fault.null_content:
                fields = {}
            await send({"index": index, "delta": {"role": "assistant"}, "finish_reason": None})
            await self._generate(body, index, lambda: send(
                {"index": index, "delta": {"content": ""}, "finish_reason": None}))
            last = {"index": index, "delta": fields, "finish_reason": reason}
            own = {"message": fields}
            # as vLLM's continuous_usage_stats: the tokens of this one choice
            await send(last, _usage(body, [own]) if options.get("continuous_usage_stats")
                       else None)
            if fields:
                self._count_served(number, 1)
            finished += 1
            if fault is not None and fault.cut_after_choices == finished:
                _drop_connection(request)
            return {"index": index, "message": {"role": "assistant", **fields},
                    "finish_reason": reason}

        tasks = [asyncio.create_task(one(index)) for index in range(n)]
        try:
            choices = await asyncio.gather(*tasks)
        finally:  # cut, or the client went away: the other choices are aborted
            for task in tasks:
                task.cancel()
        if options.get("include_usage"):
            await send(None, _usage(body, list(choices)))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _check_key(self, request: web.Request) -> web.Response | None:
        received = request.headers.get("Authorization", "")
        if self.api_key is None or received == f"Bearer {self.api_key}":
            return None
        return _error(401, f"Incorrect API key provided: {received!r}.")

    def _check_model(self, body: Body) -> web.Response | None:
        name = body.get("model")
        if not self.strict_model or name == self.model:
            return None
        return _error(404, f"The model `{name}` does not exist.")

    def _fault(self, body: Body, number: int) -> Fault | None:
        faults = self.faults
        if faults is None:
            return None
        if callable(faults):
            spec = faults(body, number)
        else:
            spec = faults[number] if number < len(faults) else None
        return Fault(status=spec) if isinstance(spec, int) else spec

    def _inject(self, request: web.Request, fault: Fault) -> web.Response:
        if fault.drop:
            _drop_connection(request)
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        headers.update(fault.headers or {})
        if fault.body is None:
            return _error(fault.status, f"injected fault (HTTP {fault.status})", headers)
        return web.Response(
            status=fault.status, text=fault.body, content_type=fault.content_type, headers=headers
        )

    async def _drop_mid_body(
        self, request: web.Request, body: Body, number: int, stall: bool = False
    ) -> web.StreamResponse:
        """Send the headers and half of a normal answer, then close the connection (or, with
        ``stall``, send nothing more until the client gives up, at most an hour)."""
        payload = json.dumps(self._completion(body, number, 1)).encode()
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(payload)
        await response.prepare(request)
        await response.write(payload[: len(payload) // 2])
        if stall:
            await asyncio.sleep(3600)  # cancelled when the client hangs up
        _drop_connection(request)

    def _answer(self, body: Body, number: int, fault: Fault | None = None) -> web.Response:
        n = 1 if self.ignore_n else body.get("n", 1)
        if not isinstance(n, int) or n < 1:
            return _error(400, f"n must be a positive integer, not {n!r}")
        if fault is not None and fault.max_choices is not None:
            n = max(0, min(n, fault.max_choices))
        completion = self._completion(body, number, n)
        if fault is not None and fault.null_content:
            for choice in completion["choices"]:
                choice["message"] = {"role": "assistant", "content": None}
        else:
            self._count_served(number, n)
        return web.json_response(completion)

    def _count_served(self, number: int, count: int) -> None:
        with self._lock:
            if self.served_log:  # counts that outlive a server killed mid-run
                max_tokens = self._requests[number].get("max_tokens")
                with open(self.served_log, "a", encoding="utf-8") as log:
                    log.write(json.dumps({"choices": count, "max_tokens": max_tokens}) + "\n")
            self._served += count
            self._served_by_request[number] = self._served_by_request.get(number, 0) + count

    def _completion(self, body: Body, number: int, n: int) -> Body:
        """A chat completion with ``n`` choices made by the responder."""
        choices = []
        for index in range(n):
            fields = dict(self.responder(body, index))
            finish_reason = fields.pop("finish_reason", "stop")
            message = {"role": "assistant", **fields}
            choices.append({"index": index, "message": message, "finish_reason": finish_reason})
        return {
            "id": f"chatcmpl-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": choices,
            "usage": _usage(body, choices),
        }


async def _endless(request: web.Request, mib: int) -> web.StreamResponse:
    """An HTTP 200 whose JSON body goes on in 1 MiB chunks (``mib`` of them at most)."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    await response.write(b'{"choices": [{"message": {"content": "')
    chunk = b"x" * (1 << 20)
    for _ in range(mib):
        await response.write(chunk)  # cancelled when the client hangs up
    await response.write(b'"}}]}')
    await response.write_eof()
    return response


def _drop_connection(request: web.Request) -> NoReturn:
    """Close the connection at once; the handler sends nothing more."""
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError


def spread_seconds(unit_s: float) -> Callable[[Body, int], float]:
    """Generation times from ``unit_s`` to 4 ``unit_s``, fixed by the prompt and the choice
    (the same in every run), with a few long ones, as reasoning traces are."""

    def seconds(body: Body, index: int) -> float:
        code = int(hashlib.sha256(f"{index}|{last_user_text(body)}".encode()).hexdigest(), 16)
        return unit_s * (1.0, 1.0, 1.5, 1.5, 2.0, 4.0)[code % 6]

    return seconds


def _serve_forever() -> None:
    """``python tests/openai_server.py --port 11434 --model deepseek-r1:7b``: a stand-in
    endpoint on loopback for trying r1eval by hand (answers as ``default_responder``)."""
    import argparse

    parser = argparse.ArgumentParser(description=_serve_forever.__doc__)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default="test-model")
    parser.add_argument("--ignore-n", action="store_true")
    parser.add_argument("--fault-rate", type=float, default=0.0,
                        help="share of requests answered with a random fault")
    parser.add_argument("--slots", type=int, default=0,
                        help="choices generated at once, the rest queued (0: no limit)")
    parser.add_argument("--unit-s", type=float, default=0.0,
                        help="seconds a choice generates: 1 to 4 times this (see spread_seconds)")
    parser.add_argument("--no-stream", action="store_true", help="answer streamed requests whole")
    parser.add_argument("--report-capacity", action="store_true",
                        help="say --slots at GET /get_server_info, as SGLang does")
    parser.add_argument("--fault-seed", type=int, default=0)
    parser.add_argument("--served-log", help="append the choices (and max_tokens) of each "
                        "answer served to this file, a JSON line each: counts that survive "
                        "the server being killed")
    parser.add_argument("--fault-kinds", default=",".join(FAULT_KINDS),
                        help="comma-separated, among: " + ", ".join(FAULT_KINDS))
    args = parser.parse_args()
    faults = RandomFaults(args.fault_rate, args.fault_seed, args.fault_kinds.split(","),
                          slow_s=3600.0)
    with OpenAIServer(model=args.model, port=args.port, ignore_n=args.ignore_n,
                      faults=faults if args.fault_rate else None, slots=args.slots,
                      seconds=spread_seconds(args.unit_s) if args.unit_s else None,
                      streams=not args.no_stream,
                      reports_capacity=args.report_capacity,
                      served_log=args.served_log) as server:
        print(f"serving {args.model} at {server.base_url}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    _serve_forever()
