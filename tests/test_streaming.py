"""Streamed requests: each choice kept as it finishes, a broken stream re-asks only for the
rest, and the time limits measure the server's silence, not the length of a trace."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from r1eval.backends.openai_compat import OpenAICompatBackend
from r1eval.backends.sse import StreamAssembler, StreamError
from r1eval.errors import RequestFailed
from r1eval.types import Completion, Request, SamplingParams

from openai_server import Fault, OpenAIServer

REQUEST = Request(messages=({"role": "user", "content": "What is 6 x 7?"},), n=4,
                  sampling=SamplingParams(max_tokens=100))


def event(chunk: dict[str, Any] | str) -> list[bytes]:
    data = chunk if isinstance(chunk, str) else json.dumps(chunk)
    return [f"data: {data}\n".encode(), b"\n"]


def feed(assembler: StreamAssembler, *chunks: dict[str, Any] | str) -> list[dict[str, Any]]:
    return [done for chunk in chunks for line in event(chunk) for done in assembler.feed(line)]


def delta(index: int, finish: str | None = None, **fields: str) -> dict[str, Any]:
    return {"choices": [{"index": index, "delta": fields, "finish_reason": finish}]}


def test_the_assembler_hands_out_each_choice_when_it_finishes() -> None:
    stream = StreamAssembler()
    assert feed(stream, delta(0, role="assistant"), delta(1, reasoning_content="Hmm, "),
                delta(0, reasoning_content="6 x 7"), delta(1, reasoning_content="42?")) == []
    [first] = feed(stream, delta(1, "stop", content="\\boxed{42}"))
    assert first == {"index": 1, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "\\boxed{42}", "reasoning_content": "Hmm, 42?"}}
    assert stream.unfinished() == 1  # choice 0 is still generating
    [second] = feed(stream, delta(0, content="It is "), delta(0, "length", content="4"))
    assert second["message"]["content"] == "It is 4" and second["finish_reason"] == "length"
    usage = {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}
    feed(stream, {"choices": [], "usage": usage}, "[DONE]")
    assert stream.done and stream.usage == usage and stream.indexes == {0, 1}


def test_a_choice_without_content_stays_null_and_its_own_usage_is_kept() -> None:
    stream = StreamAssembler()
    own = {"prompt_tokens": 5, "completion_tokens": 3}
    [done] = feed(stream, delta(0, role="assistant"),
                  {**delta(0, "length", reasoning="still thinking"), "usage": own})
    assert done["message"]["content"] is None and done["message"]["reasoning"] == "still thinking"
    assert done["usage"] == own


@pytest.mark.parametrize("chunk", ["{not json", '{"error": {"message": "out of memory"}}',
                                   '{"choices": [{"index": "zero"}]}'])
def test_a_broken_or_failed_stream_is_an_error(chunk: str) -> None:
    with pytest.raises(StreamError):
        feed(StreamAssembler(), chunk)


async def collect(backend: OpenAICompatBackend, request: Request = REQUEST) -> list[Completion]:
    received: list[Completion] = []

    async def deliver(completion: Completion) -> None:
        received.append(completion)

    try:
        await backend.generate_each(request, deliver)
    finally:
        await backend.aclose()
    return received


def fast_backend(server: OpenAIServer, **options: Any) -> OpenAICompatBackend:
    return OpenAICompatBackend(server.model, server.base_url, None, backoff_initial_s=0.01,
                               backoff_max_s=0.01, **options)


def test_a_stream_cut_after_some_choices_finished_keeps_them_and_asks_for_the_rest() -> None:
    seconds = {0: 0.05, 1: 0.1, 2: 5.0, 3: 5.0}  # two finish, then the connection drops
    with OpenAIServer(faults=[Fault(serve=True, cut_after_choices=2)],
                      seconds=lambda body, index: 0.05 if body.get("n") == 2 else seconds[index]
                      ) as server:
        received = asyncio.run(collect(fast_backend(server)))
        asked = [body.get("n", 1) for body in server.requests]
        served = server.completions_served
    assert len(received) == 4 and all(c.text.startswith("The answer is") for c in received)
    assert asked == [4, 2]  # the second request asks only for the two that did not finish
    assert served == 4  # nothing that finished was generated again


def test_streamed_choices_carry_their_own_token_counts() -> None:
    with OpenAIServer() as server:
        received = asyncio.run(collect(fast_backend(server)))
    usages = [c.usage for c in received]
    assert all(u.completion_tokens and u.shared_by == 1 and not u.estimated for u in usages)
    assert [u.prompt_tokens for u in usages].count(0) == 3  # the prompt counted once


def test_a_long_stream_that_keeps_coming_is_never_cut_but_a_silent_one_is() -> None:
    """A trace of 1.5 s with a 0.5 s limit to the first event: kept, as events keep coming
    every 0.02 s. The same server silent for 1 s mid-stream: cut after 0.3 s of silence."""
    request = Request(REQUEST.messages, n=2, sampling=REQUEST.sampling)
    with OpenAIServer(seconds=lambda body, index: 1.5) as server:
        backend = fast_backend(server, timeout_s=0.5, idle_timeout_s=0.3, max_attempts=1)
        assert len(asyncio.run(collect(backend, request))) == 2
    with OpenAIServer(seconds=lambda body, index: 1.5, tick_s=1.0) as server:
        backend = fast_backend(server, timeout_s=5.0, idle_timeout_s=0.3, max_attempts=1)
        with pytest.raises(RequestFailed, match=r"the next event within 0\.3 s"):
            asyncio.run(collect(backend, request))


def test_a_server_that_does_not_stream_is_read_whole_and_not_asked_to_stream_again() -> None:
    with OpenAIServer(streams=False) as server:
        backend = fast_backend(server)
        received = asyncio.run(collect(backend))
        asyncio.run(collect(backend))
        streamed = [body.get("stream", False) for body in server.requests]
    assert len(received) == 4 and streamed == [True, False]
    assert backend.streams is False


def test_a_server_that_refuses_stream_options_is_asked_again_whole() -> None:
    with OpenAIServer(faults=[Fault(400)]) as server:
        backend = fast_backend(server)
        received = asyncio.run(collect(backend))
        streamed = [body.get("stream", False) for body in server.requests]
    assert len(received) == 4 and streamed == [True, False]


async def capacity(backend: OpenAICompatBackend) -> int | None:
    try:
        return await backend.capacity()
    finally:
        await backend.aclose()


def test_a_server_that_says_its_capacity_is_read() -> None:
    with OpenAIServer(slots=48, reports_capacity=True) as server:
        assert asyncio.run(capacity(fast_backend(server))) == 48
    with OpenAIServer(slots=48) as server:  # vLLM: no such route
        assert asyncio.run(capacity(fast_backend(server))) is None


def test_the_first_answer_of_a_server_that_ignores_n_tells() -> None:
    """Without the probe (or when it failed), the first answer to a request for several
    samples decides; the caller is handed what came and asks for the rest itself."""
    with OpenAIServer(ignore_n=True) as server:
        backend = fast_backend(server)
        assert not backend.ignores_n
        received = asyncio.run(collect(backend))
        asked = [body.get("n", 1) for body in server.requests]
    assert len(received) == 1 and backend.ignores_n and asked == [4]


async def probe_n(backend: OpenAICompatBackend) -> None:
    try:
        await backend.detect_n()
    finally:
        await backend.aclose()


def test_probing_n_costs_one_tiny_request() -> None:
    for ignore_n in (True, False):
        with OpenAIServer(ignore_n=ignore_n) as server:
            backend = fast_backend(server)
            asyncio.run(probe_n(backend))
            [probe] = server.requests
        assert backend.ignores_n is ignore_n and probe["n"] == 2 and probe["max_tokens"] == 1


def test_a_choice_begins_at_its_first_output_not_at_its_role() -> None:
    stream = StreamAssembler()
    feed(stream, delta(0, role="assistant"), delta(1, role="assistant"))
    assert stream.began() == []
    feed(stream, delta(1, reasoning_content="Hmm"))
    assert stream.began() == [1]
    feed(stream, delta(1, content="4"), delta(0, "stop", content="42"))
    assert stream.began() == [0]  # choice 0 began and finished in one event


@pytest.mark.data
@pytest.mark.parametrize("mode", ["on", "off"])
def test_time_to_first_token_and_decode_rate_per_streamed_sample(
    tmp_path: Any, data_dir: Any, mode: str
) -> None:
    from r1eval.cli import main

    with OpenAIServer(seconds=lambda body, index: 0.1 + 0.05 * index, tick_s=0.02) as server:
        assert main(["run", "--model", server.model, "--base-url", server.base_url, "--tasks",
                     "aime24", "--limit", "2", "--samples", "3", "--data-dir", str(data_dir),
                     "--run-dir", str(tmp_path / "run"), "--grader-workers", "0",
                     "--stream", mode]) == 0
    lines = (tmp_path / "run" / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    completions = [r for r in map(json.loads, lines) if r["type"] == "completion"]
    speed = json.loads((tmp_path / "run" / "scores.json").read_text(encoding="utf-8"))[
        "tasks"]["aime24"]["speed"]
    if mode == "off":
        assert all(c["first_token_s"] is None for c in completions)
        assert speed == {"streamed_samples": 0, "first_token_s": None,
                         "decode_tokens_per_s": None}
        return
    assert len(completions) == 6
    assert all(0 < c["first_token_s"] < c["latency_s"] for c in completions)
    assert speed["streamed_samples"] == 6
    firsts = sorted(c["first_token_s"] for c in completions)
    assert speed["first_token_s"]["median"] == pytest.approx(  # rounded to the millisecond
        firsts[2] / 2 + firsts[3] / 2, abs=5e-4)
    rates = [c["usage"]["completion_tokens"] / (c["latency_s"] - c["first_token_s"])
             for c in completions]
    assert speed["decode_tokens_per_s"]["median"] == pytest.approx(
        sorted(rates)[2] / 2 + sorted(rates)[3] / 2, abs=0.051)  # rounded to 0.1
