"""One run across several replicas (``--base-url`` given more than once), against three real
servers in separate processes (``tests/openai_server.py``): one 3x slower, one killed mid-run
and restarted. Scores are exact (the servers answer as scripted in each question), no sample
is lost, and the servers' own counts show that nothing was answered twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from r1eval.backends.replicas import EndpointSpec, ReplicaPool, endpoint_specs
from r1eval.backends.rotation import Rotation
from r1eval.cli import main
from r1eval.run.config import build_config

from conftest import OUTSIDE_REPO, r1eval_process_args
from openai_server import Fault, OpenAIServer

TESTS = Path(__file__).resolve().parent
TASK_DIR = TESTS / "task_files"
SLOTS = 4
#: tiny_math's questions, each answered as scripted in it: (gold, the servers' answer).
QUESTIONS = [("5", "5"), ("12", "12"), ("100", "100"), ("-7", "3"), ("3", "3"),
             ("8", "9"), ("21", "21"), ("64", "64")]
EXPECTED_PASS_AT_1 = sum(gold == said for gold, said in QUESTIONS) / len(QUESTIONS)


@dataclass
class Replica:
    """One ``tests/openai_server.py`` process on a fixed loopback port (so it can restart)."""

    port: int
    model: str
    unit_s: float
    served_log: Path
    process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> Replica:
        self.process = subprocess.Popen(
            [sys.executable, str(TESTS / "openai_server.py"), "--port", str(self.port),
             "--model", self.model, "--slots", str(SLOTS), "--unit-s", str(self.unit_s),
             "--served-log", str(self.served_log)],
            stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("serving "), f"the test server did not start: {line!r}"
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self._close()

    def _close(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()

    def served(self) -> int:
        """Choices this port's servers delivered for the run, across restarts (their
        ``--served-log``), not counting r1eval's one-token probes (``detect_n``)."""
        if not self.served_log.exists():
            return 0
        answers = map(json.loads, self.served_log.read_text().splitlines())
        return sum(a["choices"] for a in answers if a["max_tokens"] != 1)

    def requests_now(self) -> int:
        with urllib.request.urlopen(self.url.removesuffix("/v1") + "/test/stats",
                                    timeout=10) as response:  # loopback only
            stats: dict[str, Any] = json.loads(response.read())
        return int(stats["requests"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def replicas(tmp_path: Path, *units: float, model: str = "test-model") -> Iterator[list[Replica]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    started = [Replica(free_port(), model, unit_s, tmp_path / f"served-{i}.log")
               for i, unit_s in enumerate(units)]
    try:
        for replica in started:
            replica.start()
        yield started
    finally:
        for replica in started:
            replica.stop()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """tiny_math with each question scripting the servers' answer (``[[answer: X]]``)."""
    folder = tmp_path / "data" / "tiny_math"
    folder.mkdir(parents=True)
    lines = [{"id": f"q{i}", "problem": f"Question {i}. [[answer: {said}]]", "answer": gold}
             for i, (gold, said) in enumerate(QUESTIONS)]
    (folder / "test.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return folder.parent


def run_args(urls: list[str], data: Path, run_dir: Path, samples: int, *extra: str
             ) -> list[str]:
    flags = [flag for url in urls for flag in ("--base-url", url)]
    return r1eval_process_args(
        "run", "--model", "test-model", *flags, "--tasks", "tiny_math", "--task-dir",
        str(TASK_DIR), "--data-dir", str(data), "--samples", str(samples), "--run-dir",
        str(run_dir), "--grader-workers", "0", *extra)


def records(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    lines = (run_dir / "samples.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == kind]


def check_complete_and_exact(run_dir: Path, samples: int) -> list[dict[str, Any]]:
    """Every sample answered once, none failed, and the exact expected score."""
    completions = records(run_dir, "completion")
    keys = Counter(c["key"] for c in completions)
    assert len(keys) == len(QUESTIONS) * samples  # no sample lost
    assert set(keys.values()) == {1}  # none received twice
    assert records(run_dir, "error") == []
    scores = json.loads((run_dir / "scores.json").read_text())
    assert scores["complete"] is True
    assert scores["tasks"]["tiny_math"]["pass@1"] == EXPECTED_PASS_AT_1
    return completions


@pytest.mark.slow
def test_a_slow_replica_takes_less_of_the_queue_and_nothing_is_answered_twice(
    tmp_path: Path, data: Path
) -> None:
    samples = 16
    with replicas(tmp_path, 0.02, 0.02, 0.06) as (fast, other, slow):
        done = subprocess.run(run_args([f"{fast.url}@{SLOTS}", other.url, slow.url], data,
                                       tmp_path / "run", samples, "--concurrency", str(SLOTS)),
                              cwd=OUTSIDE_REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        completions = check_complete_and_exact(tmp_path / "run", samples)
        by_endpoint = Counter(c["endpoint"] for c in completions)
        served = {r.url: r.served() for r in (fast, other, slow)}
    assert served == by_endpoint  # the servers' own counts: nothing generated twice
    assert sum(served.values()) == len(QUESTIONS) * samples
    assert min(served[fast.url], served[other.url]) > served[slow.url] > 0
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    assert manifest["identity"]["endpoint"]["base_url"] == fast.url
    assert manifest["serving"]["samples_in_flight"] == 3 * SLOTS
    assert [e["base_url"] for e in manifest["serving"]["endpoints"]] == list(served)


@pytest.mark.slow
def test_a_replica_killed_mid_run_costs_no_sample_and_comes_back_when_restarted(
    tmp_path: Path, data: Path
) -> None:
    samples = 48
    run_dir = tmp_path / "run"
    with replicas(tmp_path, 0.05, 0.05, 0.15) as (first, killed, slow):
        run = subprocess.Popen(run_args([first.url, killed.url, slow.url], data, run_dir,
                                        samples, "--concurrency", str(SLOTS)),
                               cwd=OUTSIDE_REPO, stderr=subprocess.PIPE, text=True)
        log = run_dir / "samples.jsonl"
        deadline = time.monotonic() + 120
        while not (log.exists() and log.read_text().count('"completion"') >= 60):
            assert run.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        killed.kill()  # SIGKILL: its requests in flight die with it
        served_before_kill = killed.served()
        time.sleep(1.0)
        killed.start()  # the same port: probed back into rotation
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr
        served_after_restart = killed.served() - served_before_kill
        requests_after_restart = killed.requests_now()
        completions = check_complete_and_exact(run_dir, samples)
        served = first.served() + killed.served() + slow.served()
    assert "is out of rotation" in stderr and "is back in rotation" in stderr
    assert requests_after_restart > 0 and served_after_restart > 0
    # Nothing generated twice after it was received: the servers delivered what the log
    # holds, plus at most what the killed server had finished as it died.
    assert len(completions) <= served <= len(completions) + SLOTS
    assert Counter(c["endpoint"] for c in completions)[killed.url] > 0


def test_replicas_serving_different_models_are_refused_before_anything_is_written(
    tmp_path: Path, data: Path
) -> None:
    with replicas(tmp_path, 0.0) as (one,), replicas(tmp_path / "b", 0.0,
                                                      model="other-model") as (other,):
        done = subprocess.run(run_args([one.url, other.url], data, tmp_path / "run", 1),
                              cwd=OUTSIDE_REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert f"--base-url {other.url} serves other-model" in line
    assert "every --base-url of a run must serve the same model" in line
    assert not (tmp_path / "run").exists()


def test_adding_a_replica_resumes_the_same_run_in_the_same_folder(
    tmp_path: Path, data: Path
) -> None:
    env = {**os.environ, "R1EVAL_GRADER_WORKERS": "0"}
    with replicas(tmp_path, 0.0, 0.0) as (one, added):
        def run(*urls: str) -> str:
            args = run_args(list(urls), data, tmp_path / "unused", 2)
            at = args.index("--run-dir")
            del args[at:at + 2]  # the default folder, named by what defines the run
            done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True,
                                  text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            return next(line for line in done.stderr.splitlines() if "results/" in line)

        first = run(one.url)
        asked = one.requests_now()
        assert run(one.url, added.url) == first  # the replica joins: the same folder
        assert run(added.url, one.url) == first  # in any order
        assert one.requests_now() == asked and added.requests_now() == 0  # nothing resent
    folders = list((tmp_path / "results").iterdir())
    assert len(folders) == 1


@pytest.mark.data
def test_every_replica_failing_stops_the_run_as_one_endpoint_failing_does(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Out of rotation one after the other, then still tried (with their own retries): the
    run stops after 20 failed requests in a row, exit 1, with today's words, and resumes."""
    def after_two(body: dict[str, Any], number: int) -> Fault | None:
        """Two answers (r1eval's probe of n among them), then 503 for good: fewer successes
        than the 30 - 20 that would let the run end before its 20 failures in a row."""
        return Fault(503) if number >= 2 else None

    questions = 30
    args = ["run", "--model", "test-model", "--tasks", "aime24", "--limit", str(questions),
            "--data-dir", str(data_dir), "--run-dir", str(tmp_path / "run"),
            "--grader-workers", "0", "--concurrency", "2", "--max-attempts", "1"]
    with OpenAIServer(faults=after_two) as one, OpenAIServer(faults=after_two) as two:
        both = [*args, "--base-url", one.base_url, "--base-url", two.base_url]
        assert main(both) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert "stopped after 20 failed requests in a row" in lines[-1]
        assert "run the same command again to resume" in lines[-1]
        assert sum("is out of rotation" in line for line in caplog.messages) == 2
        one.faults = two.faults = None  # the replicas are back
        assert main(both) == 0
    resumed = json.loads((tmp_path / "run" / "scores.json").read_text())["tasks"]["aime24"]
    assert resumed["complete"] and resumed["n_samples"] == questions


@pytest.mark.parametrize(("urls", "said"), [
    (["http://127.0.0.1:8000/v1@0"], "--base-url: http://127.0.0.1:8000/v1@0: the samples "
     "in flight after @ must be 1 to 4096"),
    (["http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1/@8"],
     "--base-url http://127.0.0.1:8000/v1 is given twice"),
    (["http://127.0.0.1:8000/v1", "ftp://x"], "not an http(s) URL: 'ftp://x'"),
])
def test_bad_replica_lists_are_one_line_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], urls: list[str], said: str
) -> None:
    flags = [flag for url in urls for flag in ("--base-url", url)]
    assert main(["run", "--model", "m", *flags, "--tasks", "tiny_math", "--task-dir",
                 str(TASK_DIR), "--run-dir", str(tmp_path / "run")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert said in line
    assert not (tmp_path / "run").exists()


def test_the_config_file_lists_replicas_and_a_list_of_one_is_one_endpoint(
    tmp_path: Path
) -> None:
    config = tmp_path / "r1eval.toml"
    config.write_text('model = "m"\ntasks = ["aime24"]\n'
                      'base_url = ["http://a:8000/v1@32", "http://b:8000/v1"]\n')
    assert build_config({}, config, {}).base_url == ["http://a:8000/v1@32", "http://b:8000/v1"]
    one = build_config({"base_url": ["http://a:8000/v1"]}, config, {})
    assert one.base_url == "http://a:8000/v1"  # run.json and folder name as before
    assert endpoint_specs(["http://A:8000/v1/@32", "http://b:8000/v1"]) == [
        EndpointSpec("http://a:8000/v1", 32), EndpointSpec("http://b:8000/v1", None)]


def test_a_replica_leaves_after_a_streak_of_endpoint_failures_and_returns_on_success() -> None:
    changes: list[bool] = []
    others_in = [True]
    rotation = Rotation("http://a/v1", others_in=lambda: others_in[0],
                        changed=lambda r: changes.append(r.in_rotation))
    for _ in range(5):  # 429s, malformed bodies: the request's trouble, not the endpoint's
        rotation.attempt_failed(endpoint_level=False)
    rotation.attempt_failed(endpoint_level=True)
    rotation.attempt_failed(endpoint_level=True)
    rotation.attempt_succeeded()  # the streak is broken
    rotation.attempt_failed(endpoint_level=True)
    rotation.attempt_failed(endpoint_level=True)
    assert rotation.in_rotation and changes == []
    rotation.attempt_failed(endpoint_level=True)
    assert not rotation.in_rotation and changes == [False]
    assert rotation.should_leave()
    others_in[0] = False  # the last one standing keeps its requests, as one endpoint would
    assert not rotation.should_leave()
    rotation.attempt_succeeded()
    assert rotation.in_rotation and changes == [False, True]


def test_near_the_end_of_the_queue_a_slow_replica_gets_no_more_work() -> None:
    """A 3x slower replica with a free slot takes work while the queue is long; at its end
    the last samples wait for the fast replica's slots, which finish them sooner."""
    pool = ReplicaPool("m", [EndpointSpec("http://127.0.0.1:9/v1", 2),
                             EndpointSpec("http://127.0.0.1:10/v1", 2)], None)
    assert asyncio.run(pool.resolve_slots(None, 256)) == 4
    fast, slow = pool._replicas  # the placement rule, no server
    fast.latency_s, slow.latency_s, fast.busy = 1.0, 3.0, 2  # the fast one is full
    assert pool._placeable() is slow  # the queue is not known: always
    left = [100]
    pool.follow_queue(lambda: left[0])
    assert pool._placeable() is slow  # a long queue: every slot works
    left[0] = 1
    assert pool._placeable() is None  # its end: wait for the fast one
    fast.busy = 1
    assert pool._placeable() is fast
    slow.latency_s = 1.1  # as fast as the other, within noise: it is used
    fast.busy = 2
    assert pool._placeable() is slow
