"""A minimal OpenAI-compatible server for the benchmarks, in its own process on loopback.

    python bench/sim_server.py --port 8000                  # instant answers
    python bench/sim_server.py --slots 32 --unit-s 0.05     # a server of fixed capacity

``POST /v1/chat/completions`` answers each choice with a reasoning (``--reasoning-chars``
long) and a final answer: ``\\boxed{N}`` for a math prompt, ``Answer: X`` for a multiple-choice
one, drawn from the prompt and the number of responses to that prompt so far (repeats differ,
as sampled responses do); or, with ``--realistic FILE`` (MATH-500's ``test.jsonl``), a long
realistic response built from the reference solution of the question asked (see
``common.realistic_response``). ``--ignore-n`` answers one choice whatever ``n`` is, as
llama.cpp does. ``GET /v1/models`` lists the model.

Fixed capacity (``--slots S``): at most S choices are generated at once, as an inference
server's batch holds at most ``max_num_seqs`` sequences. A choice beyond that waits in a FIFO
queue on the server, as vLLM and SGLang queue requests beyond their batch: the server never
refuses work, so a client that keeps more in flight than S keeps every slot busy. (Answering
429 instead would leave slots idle during the client's back-off, and measure the back-off
rather than the order of the work.) Each choice generates for
``unit_s * exp(sigma * z(prompt) + sigma_choice * z(seed, prompt, choice))`` seconds: lognormal,
heavy tailed like reasoning traces; the per-question part is the same in every run (the same
prompt always draws the same z), so an earlier run predicts it, and ``--seed`` changes only the
per-response part. A response is sent when its last choice is
done; each slot is freed as soon as its own choice is done.

``"stream": true`` is answered with server-sent events: each choice's answer as soon as its own
generation is done (with ``--tick-units T``, an empty delta every T ``--unit-s`` while it
generates, as tokens).
``--cap C`` caps each generation at C ``--unit-s``, as a token limit does; a request's
``max_tokens`` caps it too (``TOKENS_PER_UNIT`` tokens a unit: a one-token request, as
r1eval's probe of ``n``, is answered at once, as by a real server). The k-th sample of a
prompt draws the k-th duration whether it was asked for as one of ``n`` or alone.
``--report-capacity`` serves SGLang's ``GET /get_server_info`` with ``max_running_requests`` = S.

``GET /bench/stats`` returns the server's own CPU seconds, requests and choices served, and in
fixed-capacity mode the busy slot-seconds, the times of the first arrival, the last arrival
and the last response, the longest generation drawn, and the span of the best schedule a client
knowing every generation time in advance would find (``clairvoyant_s``: longest first, each to
the first free slot, as if all were waiting at once); ``POST /bench/reset`` clears them.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import heapq
import json
import math
import random
import time
import zlib
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from common import MODEL, Body, last_user_text, realistic_responses

_MULTIPLE_CHOICE = "Answer the following multiple choice question"


def short_response(prompt: str, index: int, reasoning: str) -> dict[str, str]:
    """A short answer, cheap to grade, after ``reasoning``."""
    code = zlib.crc32(f"{index}|{prompt}".encode())
    answer = f"Answer: {'ABCD'[code % 4]}" if prompt.startswith(_MULTIPLE_CHOICE) else (
        f"The answer is $\\boxed{{{code % 1000}}}$."
    )
    return {"reasoning_content": reasoning, "content": answer}


def gaussian(*parts: object) -> float:
    """A standard normal draw determined by ``parts`` (stable across processes and runs)."""
    seed = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return random.Random(seed).gauss(0.0, 1.0)


@dataclass(frozen=True)
class Durations:
    """How long each choice generates (see the module docstring)."""

    unit_s: float
    sigma: float
    sigma_choice: float
    seed: int

    cap: float = math.inf
    question_seed: int = 0

    def seconds(self, prompt: str, index: int) -> float:
        # the same in every run of one --question-seed: another seed, other long questions
        question = ("question", prompt) if not self.question_seed else (
            "question", self.question_seed, prompt)
        z = self.sigma * gaussian(*question)
        z += self.sigma_choice * gaussian(self.seed, prompt, index)
        return self.unit_s * min(math.exp(z), self.cap)


@dataclass
class Slots:
    """At most ``size`` choices generating at once; the others wait, first come first served.

    Keeps the busy slot-seconds and the arrival and completion times the benchmarks read.
    """

    size: int
    free: int = 0
    waiting: deque[asyncio.Future[None]] = field(default_factory=deque)
    busy_slot_s: float = 0.0
    first_arrival: float | None = None
    last_arrival: float | None = None
    last_done: float | None = None
    busy_before_last_arrival: float = 0.0
    queued_s: float = 0.0  # time with requests waiting for a slot, and the slot time used then
    queued_busy_slot_s: float = 0.0
    _queued_at_last_arrival: tuple[float, float] = (0.0, 0.0)
    _busy: int = 0
    _since: float = field(default_factory=time.monotonic)
    #: when each slot now free was freed (those free from the start: not counted), and how
    #: long each slot freed during the run stayed idle before its next sequence
    _freed_at: deque[float] = field(default_factory=deque)
    handover_gaps: list[float] = field(default_factory=list)
    first_full: float | None = None  # when every slot was first busy

    def __post_init__(self) -> None:
        self.free = self.size

    def arrived(self) -> None:
        now = time.monotonic()
        self._advance(now)
        self.first_arrival = self.first_arrival if self.first_arrival is not None else now
        self.last_arrival = now
        self.busy_before_last_arrival = self.busy_slot_s
        self._queued_at_last_arrival = (self.queued_s, self.queued_busy_slot_s)

    async def run(self, seconds: float, tick: Callable[[], Awaitable[None]] | None = None,
                  tick_s: float = 0.0) -> None:
        """Wait for a slot, hold it for ``seconds`` (calling ``tick`` every ``tick_s``: a
        streamed token), free it."""
        if self.free and not self.waiting:
            self.free -= 1
            if self._freed_at:  # a slot freed earlier in the run, idle until now
                self.handover_gaps.append(time.monotonic() - self._freed_at.popleft())
        else:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._advance(time.monotonic())
            self.waiting.append(future)
            await future  # the slot is handed over by ``_release``
        self._change(+1)
        try:
            left = seconds
            while tick is not None and tick_s and left > tick_s:
                await asyncio.sleep(tick_s)
                left -= tick_s
                await tick()
            await asyncio.sleep(left)
        finally:
            self._change(-1)
            self._release()

    def _release(self) -> None:
        if self.waiting:
            self._advance(time.monotonic())
            self.waiting.popleft().set_result(None)
        else:
            self.free += 1
            self._freed_at.append(time.monotonic())

    def _change(self, delta: int) -> None:
        now = time.monotonic()
        self._advance(now)
        self._busy += delta
        if self._busy == self.size and self.first_full is None:
            self.first_full = now
        if delta < 0:
            self.last_done = now

    def _advance(self, now: float) -> None:
        elapsed = now - self._since
        self.busy_slot_s += self._busy * elapsed
        if self.waiting:
            self.queued_s += elapsed
            self.queued_busy_slot_s += self._busy * elapsed
        self._since = now

    def busy_while_work_queued(self) -> float:
        """The share of slot time used while work was queued: on the client (until the last
        request arrived) or here (requests waiting for a slot). 1.0: no slot ever idle then."""
        if self.first_arrival is None or self.last_arrival is None:
            return 1.0
        queued_s, queued_busy = self._queued_at_last_arrival
        window = self.last_arrival - self.first_arrival + self.queued_s - queued_s
        busy = self.busy_before_last_arrival + self.queued_busy_slot_s - queued_busy
        return busy / (self.size * window) if window > 0 else 1.0

    def stats(self) -> dict[str, Any]:
        return {
            "slots": self.size,
            "busy_slot_s": self.busy_slot_s,
            "busy_while_queued": self.busy_while_work_queued(),
            "first_arrival": self.first_arrival,
            "last_arrival": self.last_arrival,
            "last_done": self.last_done,
            "handover_gaps": self.handover_gaps,
            "first_full": self.first_full,
        }


class SimServer:
    """The request handlers and their counters."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.ignore_n: bool = args.ignore_n
        self.durations = Durations(args.unit_s, args.sigma, args.sigma_choice, args.seed,
                                   args.cap, args.question_seed)
        self.reports_capacity: bool = args.report_capacity
        self.tick_units: float = args.tick_units
        self.slots_size: int = args.slots
        self.realistic = realistic_responses(args.realistic) if args.realistic else None
        self.reasoning = ("Let me think step by step. " * (args.reasoning_chars // 27 + 1))[
            : args.reasoning_chars]
        self.reset()

    def reset(self) -> None:
        self.requests = self.choices = 0
        self.served: Counter[str] = Counter()  # choices served so far, per prompt
        self.asked: Counter[str] = Counter()  # choices asked for so far, per prompt
        self.work_s = 0.0  # the sum of the generation times drawn (fixed-capacity mode)
        self.drawn: list[float] = []  # each generation time drawn
        self.slots = Slots(self.slots_size) if self.slots_size else None
        self.cpu_at_reset = time.process_time()

    def respond(self, prompt: str, index: int) -> dict[str, str]:
        if self.realistic is not None and prompt in self.realistic:
            return self.realistic[prompt](index)
        return short_response(prompt, index, self.reasoning)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body: Body = json.loads(await request.read())
        prompt = last_user_text(body)
        n = 1 if self.ignore_n else int(body.get("n") or 1)
        self.requests += 1
        self.choices += n
        if body.get("stream"):
            return await self._stream(request, body, prompt, n)
        seconds = await self._generate(prompt, n, body) if self.slots is not None else None
        messages = self._messages(prompt, n)
        choices = [{"index": i, "message": {"role": "assistant", **message},
                    "finish_reason": "stop"} for i, message in enumerate(messages)]
        payload = {
            "id": f"chatcmpl-{self.requests}", "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model", MODEL), "choices": choices,
            "usage": _usage(prompt, messages, self._units(seconds)),
        }
        return web.Response(body=json.dumps(payload).encode(), content_type="application/json")

    def _messages(self, prompt: str, n: int) -> list[dict[str, str]]:
        """The next ``n`` answers to ``prompt``: the k-th response to a prompt is answer k, so
        repeats differ, as sampled responses do, whether they come as n choices of one
        request or as separate requests."""
        first = self.served[prompt]
        self.served[prompt] += n
        return [self.respond(prompt, first + i) for i in range(n)]

    async def _stream(self, request: web.Request, body: Body, prompt: str, n: int
                      ) -> web.StreamResponse:
        """Server-sent events: each choice's answer and finish_reason when its generation is
        done (an empty delta every ``tick_s`` while it generates), then the usage."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        lock = asyncio.Lock()
        continuous = bool((body.get("stream_options") or {}).get("continuous_usage_stats"))

        async def send(choices: list[Body], usage: Body | None = None) -> None:
            chunk: Body = {"id": f"chatcmpl-{self.requests}", "object": "chat.completion.chunk",
                           "model": body.get("model", MODEL), "choices": choices}
            if usage is not None:
                chunk["usage"] = usage
            async with lock:
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        async def one(index: int, seconds: float) -> dict[str, str]:
            await send([{"index": index, "delta": {"role": "assistant"}, "finish_reason": None}])
            if self.slots is not None:
                await self.slots.run(seconds, lambda: send(
                    [{"index": index, "delta": {"content": ""}, "finish_reason": None}]),
                    self.durations.unit_s * self.tick_units)
            [message] = self._messages(prompt, 1)
            await send([{"index": index, "delta": message, "finish_reason": "stop"}],
                       _usage(prompt, [message], self._units([seconds])) if continuous else None)
            return message

        seconds = self._arrive(prompt, n, body)
        messages = await asyncio.gather(*(one(i, s) for i, s in enumerate(seconds)))
        await send([], _usage(prompt, messages, self._units(seconds)))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _arrive(self, prompt: str, n: int, body: Body) -> list[float]:
        """The generation time of each of ``n`` choices, counted in the work to do: no longer
        than the request's ``max_tokens`` take (``TOKENS_PER_UNIT``), as a real server stops
        a sequence at its token limit (a one-token request is answered at once)."""
        if self.slots is None:
            return [0.0] * n
        self.slots.arrived()
        most = (body.get("max_tokens") or math.inf) / TOKENS_PER_UNIT * self.durations.unit_s
        first = self.asked[prompt]  # the k-th sample of a prompt, however it was asked for
        self.asked[prompt] += n
        seconds = [min(self.durations.seconds(prompt, first + i), most) for i in range(n)]
        self.work_s += sum(seconds)
        self.drawn += seconds
        return seconds

    async def _generate(self, prompt: str, n: int, body: Body) -> list[float]:
        assert self.slots is not None
        seconds = self._arrive(prompt, n, body)
        await asyncio.gather(*(self.slots.run(s) for s in seconds))
        return seconds

    def _units(self, seconds: list[float] | None) -> float | None:
        """Generation time in units of ``--unit-s``; None without fixed capacity."""
        if seconds is None or self.slots is None:
            return None
        return sum(seconds) / self.durations.unit_s

    async def server_info(self, request: web.Request) -> web.Response:
        """SGLang's route: its ``max_running_requests`` (with ``--report-capacity``)."""
        if not self.reports_capacity or self.slots is None:
            return web.Response(status=404)
        return web.json_response({"max_running_requests": self.slots.size})

    async def models(self, request: web.Request) -> web.Response:
        entry = {"id": MODEL, "object": "model", "created": 0, "owned_by": "bench"}
        return web.json_response({"object": "list", "data": [entry]})

    async def stats(self, request: web.Request) -> web.Response:
        stats = {
            "cpu_s": time.process_time() - self.cpu_at_reset,
            "requests": self.requests,
            "choices": self.choices,
            "work_s": self.work_s,
            **(self.slots.stats() if self.slots is not None else {}),
        }
        if self.slots is not None:
            stats["longest_s"] = max(self.drawn, default=0.0)
            stats["clairvoyant_s"] = longest_first_span(self.drawn, self.slots.size)
        return web.json_response(stats)

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})


def longest_first_span(seconds: list[float], slots: int) -> float:
    """The span of ``seconds`` of work on ``slots`` slots, longest first, each to the slot that
    frees first (Graham's LPT rule: within 4/3 of the best, and near it with many short jobs)."""
    ends = [0.0] * slots
    for length in sorted(seconds, reverse=True):
        heapq.heapreplace(ends, ends[0] + length)
    return max(ends)


#: Tokens a choice generates per ``--unit-s`` of generation, in fixed-capacity mode.
TOKENS_PER_UNIT = 1000


def _usage(prompt: str, messages: list[dict[str, str]], units: float | None = None
           ) -> dict[str, int]:
    """Token counts: from the text, or in fixed-capacity mode from the generation time
    (``units`` of ``--unit-s`` in all), as a real server's time follows the tokens."""
    if units is None:
        tokens = sum(len(m["content"]) + len(m["reasoning_content"]) for m in messages) // 4
    else:
        tokens = round(units * TOKENS_PER_UNIT)
    return {"prompt_tokens": len(prompt) // 4, "completion_tokens": tokens,
            "total_tokens": len(prompt) // 4 + tokens}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="0: any free port")
    parser.add_argument("--ignore-n", action="store_true", help="one choice per request")
    parser.add_argument("--slots", type=int, default=0, help="capacity; 0: instant answers")
    parser.add_argument("--unit-s", type=float, default=0.05, help="median seconds per choice")
    parser.add_argument("--sigma", type=float, default=1.0, help="lognormal sigma per question")
    parser.add_argument("--sigma-choice", type=float, default=0.25,
                        help="lognormal sigma between the choices of one question")
    parser.add_argument("--cap", type=float, default=math.inf,
                        help="no choice generates longer than this many --unit-s (a token limit)")
    parser.add_argument("--tick-units", type=float, default=0.0,
                        help="a streamed choice sends an empty delta every this many --unit-s "
                        "while it generates (0: none; each costs this process CPU that a GPU "
                        "server would not take from generation)")
    parser.add_argument("--report-capacity", action="store_true",
                        help="say --slots at GET /get_server_info, as SGLang does")
    parser.add_argument("--seed", type=int, default=0, help="draws of each response's part")
    parser.add_argument("--question-seed", type=int, default=0,
                        help="draws of each question's part (0: the original draws)")
    parser.add_argument("--realistic", type=Path, help="MATH-500 test.jsonl: long responses")
    parser.add_argument("--reasoning-chars", type=int, default=32,
                        help="characters of reasoning in a short response")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    server = SimServer(args)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", server.chat)
    app.router.add_get("/v1/models", server.models)
    app.router.add_get("/bench/stats", server.stats)
    app.router.add_get("/get_server_info", server.server_info)
    app.router.add_post("/bench/reset", server.reset_stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port, backlog=4096).start()
    port = runner.addresses[0][1]
    print(f"listening on http://127.0.0.1:{port}/v1", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(parse_args()))
