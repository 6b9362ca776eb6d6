"""OpenAICompatBackend against a real OpenAI-compatible server, over real sockets."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import re
import socket
import time
import urllib.request
from typing import Any

import pytest

from r1eval.backends.base import Backend
from r1eval.backends.openai_compat import OpenAICompatBackend
from r1eval.backends.retry_policy import RetryPolicy
from r1eval.errors import EndpointError, RequestFailed
from r1eval.types import Completion, Request, SamplingParams

from openai_server import Fault, OpenAIServer, prompt_answer

MODEL = "test-model"
PROMPT = "What is 6 times 7? [[answer: 42]]"
SECRET = "sk-very-secret-key-123"
#: Tiny waits so that retries cost milliseconds.
FAST: dict[str, Any] = {"backoff_initial_s": 0.001, "backoff_max_s": 0.005}


def make_request(n: int = 1, **sampling: Any) -> Request:
    messages = ({"role": "user", "content": PROMPT},)
    return Request(messages=messages, n=n, sampling=SamplingParams(**sampling))


def generate(
    base_url: str,
    request: Request | None = None,
    *,
    model: str = MODEL,
    api_key: str | None = None,
    **options: Any,
) -> list[Completion]:
    """One ``generate`` call on a fresh backend, closed afterwards."""

    async def go() -> list[Completion]:
        backend = OpenAICompatBackend(model, base_url, api_key, **{**FAST, **options})
        try:
            return await backend.generate(request or make_request())
        finally:
            await backend.aclose()

    return asyncio.run(go())


def free_port() -> int:
    """A port on which nothing listens (just released by the OS)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- what comes back ----------------------------------------------------------------------


def test_reasoning_content_is_kept_apart_from_the_answer() -> None:
    with OpenAIServer() as server:
        [completion] = generate(server.base_url)
    assert completion.text == "The answer is \\boxed{42}."
    assert completion.reasoning is not None
    assert completion.reasoning.startswith("Choice 0. Thinking about: What is 6 times 7?")
    assert completion.finish_reason == "stop"
    assert completion.model == MODEL
    assert completion.latency_s is not None and completion.latency_s > 0


def test_usage_and_reasoning_tokens_are_parsed() -> None:
    with OpenAIServer() as server:
        [completion] = generate(server.base_url)
    # The test server counts one token per word.
    assert completion.usage.prompt_tokens == len(PROMPT.split())
    assert completion.reasoning is not None
    assert completion.usage.reasoning_tokens == len(completion.reasoning.split())
    assert completion.usage.completion_tokens == (
        len(completion.text.split()) + completion.usage.reasoning_tokens
    )
    assert completion.usage.shared_by == 1


def test_reasoning_field_is_read_too() -> None:
    def responder(body: dict[str, Any], index: int) -> dict[str, Any]:
        return {"content": "\\boxed{7}", "reasoning": "so it is 7", "finish_reason": "length"}

    with OpenAIServer(responder=responder) as server:
        [completion] = generate(server.base_url)
    assert (completion.text, completion.reasoning) == ("\\boxed{7}", "so it is 7")
    assert completion.finish_reason == "length"


def test_no_reasoning_field_gives_none_and_null_content_gives_empty_text() -> None:
    def responder(body: dict[str, Any], index: int) -> dict[str, Any]:
        # Cut off at the limit: the model's outcome (content null with no reason is a fault,
        # see test_faults.py).
        return {"content": None, "finish_reason": "length"}

    with OpenAIServer(responder=responder) as server:
        [completion] = generate(server.base_url)
    assert (completion.text, completion.reasoning) == ("", None)
    assert completion.usage.reasoning_tokens is None


def test_n_choices_come_back_from_one_request_with_shared_usage() -> None:
    with OpenAIServer() as server:
        completions = generate(server.base_url, make_request(n=3))
        assert [body["n"] for body in server.requests] == [3]
    assert len(completions) == 3
    assert {c.usage.shared_by for c in completions} == {3}
    assert [(c.reasoning or "")[:8] for c in completions] == ["Choice 0", "Choice 1", "Choice 2"]


def test_a_server_ignoring_n_is_topped_up_with_further_requests() -> None:
    with OpenAIServer(ignore_n=True) as server:
        completions = generate(server.base_url, make_request(n=4))
        assert [body.get("n") for body in server.requests] == [4, 3, 2, None]
        assert server.completions_served == 4
    assert len(completions) == 4
    assert {c.usage.shared_by for c in completions} == {1}


def test_a_failed_top_up_returns_what_was_collected() -> None:
    def faults(body: dict[str, Any], number: int) -> int | None:
        return 500 if number > 0 else None

    with OpenAIServer(ignore_n=True, faults=faults) as server:
        completions = generate(server.base_url, make_request(n=3), max_attempts=2)
        assert len(server.requests) == 1 + 2
    assert len(completions) == 1


def test_many_concurrent_requests_share_one_client() -> None:
    async def go(base_url: str) -> list[list[Completion]]:
        backend = OpenAICompatBackend(MODEL, base_url, None, max_connections=8, **FAST)
        try:
            return await asyncio.gather(*(backend.generate(make_request()) for _ in range(40)))
        finally:
            await backend.aclose()

    with OpenAIServer(delay_s=0.01) as server:
        results = asyncio.run(go(server.base_url))
        assert server.completions_served == 40
    assert all(len(r) == 1 for r in results)


# --- what is sent -------------------------------------------------------------------------


def test_unset_sampling_parameters_are_left_out() -> None:
    with OpenAIServer() as server:
        generate(server.base_url)
        [body] = server.requests
    assert set(body) == {"model", "messages"}
    assert body["messages"] == [{"role": "user", "content": PROMPT}]


def test_set_sampling_parameters_are_sent_with_max_tokens() -> None:
    request = make_request(temperature=0.6, top_p=0.95, max_tokens=32768, seed=7, stop=("</s>",))
    with OpenAIServer() as server:
        generate(server.base_url, request)
        [body] = server.requests
    assert body["temperature"] == 0.6
    assert body["top_p"] == 0.95
    assert body["max_tokens"] == 32768
    assert "max_completion_tokens" not in body
    assert body["seed"] == 7
    assert body["stop"] == ["</s>"]
    assert "n" not in body and "stream" not in body


def test_an_empty_stop_is_omitted() -> None:
    with OpenAIServer() as server:
        generate(server.base_url, make_request(stop=()))
        [body] = server.requests
    assert "stop" not in body


def test_the_environments_proxy_is_used_unless_no_proxy_covers_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTP_PROXY pointing at a closed port: requests go there and fail; once NO_PROXY names
    the server's host they go straight to it."""
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    with OpenAIServer() as server:
        with pytest.raises(RequestFailed, match="no response"):
            generate(server.base_url, max_attempts=1)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert len(generate(server.base_url)) == 1
        assert len(server.requests) == 1


def test_the_request_carries_the_key_and_names_r1eval() -> None:
    with OpenAIServer(api_key=SECRET) as server:
        generate(server.base_url, api_key=SECRET)
        [headers] = server.request_headers
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert headers["User-Agent"].startswith("r1eval/")


# --- retries ------------------------------------------------------------------------------

PAST_DATE = email.utils.formatdate(time.time() - 60, usegmt=True)


@pytest.mark.parametrize(
    "retry_after",
    ["0.05", PAST_DATE, "3600"],
    ids=["seconds", "http-date", "capped"],
)
def test_429_is_retried_after_the_servers_retry_after(
    retry_after: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The exponential backoff would wait 10 s: the wait logged shows Retry-After was used.
    options: dict[str, Any] = {
        "backoff_initial_s": 10.0,
        "backoff_max_s": 10.0,
        "retry_after_max_s": 0.1,
    }
    caplog.set_level(logging.INFO, logger="r1eval.backends.retry_policy")
    with OpenAIServer(faults=[Fault(429, retry_after=retry_after)]) as server:
        completions = generate(server.base_url, **options)
        assert len(server.requests) == 2
    assert len(completions) == 1
    [wait_s] = [float(w) for w in re.findall(r"retrying in ([\d.]+) s", caplog.text)]
    assert wait_s <= 0.1


def test_a_retry_after_longer_than_the_backoff_is_waited_for() -> None:
    started = time.monotonic()
    with OpenAIServer(faults=[Fault(503, retry_after="0.3")]) as server:
        assert len(generate(server.base_url)) == 1
    assert time.monotonic() - started >= 0.3


def test_503_twice_then_success() -> None:
    with OpenAIServer(faults=[503, 503]) as server:
        completions = generate(server.base_url)
        assert len(server.requests) == 3
    assert len(completions) == 1


@pytest.mark.parametrize("status", [408, 409, 502])
def test_other_transient_statuses_are_retried(status: int) -> None:
    with OpenAIServer(faults=[status]) as server:
        assert len(generate(server.base_url)) == 1
        assert len(server.requests) == 2


def test_a_request_answered_at_once_never_enters_the_retry_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The retry loop's machinery costs about 0.2 ms of CPU a request: only a first try
    that failed enters it (and then as the loop's first attempt: the tests above and below
    count the requests the server saw)."""

    def no_loop(self: RetryPolicy) -> None:
        raise AssertionError("a request answered at once entered the retry loop")

    monkeypatch.setattr(RetryPolicy, "_loop", no_loop)
    with OpenAIServer() as server:
        assert len(generate(server.base_url, make_request(n=2))) == 2
        assert len(server.requests) == 1


def test_500_forever_fails_transiently_after_max_attempts() -> None:
    with OpenAIServer(faults=lambda body, number: 500) as server:
        with pytest.raises(RequestFailed) as failure:
            generate(server.base_url, max_attempts=4)
        assert len(server.requests) == 4
    assert failure.value.transient is True
    assert failure.value.status == 500
    assert "4 attempts" in str(failure.value)
    assert "\n" not in str(failure.value)


@pytest.mark.parametrize(
    "fault",
    [
        Fault(200, body="not json {"),
        Fault(200, body="plain words", content_type="text/plain"),
        Fault(200, body=json.dumps({"id": "x", "object": "chat.completion", "choices": []})),
        Fault(200, body=json.dumps({"choices": [{"index": 0, "message": None}]})),
        Fault(drop=True),
    ],
    ids=["bad-json", "not-json", "no-choices", "no-message", "dropped-connection"],
)
def test_malformed_responses_and_dropped_connections_are_retried(fault: Fault) -> None:
    with OpenAIServer(faults=[fault]) as server:
        completions = generate(server.base_url)
        assert len(server.requests) == 2
    assert len(completions) == 1


def test_a_refused_connection_fails_transiently_after_retries() -> None:
    with pytest.raises(RequestFailed) as failure:
        generate(f"http://127.0.0.1:{free_port()}/v1", max_attempts=2)
    assert failure.value.transient is True
    assert failure.value.status is None
    assert "2 attempts" in str(failure.value)


def test_a_server_slower_than_the_timeout_is_retried_then_fails() -> None:
    with OpenAIServer(delay_s=2.0) as server:
        with pytest.raises(RequestFailed) as failure:
            generate(server.base_url, timeout_s=0.2, max_attempts=2)
        assert len(server.requests) == 2
    assert failure.value.transient is True
    assert failure.value.status is None


# --- failures that are not retried --------------------------------------------------------


@pytest.mark.parametrize("status", [400, 422])
def test_a_rejected_prompt_fails_at_once(status: int) -> None:
    with OpenAIServer(faults=[status]) as server:
        with pytest.raises(RequestFailed) as failure:
            generate(server.base_url)
        assert len(server.requests) == 1
    assert failure.value.transient is False
    assert failure.value.status == status


def test_a_wrong_api_key_fails_the_run_without_leaking_it() -> None:
    # The server echoes the key it received in its 401 body.
    with OpenAIServer(api_key="the-right-key") as server:
        with pytest.raises(EndpointError) as failure:
            generate(server.base_url, api_key=SECRET)
        assert len(server.requests) == 1
    assert "rejected the API key" in str(failure.value)
    assert SECRET not in str(failure.value)


def test_a_missing_api_key_is_named_as_such() -> None:
    with OpenAIServer(faults=[403]) as server, pytest.raises(EndpointError) as failure:
        generate(server.base_url)
    assert "no API key was given" in str(failure.value)


def test_the_right_api_key_is_accepted() -> None:
    with OpenAIServer(api_key=SECRET) as server:
        assert len(generate(server.base_url, api_key=SECRET)) == 1


def test_an_unknown_model_fails_the_run_naming_model_and_url() -> None:
    with OpenAIServer(strict_model=True) as server:
        with pytest.raises(EndpointError) as failure:
            generate(server.base_url, model="no-such-model")
        assert len(server.requests) == 1
        message = str(failure.value)
    assert "no-such-model" in message and server.base_url in message


def test_the_key_never_appears_in_retry_failures() -> None:
    server = OpenAIServer(faults=lambda body, number: Fault(500, body=f"bad key {SECRET}"))
    with server, pytest.raises(RequestFailed) as failure:
        generate(server.base_url, api_key=SECRET, max_attempts=2)
    assert SECRET not in str(failure.value)


# --- identity -----------------------------------------------------------------------------


def test_identity_names_model_and_normalised_url_but_never_the_key() -> None:
    backend = OpenAICompatBackend("m", "HTTP://user:pw@LocalHost:8000/v1/ ", SECRET)
    try:
        assert isinstance(backend, Backend)
        assert backend.identity() == {"model": "m", "base_url": "http://localhost:8000/v1"}
    finally:
        asyncio.run(backend.aclose())


def test_a_url_that_is_not_http_is_an_endpoint_error() -> None:
    with pytest.raises(EndpointError):
        OpenAICompatBackend("m", "localhost:8000/v1", None)


# --- the test server itself ---------------------------------------------------------------


def test_the_server_lists_its_model() -> None:
    with (
        OpenAIServer(model="served") as server,
        urllib.request.urlopen(f"{server.base_url}/models", timeout=5) as response,
    ):
        listing = json.load(response)
    assert [entry["id"] for entry in listing["data"]] == ["served"]


def test_the_default_answer_is_scriptable_and_deterministic() -> None:
    assert prompt_answer("x [[answer: \\frac{1}{2}]] y") == "\\frac{1}{2}"
    assert prompt_answer("anything") == prompt_answer("anything")
