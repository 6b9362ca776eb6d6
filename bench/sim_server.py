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

``GET /bench/stats`` returns the server's own CPU seconds, requests and choices served, and in
fixed-capacity mode the busy slot-seconds and the times of the first arrival, the last arrival
and the last response; ``POST /bench/reset`` clears them.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import time
import zlib
from collections import Counter, deque
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

    def seconds(self, prompt: str, index: int) -> float:
        z = self.sigma * gaussian("question", prompt)  # the same in every run
        z += self.sigma_choice * gaussian(self.seed, prompt, index)
        return self.unit_s * math.exp(z)


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

    def __post_init__(self) -> None:
        self.free = self.size

    def arrived(self) -> None:
        now = time.monotonic()
        self._advance(now)
        self.first_arrival = self.first_arrival if self.first_arrival is not None else now
        self.last_arrival = now
        self.busy_before_last_arrival = self.busy_slot_s
        self._queued_at_last_arrival = (self.queued_s, self.queued_busy_slot_s)

    async def run(self, seconds: float) -> None:
        """Wait for a slot, hold it for ``seconds``, free it."""
        if self.free and not self.waiting:
            self.free -= 1
        else:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._advance(time.monotonic())
            self.waiting.append(future)
            await future  # the slot is handed over by ``_release``
        self._change(+1)
        try:
            await asyncio.sleep(seconds)
        finally:
            self._change(-1)
            self._release()

    def _release(self) -> None:
        if self.waiting:
            self._advance(time.monotonic())
            self.waiting.popleft().set_result(None)
        else:
            self.free += 1

    def _change(self, delta: int) -> None:
        now = time.monotonic()
        self._advance(now)
        self._busy += delta
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
        }


class SimServer:
    """The request handlers and their counters."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.ignore_n: bool = args.ignore_n
        self.durations = Durations(args.unit_s, args.sigma, args.sigma_choice, args.seed)
        self.slots_size: int = args.slots
        self.realistic = realistic_responses(args.realistic) if args.realistic else None
        self.reasoning = ("Let me think step by step. " * (args.reasoning_chars // 27 + 1))[
            : args.reasoning_chars]
        self.reset()

    def reset(self) -> None:
        self.requests = self.choices = 0
        self.served: Counter[str] = Counter()  # choices served so far, per prompt
        self.work_s = 0.0  # the sum of the generation times drawn (fixed-capacity mode)
        self.slots = Slots(self.slots_size) if self.slots_size else None
        self.cpu_at_reset = time.process_time()

    def respond(self, prompt: str, index: int) -> dict[str, str]:
        if self.realistic is not None and prompt in self.realistic:
            return self.realistic[prompt](index)
        return short_response(prompt, index, self.reasoning)

    async def chat(self, request: web.Request) -> web.Response:
        body: Body = json.loads(await request.read())
        prompt = last_user_text(body)
        n = 1 if self.ignore_n else int(body.get("n") or 1)
        self.requests += 1
        self.choices += n
        if self.slots is not None:
            await self._generate(prompt, n)
        # the k-th response to a prompt is answer k: repeats differ, as sampled responses do,
        # whether they come as n choices of one request or as separate requests
        first = self.served[prompt]
        self.served[prompt] += n
        messages = [self.respond(prompt, first + i) for i in range(n)]
        choices = [{"index": i, "message": {"role": "assistant", **message},
                    "finish_reason": "stop"} for i, message in enumerate(messages)]
        tokens = sum(len(m["content"]) + len(m["reasoning_content"]) for m in messages) // 4
        payload = {
            "id": f"chatcmpl-{self.requests}", "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model", MODEL), "choices": choices,
            "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": tokens,
                      "total_tokens": len(prompt) // 4 + tokens},
        }
        return web.Response(body=json.dumps(payload).encode(), content_type="application/json")

    async def _generate(self, prompt: str, n: int) -> None:
        assert self.slots is not None
        self.slots.arrived()
        seconds = [self.durations.seconds(prompt, i) for i in range(n)]
        self.work_s += sum(seconds)
        await asyncio.gather(*(self.slots.run(s) for s in seconds))

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
        return web.json_response(stats)

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="0: any free port")
    parser.add_argument("--ignore-n", action="store_true", help="one choice per request")
    parser.add_argument("--slots", type=int, default=0, help="capacity; 0: instant answers")
    parser.add_argument("--unit-s", type=float, default=0.05, help="median seconds per choice")
    parser.add_argument("--sigma", type=float, default=1.0, help="lognormal sigma per question")
    parser.add_argument("--sigma-choice", type=float, default=0.25,
                        help="lognormal sigma between the choices of one question")
    parser.add_argument("--seed", type=int, default=0)
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
    app.router.add_post("/bench/reset", server.reset_stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port, backlog=4096).start()
    port = runner.addresses[0][1]
    print(f"listening on http://127.0.0.1:{port}/v1", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(parse_args()))
