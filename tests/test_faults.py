"""Each fault the test server can inject, through the real client: what is retried, what is
kept, and what the server delivered (nothing is asked for again once received).

Infrastructure faults (retried, never graded): HTTP 429 (with and without Retry-After),
500/502/503, a response slower than the client's timeout, a connection dropped before or during
the answer, a body that is not JSON, an empty ``choices`` list, and a choice with
``content: null`` and nothing else. Fewer choices than ``n``: the missing ones are asked for
again. ``content: null`` that the server accounts for (reasoning, finish_reason "length", a
refusal) is the model's outcome and is kept, to be graded.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest

from r1eval.backends.openai_compat import OpenAICompatBackend
from r1eval.errors import EndpointError, RequestFailed
from r1eval.types import Completion, Request, SamplingParams

from openai_server import FAULT_KINDS, Fault, OpenAIServer, RandomFaults

PROMPT = "What is 6 times 7? [[answer: 42]]"
ANSWER = "The answer is \\boxed{42}."


def generate(server: OpenAIServer, n: int = 1, **options: Any) -> list[Completion]:
    """One ``generate`` call for ``n`` choices on a fresh backend with tiny waits."""
    request = Request(({"role": "user", "content": PROMPT},), n, SamplingParams())
    settings = {"backoff_initial_s": 0.001, "backoff_max_s": 0.005, "retry_after_max_s": 0.01,
                **options}

    async def go() -> list[Completion]:
        backend = OpenAICompatBackend(server.model, server.base_url, None, **settings)
        try:
            return await backend.generate(request)
        finally:
            await backend.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("kind", [k for k in FAULT_KINDS if k not in ("slow", "stall_mid_body")])
@pytest.mark.parametrize("n", [1, 3])
def test_every_fault_kind_is_retried_and_nothing_is_delivered_twice(kind: str, n: int) -> None:
    faults = RandomFaults(rate=1.0, kinds=[kind])
    with OpenAIServer(faults=lambda body, number: faults(body, number) if number == 0 else None) \
            as server:
        completions = generate(server, n)
        assert len(server.requests) == 2  # the faulty answer, then one that completes it
        assert server.completions_served == n
    assert faults.injected == Counter({kind: 1})
    assert len(completions) == n and all(c.text == ANSWER for c in completions)


def test_a_response_slower_than_the_timeout_is_abandoned_and_retried() -> None:
    with OpenAIServer(faults=[Fault(serve=True, delay_s=1.0)]) as server:
        [completion] = generate(server, timeout_s=0.2)
        time.sleep(1.2)  # past the slow answer's delay: the server dropped it with the client
        assert len(server.requests) == 2 and server.completions_served == 1
    assert completion.text == ANSWER


def test_429_without_retry_after_waits_the_backoff() -> None:
    started = time.monotonic()
    with OpenAIServer(faults=[429, 429]) as server:
        assert len(generate(server, backoff_initial_s=0.2, backoff_max_s=0.2)) == 1
        assert len(server.requests) == 3
    assert time.monotonic() - started >= 0.4


def test_a_null_content_choice_among_good_ones_is_asked_for_again_alone() -> None:
    def responder(body: dict[str, Any], index: int) -> dict[str, Any]:
        return {"content": None} if body.get("n") == 3 and index == 1 else {"content": ANSWER}

    with OpenAIServer(responder=responder) as server:
        completions = generate(server, 3)
        assert [body.get("n") for body in server.requests] == [3, None]  # one choice topped up
    assert [c.text for c in completions] == [ANSWER] * 3
    assert [c.usage.shared_by for c in completions] == [2, 2, 1]  # usage sums stay exact


@pytest.mark.parametrize(
    ("fields", "text", "reasoning"),
    [
        ({"content": None, "reasoning_content": "so far, 4"}, "", "so far, 4"),
        ({"content": None, "finish_reason": "length"}, "", None),
        ({"content": None, "finish_reason": "content_filter"}, "", None),
        ({"content": None, "refusal": "I cannot help."}, "I cannot help.", None),
        ({"content": ""}, "", None),
    ],
    ids=["reasoning-only", "length", "content-filter", "refusal", "empty-string"],
)
def test_an_empty_answer_the_server_accounts_for_is_the_models_outcome(
    fields: dict[str, Any], text: str, reasoning: str | None
) -> None:
    with OpenAIServer(responder=lambda body, index: fields) as server:
        [completion] = generate(server)
        assert len(server.requests) == 1  # kept, to be graded: not retried
    assert (completion.text, completion.reasoning) == (text, reasoning)


def test_random_faults_are_seeded_and_keep_to_their_rate_and_kinds() -> None:
    bodies = [{"n": 2}] * 2000

    def draw(seed: int, kinds: tuple[str, ...] = FAULT_KINDS) -> list[Fault | None]:
        faults = RandomFaults(rate=0.2, seed=seed, kinds=kinds)
        return [faults(body, number) for number, body in enumerate(bodies)]

    assert draw(1) == draw(1) != draw(2)
    assert 300 < sum(fault is not None for fault in draw(1)) < 500
    only_drops = [fault for fault in draw(3, ("drop",)) if fault is not None]
    assert only_drops and all(fault.drop for fault in only_drops)
    with pytest.raises(ValueError, match="kinds"):
        RandomFaults(kinds=["teapot"])


def test_a_body_that_stalls_half_way_times_out_and_says_so() -> None:
    with OpenAIServer(faults=[Fault(stall_mid_body=True)]) as server:
        with pytest.raises(RequestFailed) as failure:
            generate(server, timeout_s=0.3, max_attempts=1)
        [completion] = generate(server, timeout_s=5.0)  # the next answer is whole
    assert "timed out after 0.3 s" in str(failure.value)
    assert "CancelledError" not in str(failure.value)
    assert completion.text == ANSWER


def test_a_200_carrying_an_error_keeps_the_servers_message_and_is_retried() -> None:
    error = '{"error": {"message": "upstream model crashed", "code": 500}}'
    expected = "HTTP 200 with an error instead of choices: upstream model crashed"
    with OpenAIServer(faults=[Fault(200, body=error)]) as server, \
            pytest.raises(RequestFailed, match=expected):
        generate(server, max_attempts=1)
    with OpenAIServer(faults=[Fault(200, body=error)]) as server:
        assert [c.text for c in generate(server)] == [ANSWER]
        assert len(server.requests) == 2


MIB = 1 << 20


@pytest.mark.parametrize("how", ["endless", "declared"])
def test_a_body_over_the_limit_is_a_failed_request_read_no_further(how: str) -> None:
    """A body that never ends (1 MiB chunks, up to 1 GiB) is abandoned past the limit, and so
    is one whose declared length is over it, with the limit named in the message."""
    fault = (Fault(endless=True, endless_mib=1024) if how == "endless"
             else Fault(200, body="x" * (3 * MIB)))
    started = time.monotonic()
    with OpenAIServer(faults=[fault]) as server, pytest.raises(RequestFailed) as failure:
        generate(server, max_response_bytes=2 * MIB)
    assert "larger than 2 MiB (--max-response-mib)" in str(failure.value)
    assert not failure.value.transient  # not tried again: it would cost as much again
    assert time.monotonic() - started < 60  # not 1 GiB read (a bound, not a speed claim)


def test_a_body_just_under_the_limit_is_read() -> None:
    big = {"content": ANSWER, "reasoning_content": "y" * (MIB - 4096)}
    with OpenAIServer(responder=lambda body, index: big) as server:
        [completion] = generate(server, max_response_bytes=MIB)
    assert completion.text == ANSWER and len(completion.reasoning or "") == MIB - 4096


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed_and_names_its_target(status: int) -> None:
    target = "http://127.0.0.1:9/elsewhere/v1/chat/completions"
    with OpenAIServer(faults=[Fault(status, headers={"Location": target})]) as server:
        with pytest.raises(EndpointError) as failure:
            generate(server)
        assert len(server.requests) == 1  # not sent again, there or here
    message = str(failure.value)
    assert f"redirects (HTTP {status}) to {target}" in message
    assert "--base-url" in message and "\n" not in message


def test_a_long_retry_after_wait_says_what_it_waits_for_and_until_when(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("r1eval.backends.retry_policy._ANNOUNCED_WAIT_S", 0.2)
    with OpenAIServer(faults=[Fault(429, retry_after="0.3")]) as server:
        assert len(generate(server, retry_after_max_s=1.0)) == 1
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    message = warning.getMessage()
    assert "asked to wait (Retry-After" in message and "HTTP 429" in message
    assert "waiting 0.3 s, until " in message and "before trying the request again" in message
