"""Against a server with a fixed number of slots (in its own process, as a GPU server is): the
run keeps the slots full without queueing its own work behind itself, so a request's timeout
measures generation; no sequence is generated twice; a server that ignores ``n`` is found out
and kept busy."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from r1eval.cli import main
from r1eval.store.folder import LOG, MANIFEST, read_log

from local_models import write_small_data

HERE = Path(__file__).parent
QUESTIONS = 8  # write_small_data's aime24


@contextmanager
def slot_server(*options: str) -> Iterator[str]:
    """``tests/openai_server.py`` in another process; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / "openai_server.py"), "--port", "0", *options],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "serving MODEL at URL"
        assert line.startswith("serving"), line
        yield line.split()[-1]
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def stats(base_url: str) -> dict[str, Any]:
    root = base_url.removesuffix("/v1")
    with urllib.request.urlopen(f"{root}/test/stats", timeout=10) as response:
        return dict(json.load(response))


def run(base_url: str, tmp_path: Path, samples: int, *flags: str) -> tuple[int, Path]:
    data = tmp_path / "data"
    if not data.exists():
        write_small_data(data)
    run_dir = tmp_path / "run"
    code = main(["run", "--model", "test-model", "--base-url", base_url, "--tasks", "aime24",
                 "--samples", str(samples), "--data-dir", str(data), "--run-dir", str(run_dir),
                 "--grader-workers", "0", *flags])
    return code, run_dir


def records(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    return [r for r in read_log(run_dir / LOG) if r["type"] == kind]


@pytest.mark.parametrize("stream", ["auto", "off"])
def test_an_aime_shaped_run_longer_than_the_timeout_wastes_nothing(
    tmp_path: Path, stream: str
) -> None:
    """8 questions x 16 samples on 4 slots, each sample 0.1-0.4 s: the run takes about 6 s,
    the timeout is 2 s (five times the longest sample, for a loaded machine). Sent all at
    once (as r1eval did: 8 requests of n=16), the queue behind the first request outlasted
    the timeout and whole requests were thrown away and generated again; kept to the server's
    capacity (which it reports, as SGLang does), every request is generated at once, within
    its timeout, streamed or not."""
    samples, slots = 16, 4
    with slot_server("--slots", str(slots), "--unit-s", "0.1", "--report-capacity") as url:
        code, run_dir = run(url, tmp_path, samples, "--timeout", "2", "--max-attempts", "2",
                            "--stream", stream)
        served = stats(url)
    assert code == 0
    assert not records(run_dir, "error")
    assert len(records(run_dir, "completion")) == QUESTIONS * samples
    # the server's own counts: each sample generated once, and never more than its slots
    needed = QUESTIONS * samples + 2  # and the probe of n: two one-token choices
    assert served["sequences_started"] == served["completions_served"] == needed
    assert served["most_generating"] == slots
    assert max(served["n_asked"]) <= slots
    manifest = json.loads((run_dir / MANIFEST).read_text())
    assert manifest["serving"]["samples_in_flight"] == slots
    assert manifest["serving"]["basis"] == "the server's max_running_requests"
    assert manifest["serving"]["streamed"] is (stream == "auto")


def test_a_server_that_ignores_n_is_found_out_and_kept_busy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """2 questions x 8 samples on a server of 8 slots that answers one choice per request:
    found out before the run by asking for two one-token choices, every sample goes out as a
    request of its own, all at once (the old top-up asked for each question's samples one
    after another: 2 slots busy of 8)."""
    data = tmp_path / "data"
    with slot_server("--slots", "8", "--unit-s", "0.05", "--ignore-n") as url:
        code, run_dir = run(url, tmp_path, 8, "--limit", "2", "--concurrency", "8")
        served = stats(url)
    assert data.exists() and code == 0
    assert not records(run_dir, "error")
    assert served["sequences_started"] == served["completions_served"] == 1 + 16  # no waste
    assert served["most_generating"] == 8
    # found out from the probe (n=2, one token): every request of the run asks for one sample
    assert served["n_asked"][0] == 2 and set(served["n_asked"][1:]) == {1}
    assert sum("ignores n" in message for message in caplog.messages) == 1
    manifest = json.loads((run_dir / MANIFEST).read_text())
    assert manifest["serving"]["server_ignores_n"] is True
    assert manifest["serving"]["basis"] == "--concurrency"


def test_a_server_that_does_not_say_its_capacity_gets_the_default_and_the_flag_is_named(
) -> None:
    from r1eval.backends.factory import backend_for
    from r1eval.run.config import RunConfig
    from r1eval.run.evaluate import DEFAULT_SEQUENCES, sequence_limit

    config = RunConfig(model="m", base_url="http://127.0.0.1:9/v1", tasks=["aime24"])
    backend = backend_for(config.model, config.base_url, None)  # nothing listens on port 9

    async def ask() -> tuple[int, str]:
        try:
            return await sequence_limit(config, backend)
        finally:
            await backend.aclose()

    limit, basis = asyncio.run(ask())
    assert limit == DEFAULT_SEQUENCES == 256
    assert basis == "the default: the server does not say its capacity; --concurrency sets it"
