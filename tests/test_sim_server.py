"""bench/sim_server.py in fixed-capacity mode behaves as a GPU server does where the benchmarks
depend on it: a request's ``max_tokens`` caps its generation, and the k-th sample of a prompt
draws the k-th duration however it was asked for (as ``n`` or as separate requests)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import REPO


@pytest.fixture
def base_url() -> Iterator[str]:
    command = [sys.executable, str(REPO / "bench" / "sim_server.py"), "--port=0", "--slots=4",
               "--unit-s=0.01", "--sigma-choice=0.5"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as server:
        assert server.stdout is not None
        try:
            line = server.stdout.readline()
            assert line.startswith("listening on "), line
            yield line.split()[-1]
        finally:
            server.terminate()
            server.wait(timeout=30)


def post(base_url: str, n: int, max_tokens: int) -> dict[str, Any]:
    body = {"model": "m", "messages": [{"role": "user", "content": "What is 1 + 1?"}], "n": n,
            "max_tokens": max_tokens}
    request = urllib.request.Request(f"{base_url}/chat/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        answer: dict[str, Any] = json.load(response)
    return answer


def test_max_tokens_caps_generation(base_url: str) -> None:
    """A one-token request (r1eval's probe of ``n``) generates one token per choice, not a
    whole trace."""
    assert post(base_url, 2, 1)["usage"]["completion_tokens"] <= 2
    assert post(base_url, 1, 32768)["usage"]["completion_tokens"] > 100


def test_samples_asked_one_at_a_time_differ(base_url: str) -> None:
    """Repeats sent as separate requests of one sample (lm-eval; r1eval with little room
    left) take different times, as repeats sent as ``n`` do."""
    tokens = {post(base_url, 1, 32768)["usage"]["completion_tokens"] for _ in range(3)}
    assert len(tokens) == 3
