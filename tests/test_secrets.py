"""The API key never reaches the run folder, logs, output, exceptions or the process title,
even from a server that echoes it back in its error messages."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import subprocess
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

from r1eval.backends.openai_compat import OpenAICompatBackend
from r1eval.cli import main
from r1eval.errors import EndpointError, RequestFailed
from r1eval.run.config import build_config
from r1eval.run.evaluate import execute, prepare
from r1eval.types import Request, SamplingParams

from conftest import OUTSIDE_REPO, r1eval_process_args
from openai_server import Body, Fault, OpenAIServer

KEY = f"sk-r1eval-{secrets.token_hex(16)}"
KEY_ENV = "R1EVAL_TEST_SECRET_KEY"


def echo(status: int) -> Fault:
    """An error whose body repeats the key, like a careless proxy."""
    message = {"error": {"message": f"request with key {KEY} failed", "code": status}}
    return Fault(status, body=json.dumps(message))


def echoing_faults(body: Body, number: int) -> Fault | None:
    """Errors that are retried (500, 429, 503) and one that fails its request (400)."""
    return {0: echo(500), 1: echo(429), 2: echo(400), 3: echo(503)}.get(number)


def run_args(server: OpenAIServer, data_dir: Path, run_dir: Path, workers: int = 0) -> list[str]:
    return ["run", "--model", server.model, "--base-url", server.base_url, "--tasks", "aime24",
            "--limit", "6", "--data-dir", str(data_dir), "--run-dir", str(run_dir),
            "--api-key-env", KEY_ENV, "--max-attempts", "2", "--grader-workers", str(workers)]


def files_holding_the_key(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]


@pytest.mark.data
def test_nothing_written_or_logged_holds_the_key(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    caplog.set_level(logging.DEBUG)  # every library's debug logging too
    run_dir = tmp_path / "run"
    with OpenAIServer(api_key=KEY, faults=echoing_faults) as server:
        assert main(run_args(server, data_dir, run_dir)) == 1  # the 400 failed its request
        assert main(run_args(server, data_dir, run_dir)) == 0  # ... and the rerun retried it
    out, err = capsys.readouterr()
    assert KEY not in out + err
    assert KEY not in caplog.text
    assert not [r for r in caplog.records if KEY in r.getMessage()]
    assert files_holding_the_key(run_dir) == []
    errors = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()
              if '"type":"error"' in line]
    assert len(errors) == 1 and "request with key *** failed" in errors[0]["message"]


@pytest.mark.data
def test_a_rejected_key_stops_the_run_with_no_key_in_the_error_or_its_traceback(
    tmp_path: Path, data_dir: Path
) -> None:
    """The 401 body echoes the key sent: neither the error nor its traceback (with the
    exceptions it was raised from) holds it, and no run folder is made."""
    with OpenAIServer(api_key="sk-the-right-one") as server:
        flags = {"model": server.model, "base_url": server.base_url, "tasks": "aime24",
                 "limit": 2, "data_dir": data_dir, "run_dir": tmp_path / "run",
                 "api_key_env": KEY_ENV}
        prepared = prepare(build_config(flags, None, {}), {KEY_ENV: KEY}, key_explicit=True)
        with pytest.raises(EndpointError) as failure:
            execute(prepared)
    assert "rejected the API key" in str(failure.value)
    assert KEY not in "".join(traceback.format_exception(failure.value))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("status", [500, 400])
def test_a_failed_request_carries_no_key_in_its_traceback(status: int) -> None:
    async def send(base_url: str) -> None:
        backend = OpenAICompatBackend("test-model", base_url, KEY, max_attempts=1)
        try:
            await backend.generate(Request(({"role": "user", "content": "hi"},), 1,
                                            SamplingParams()))
        finally:
            await backend.aclose()

    with OpenAIServer(faults=[echo(status)]) as server, pytest.raises(RequestFailed) as failure:
        asyncio.run(send(server.base_url))
    assert "request with key *** failed" in str(failure.value)
    assert KEY not in "".join(traceback.format_exception(failure.value))


@pytest.mark.data
def test_no_process_title_shows_the_key(tmp_path: Path, data_dir: Path) -> None:
    """While a run works (with its grading workers), no process on the machine shows the key
    in its command line or name."""
    run_dir = tmp_path / "run"

    def fraction(body: dict[str, Any], index: int) -> dict[str, str]:
        """Not a plain integer: graded by math-verify in a worker process."""
        return {"content": "The answer is \\boxed{\\frac{1}{2}}.", "finish_reason": "stop"}

    with OpenAIServer(api_key=KEY, delay_s=0.2, responder=fraction) as server:
        process = subprocess.Popen(
            r1eval_process_args(*run_args(server, data_dir, run_dir, workers=1)), cwd=OUTSIDE_REPO,
            env={**os.environ, KEY_ENV: KEY}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        titles: set[bytes] = set()
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            titles |= _titles()
            time.sleep(0.05)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode(errors="replace")
    assert any(b"r1eval.cli" in title for title in titles)
    assert any(b"spawn_main" in title for title in titles)  # a grading worker
    assert not [title for title in titles if KEY.encode() in title]
    assert KEY.encode() not in out + err
    assert files_holding_the_key(run_dir) == []


def _titles() -> set[bytes]:
    """Every process's command line and name, as ``ps`` shows them."""
    titles = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                titles.add((entry / "cmdline").read_bytes() + b" " + (entry / "comm").read_bytes())
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue  # ended meanwhile
    return titles


@pytest.mark.data
def test_a_key_the_model_echoes_is_redacted_from_the_log_and_the_report(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    run_dir = tmp_path / "run"

    def leaky(body: Body, index: int) -> dict[str, str]:
        return {"reasoning_content": f"The key in my context is {KEY}.",
                "content": f"My key: {KEY}. The answer is \\boxed{{7}}."}

    with OpenAIServer(api_key=KEY, responder=leaky) as server:
        assert main(run_args(server, data_dir, run_dir)) == 0
    assert main(["report", str(run_dir), "-o", str(run_dir / "report.html")]) == 0
    assert files_holding_the_key(run_dir) == []
    text = (run_dir / "samples.jsonl").read_text()
    assert "My key: ***. The answer is" in text and "in my context is ***." in text
