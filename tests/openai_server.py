"""A real OpenAI-compatible HTTP server for tests (aiohttp, 127.0.0.1, an OS-chosen port).

It runs in its own thread with its own event loop, so the client under test goes through real
sockets exactly as against vLLM or llama.cpp::

    with OpenAIServer(ignore_n=True, faults=[503, Fault(429, retry_after="1")]) as server:
        backend = OpenAICompatBackend(server.model, server.base_url, None)
        ...
    assert len(server.requests) == 3

Endpoints: ``POST /v1/chat/completions`` and ``GET /v1/models``. Every setting is a plain
attribute that a test may change while the server runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

__all__ = [
    "Fault",
    "Faults",
    "OpenAIServer",
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

    By default an OpenAI-style JSON error with ``status``; ``body`` replaces that body verbatim
    (e.g. ``Fault(200, body="not json")`` or a 200 with no choices); ``drop`` closes the
    connection without any answer.
    """

    status: int = 500
    retry_after: str | None = None
    body: str | None = None
    content_type: str = "application/json"
    drop: bool = False


#: Per request: ``(request body, request number from 0) -> Fault | status | None``, or a list
#: indexed by request number (requests past its end are served normally).
Faults = Callable[[Body, int], Fault | int | None] | Sequence[Fault | int | None]


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
        port: int = 0,
    ) -> None:
        self.model = model
        self.responder = responder
        self.ignore_n = ignore_n
        self.faults = faults
        self.delay_s = delay_s
        self.strict_model = strict_model
        self.api_key = api_key
        self.port = port
        self._lock = threading.Lock()
        self._requests: list[Body] = []
        self._served = 0
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
    def completions_served(self) -> int:
        """How many choices were returned in successful (HTTP 200) responses."""
        with self._lock:
            return self._served

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

    async def _models(self, request: web.Request) -> web.Response:
        refusal = self._check_key(request)
        if refusal is not None:
            return refusal
        entry = {"id": self.model, "object": "model", "created": 0, "owned_by": "r1eval-tests"}
        return web.json_response({"object": "list", "data": [entry]})

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
        refusal = self._check_key(request) or self._check_model(body)
        if refusal is not None:
            return refusal
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        fault = self._fault(body, number)
        if fault is not None:
            return self._inject(request, fault)
        return self._answer(body, number)

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
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing more to send on a dropped connection
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if fault.body is None:
            return _error(fault.status, f"injected fault (HTTP {fault.status})", headers)
        return web.Response(
            status=fault.status, text=fault.body, content_type=fault.content_type, headers=headers
        )

    def _answer(self, body: Body, number: int) -> web.Response:
        n = 1 if self.ignore_n else body.get("n", 1)
        if not isinstance(n, int) or n < 1:
            return _error(400, f"n must be a positive integer, not {n!r}")
        choices = []
        for index in range(n):
            fields = dict(self.responder(body, index))
            finish_reason = fields.pop("finish_reason", "stop")
            message = {"role": "assistant", **fields}
            choices.append({"index": index, "message": message, "finish_reason": finish_reason})
        with self._lock:
            self._served += n
        return web.json_response(
            {
                "id": f"chatcmpl-{number}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", self.model),
                "choices": choices,
                "usage": _usage(body, choices),
            }
        )


def _serve_forever() -> None:
    """``python tests/openai_server.py --port 11434 --model deepseek-r1:7b``: a stand-in
    endpoint on loopback for trying r1eval by hand (answers as ``default_responder``)."""
    import argparse

    parser = argparse.ArgumentParser(description=_serve_forever.__doc__)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default="test-model")
    parser.add_argument("--ignore-n", action="store_true")
    args = parser.parse_args()
    with OpenAIServer(model=args.model, port=args.port, ignore_n=args.ignore_n) as server:
        print(f"serving {args.model} at {server.base_url}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    _serve_forever()
