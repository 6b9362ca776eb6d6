"""Runs killed with SIGKILL at random points, then resumed: nothing lost, nothing sent or graded
twice, the scores of an uninterrupted run. Also: torn last lines, and two processes on one folder.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from r1eval.cli import main
from r1eval.store.folder import LOG, read_log
from r1eval.task.data import load_task
from r1eval.task.registry import resolve

from conftest import OUTSIDE_REPO, r1eval_process_args
from openai_server import OpenAIServer, Responder, last_user_text, prompt_answer

pytestmark = [pytest.mark.data, pytest.mark.slow]

PLANNED = 30 + 40  # aime24 (30 questions) and the first 40 of math500, one sample each
RECORDS = 2 * PLANNED  # a completion and a grade per sample
SEEDS = [11, 23, 37]


def args_for(server: OpenAIServer, data_dir: Path, run_dir: Path, *extra: str) -> list[str]:
    """The command; grading inline (no worker process to start) unless ``extra`` says so.
    Grading settings are not part of a run's identity: a run may resume with others."""
    return ["run", "--model", server.model, "--base-url", server.base_url,
            "--tasks", "aime24,math500", "--limit", "40", "--data-dir", str(data_dir),
            "--run-dir", str(run_dir), "--concurrency", "4", "--grader-workers", "0", *extra]


def records_of(run_dir: Path, kind: str | None = None) -> list[dict[str, Any]]:
    return [r for r in read_log(run_dir / LOG) if kind is None or r["type"] == kind]


def count_lines(run_dir: Path) -> tuple[int, int]:
    """(completions, grades) logged so far, read from the raw bytes as a crash would leave them."""
    path = run_dir / LOG
    lines = path.read_bytes().splitlines() if path.exists() else []
    return (sum(b'"type":"completion"' in line for line in lines),
            sum(b'"type":"grade"' in line for line in lines))


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name: state, parent pid, ..."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(") ")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return []


def children_of(pid: int) -> set[int]:
    pids = (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())
    return {child for child in pids if _stat(child)[1:2] == [str(pid)]}


def wait_gone(pids: set[int], timeout_s: float = 15.0) -> set[int]:
    """The pids still running after ``timeout_s`` (zombies count as gone)."""
    deadline = time.monotonic() + timeout_s
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {pid for pid in alive if _stat(pid)[:1] not in ([], ["Z"])}
        time.sleep(0.05)
    return alive


@dataclass(frozen=True)
class Kill:
    completions: int
    grades: int


def kill_when(args: list[str], run_dir: Path, ready: Any, jitter_s: float = 0.0) -> Kill:
    """Start a run, SIGKILL it once ``ready(completions, grades)`` holds (then ``jitter_s``),
    and check that its child processes (grading workers) die with it."""
    process = subprocess.Popen(r1eval_process_args(*args), cwd=OUTSIDE_REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while not ready(*count_lines(run_dir)):
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(jitter_s)
    workers = children_of(process.pid)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not wait_gone(workers), "grading workers outlived the killed run"
    return Kill(*count_lines(run_dir))


def scores(run_dir: Path) -> dict[str, Any]:
    tasks: dict[str, Any] = json.loads((run_dir / "scores.json").read_text())["tasks"]
    return tasks


def assert_each_sample_once(run_dir: Path) -> None:
    completions = Counter(r["key"] for r in records_of(run_dir, "completion"))
    grades = Counter(r["key"] for r in records_of(run_dir, "grade"))
    assert len(completions) == PLANNED and set(completions.values()) == {1}
    assert grades == completions  # every sample graded, and graded once
    assert not records_of(run_dir, "error")


@pytest.fixture(scope="module")
def responder(data_dir: Path) -> Responder:
    """Answers two questions in three right (deterministic in the prompt), so that scores
    are neither 0 nor 1 and a sample lost, doubled or misgraded would show."""
    golds = {}
    for name in ("aime24", "math500"):
        task = resolve([name])[0]
        for sample in load_task(task, data_dir, 40).samples:
            prompt = task.prompt(sample, 0)
            golds[prompt.messages[0]["content"]] = prompt.gold

    def answer(body: dict[str, Any], index: int) -> dict[str, Any]:
        prompt = last_user_text(body)
        right = int(prompt_answer(prompt)) % 3 != 0
        return {"content": f"<think>\nok\n</think>\n\\boxed{{{golds[prompt] if right else -1}}}"}

    return answer


@pytest.fixture(scope="module")
def uninterrupted(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path, responder: Responder
) -> dict[str, Any]:
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    with OpenAIServer(responder=responder) as server:
        assert main(args_for(server, data_dir, run_dir)) == 0
    result = scores(run_dir)
    assert 0 < result["aime24"]["pass@1"] < 1 and 0 < result["math500"]["pass@1"] < 1
    return result


@pytest.mark.parametrize("seed", SEEDS)
def test_killed_twice_at_random_points_then_resumed(
    tmp_path: Path, data_dir: Path, responder: Responder, uninterrupted: dict[str, Any],
    seed: int,
) -> None:
    """The first kill strikes while responses arrive, the second (in the resumed run) anywhere
    before the end; each a random moment after a random record. Grading runs inline, at once,
    so that kills land between a response and its grade too."""
    rng = random.Random(seed)
    run_dir = tmp_path / "run"
    with OpenAIServer(responder=responder, delay_s=0.03) as server:
        args = args_for(server, data_dir, run_dir)
        first = rng.randint(1, PLANNED - 10)
        kill_when(args, run_dir, lambda c, g: c >= first, rng.uniform(0, 0.05))
        done = sum(count_lines(run_dir))
        second = rng.randint(done + 1, done + (RECORDS - done) * 2 // 3)
        kill_when(args, run_dir, lambda c, g: c + g >= second, rng.uniform(0, 0.05))
        logged = len(records_of(run_dir, "completion"))  # a torn line is not a completion
        sent_before = len(server.requests)
        assert main(args) == 0
        assert len(server.requests) - sent_before == PLANNED - logged  # only what was missing
    assert_each_sample_once(run_dir)
    assert scores(run_dir) == uninterrupted


def test_killed_while_grading_lags_resumes_by_grading_not_resending(
    tmp_path: Path, data_dir: Path, responder: Responder, uninterrupted: dict[str, Any]
) -> None:
    """Killed with responses logged but not graded (its grading worker still starting): the
    worker dies with it, and the resumed run grades them without asking for them again."""
    run_dir = tmp_path / "run"
    with OpenAIServer(responder=responder) as server:
        args = args_for(server, data_dir, run_dir)
        worker = [*args, "--grader-workers", "1", "--concurrency", "16"]
        killed = kill_when(worker, run_dir, lambda c, g: c - g >= 5 and c >= 10)
        ungraded = killed.completions - killed.grades
        assert ungraded > 0
        sent_before = len(server.requests)
        assert main(args) == 0
        assert len(server.requests) - sent_before == PLANNED - killed.completions
    assert_each_sample_once(run_dir)
    assert scores(run_dir) == uninterrupted


def take_out(log: Path, key: str) -> list[dict[str, Any]]:
    """Remove the records of ``key`` from the log, as if never written; return them."""
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(line for line in lines if json.loads(line)["key"] != key))
    return [json.loads(line) for line in lines if json.loads(line)["key"] == key]


def append(log: Path, record: dict[str, Any], end: bytes = b"\n") -> None:
    with log.open("ab") as handle:
        handle.write(json.dumps(record, separators=(",", ":")).encode() + end)


@pytest.mark.parametrize("torn", ["completion", "grade"])
def test_a_torn_last_line_is_cut_never_read_as_a_record(
    tmp_path: Path, data_dir: Path, responder: Responder, uninterrupted: dict[str, Any],
    torn: str,
) -> None:
    """The record a process died writing: complete JSON, but no newline after it. It does not
    count: a torn completion is asked for again, a torn grade is graded again."""
    run_dir = tmp_path / "run"
    with OpenAIServer(responder=responder) as server:
        args = args_for(server, data_dir, run_dir)
        assert main(args) == 0
        log = run_dir / LOG
        completion, grade = take_out(log, records_of(run_dir, "completion")[-1]["key"])
        if torn == "completion":  # a wrong answer, should it ever be graded
            append(log, {**completion, "text": "\\boxed{-12345}"}, end=b"")
        else:  # the response is logged; its grade, claiming the opposite, is torn
            append(log, completion)
            append(log, {**grade, "correct": not grade["correct"]}, end=b"")
        sent_before = len(server.requests)
        assert main(args) == 0
        assert len(server.requests) - sent_before == (1 if torn == "completion" else 0)
    assert log.read_bytes().endswith(b"\n")
    assert_each_sample_once(run_dir)
    assert scores(run_dir) == uninterrupted


def test_a_second_process_on_the_same_folder_is_refused_and_changes_nothing(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    with OpenAIServer(delay_s=0.25) as server:
        first_args = ["run", "--model", server.model, "--base-url", server.base_url,
                      "--tasks", "aime24", "--limit", "12", "--data-dir", str(data_dir),
                      "--run-dir", str(run_dir), "--concurrency", "1", "--grader-workers", "0"]
        first = subprocess.Popen(r1eval_process_args(*first_args), cwd=OUTSIDE_REPO,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not count_lines(run_dir)[0]:  # the first process holds the folder and works
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        manifest = (run_dir / "run.json").read_bytes()
        assert main(first_args) == 2
        assert first.wait(timeout=60) == 0
        assert len(server.requests) == 12  # the second process sent nothing
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("r1eval: error: another r1eval process is working")
    assert (run_dir / "run.json").read_bytes() == manifest
    completions = Counter(r["key"] for r in records_of(run_dir, "completion"))
    assert len(completions) == 12 and set(completions.values()) == {1}
