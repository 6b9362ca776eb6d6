"""An endpoint that cannot serve the run: one line, exit 2, no request wasted, no run folder.
An endpoint that fails every request: the run stops after a bounded number of failures in a row,
keeps what it has, says how to resume, and resumes.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from r1eval.cli import main

from openai_server import Fault, Faults, OpenAIServer

pytestmark = pytest.mark.data

QUESTIONS = 30


def run_args(base_url: str, run_dir: Path, data_dir: Path, *extra: str) -> list[str]:
    return ["run", "--model", "test-model", "--base-url", base_url, "--tasks", "aime24",
            "--limit", str(QUESTIONS), "--data-dir", str(data_dir), "--run-dir", str(run_dir),
            "--grader-workers", "0", "--concurrency", "4", *extra]


def free_port() -> int:
    """A port on which nothing listens (just released by the OS)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def last_error(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and lines[-1].startswith("r1eval: error: "), lines
    return lines[-1]


def only_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("r1eval: error: "), lines
    return lines[0]


def test_a_refused_connection_stops_before_anything(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    assert main(run_args(url, tmp_path / "run", data_dir)) == 2
    line = only_line(capsys)
    assert f"cannot reach {url}" in line and "check the base URL" in line
    assert not (tmp_path / "run").exists()


def test_a_wrong_url_path_stops_before_anything(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with OpenAIServer() as server:
        url = server.base_url.removesuffix("/v1") + "/api"  # no such route: 404 everywhere
        assert main(run_args(url, tmp_path / "run", data_dir)) == 2
        assert server.requests == []  # the probe never reached a chat route
    line = only_line(capsys)
    assert "not found at" in line and "check the model name and the base URL" in line
    assert not (tmp_path / "run").exists()


def test_a_wrong_model_name_costs_one_tiny_request_and_names_the_served_ones(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with OpenAIServer(model="served-model", strict_model=True) as server:
        assert main(run_args(server.base_url, tmp_path / "run", data_dir)) == 2
        [probe] = server.requests
    assert probe["max_tokens"] == 1 and "n" not in probe
    line = only_line(capsys)
    assert "model 'test-model' not found" in line and "the endpoint serves: served-model" in line
    assert not (tmp_path / "run").exists()


def test_a_rejected_key_stops_before_any_chat_request(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("R1EVAL_TEST_KEY", "sk-wrong-key")
    with OpenAIServer(api_key="sk-right-key") as server:
        args = run_args(server.base_url, tmp_path / "run", data_dir,
                        "--api-key-env", "R1EVAL_TEST_KEY")
        assert main(args) == 2
        assert server.requests == [] and server.model_listings == 1
    line = only_line(capsys)
    assert "rejected the API key (HTTP 401)" in line and "sk-wrong-key" not in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("options", "probes"),
    [({"models_route": False}, 1), ({"listed": ["models/ggml-model-q4.gguf"]}, 1), ({}, 0)],
    ids=["no-models-route", "model-not-listed", "model-listed"],
)
def test_an_endpoint_that_serves_the_model_is_never_refused(
    tmp_path: Path, data_dir: Path, options: dict[str, Any], probes: int
) -> None:
    """A server without ``/models`` (404), or that lists a file name and serves any name (as
    llama.cpp does), is checked with one tiny request; a listed model needs none."""
    with OpenAIServer(**options) as server:
        assert main(run_args(server.base_url, tmp_path / "run", data_dir)) == 0
        assert len(server.requests) == QUESTIONS + probes
        assert [b.get("max_tokens") for b in server.requests[:probes]] == [1] * probes


def after(successes: int, fault: Fault) -> Faults:
    """Serve the first ``successes`` requests, then answer every later one with ``fault``."""
    return lambda body, number: fault if number >= successes else None


@pytest.mark.parametrize(
    ("fault", "extra"),
    [
        (Fault(503), []),
        (Fault(drop=True), []),
        (Fault(serve=True, delay_s=60.0), ["--timeout", "0.3"]),  # hangs: every request times out
    ],
    ids=["503", "dropped", "hanging"],
)
def test_an_endpoint_failing_every_request_stops_saves_and_resumes(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], fault: Fault,
    extra: list[str],
) -> None:
    run_dir = tmp_path / "run"
    args = run_args("", run_dir, data_dir, "--max-attempts", "1", *extra)
    with OpenAIServer(faults=after(5, fault)) as server:
        args[args.index("--base-url") + 1] = server.base_url
        assert main(args) == 1
        line = last_error(capsys)
        assert "stopped after 20 failed requests in a row" in line
        assert "everything received is saved: run the same command again to resume" in line
        stopped = json.loads((run_dir / "scores.json").read_text())["tasks"]["aime24"]
        assert stopped["n_samples"] == 5 and not stopped["complete"]
        assert stopped["n_errors"] >= 20 and stopped["n_not_attempted"] > 0

        server.faults = None  # the endpoint is back
        sent_before = len(server.requests)
        assert main(args) == 0
        assert len(server.requests) - sent_before == QUESTIONS - 5  # only what was missing
    resumed = json.loads((run_dir / "scores.json").read_text())["tasks"]["aime24"]
    assert resumed["complete"] and resumed["n_samples"] == QUESTIONS


def test_a_redirected_chat_request_stops_the_run_with_one_line_naming_the_target(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The model listing is served; the chat route answers 302 to another host: nothing is
    sent there, nothing answered by a GET is stored or graded."""
    target = "http://127.0.0.1:9/v1/chat/completions"
    moved = Fault(302, headers={"Location": target})
    with OpenAIServer(faults=lambda body, number: moved) as server:
        assert main(run_args(server.base_url, tmp_path / "run", data_dir)) == 2
    line = last_error(capsys)
    assert f"redirects (HTTP 302) to {target}" in line and "--base-url" in line
    log = (tmp_path / "run" / "samples.jsonl").read_text()
    assert '"type":"completion"' not in log


#: Runs the command given and prints its exit code and its peak RSS in MB.
PEAK_RSS_OF = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""


def test_a_server_sending_an_endless_body_costs_a_bounded_amount_of_memory(
    tmp_path: Path, data_dir: Path
) -> None:
    """Each request's body runs on (1 MiB chunks, up to 2 GiB): the run reads 8 MiB of each
    (--max-response-mib 8), records the request as failed, and its process stays small."""
    import subprocess
    import sys

    from conftest import OUTSIDE_REPO, r1eval_process_args

    endless = Fault(endless=True, endless_mib=2048)
    with OpenAIServer(faults=lambda body, number: endless) as server:
        args = run_args(server.base_url, tmp_path / "run", data_dir, "--limit", "2",
                        "--max-response-mib", "8", "--max-attempts", "1", "--timeout", "60")
        done = subprocess.run([sys.executable, "-c", PEAK_RSS_OF, *r1eval_process_args(*args)],
                              cwd=OUTSIDE_REPO, capture_output=True, text=True, timeout=300,
                              check=False)
    code, peak_mb = map(float, done.stdout.split())
    assert code == 1, done.stderr
    assert peak_mb < 500, peak_mb  # 2 GiB per request were on offer
    errors = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text()
              .splitlines() if '"type":"error"' in line]
    assert len(errors) == 2
    assert all("larger than 8 MiB (--max-response-mib)" in e["message"] for e in errors)
