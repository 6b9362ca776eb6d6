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


@pytest.mark.parametrize("kind", [k for k in FAULT_KINDS if k != "slow"])
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
