"""A run killed with SIGKILL mid-way, then resumed: nothing lost, nothing sent or graded twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from r1eval.cli import main
from r1eval.store import LOG, read_log

from conftest import OUTSIDE_REPO, r1eval_process_args
from openai_server import OpenAIServer

pytestmark = [pytest.mark.data, pytest.mark.slow]

PLANNED = 30 + 40  # aime24 (30 questions) and the first 40 of math500, one sample each


def args_for(server: OpenAIServer, data_dir: Path, run_dir: Path) -> list[str]:
    return ["run", "--model", server.model, "--base-url", server.base_url,
            "--tasks", "aime24,math500", "--limit", "40", "--data-dir", str(data_dir),
            "--run-dir", str(run_dir), "--concurrency", "4", "--grader-workers", "1"]


def count_records(run_dir: Path, kind: str) -> int:
    path = run_dir / LOG
    if not path.exists():
        return 0
    return sum(1 for line in path.read_bytes().splitlines() if f'"type":"{kind}"'.encode() in line)


def kill_after(args: list[str], run_dir: Path, completions: int) -> None:
    process = subprocess.Popen(r1eval_process_args(*args), cwd=OUTSIDE_REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while count_records(run_dir, "completion") < completions:
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def scores(run_dir: Path) -> dict[str, Any]:
    tasks = json.loads((run_dir / "scores.json").read_text())["tasks"]
    return {name: (t["pass@1"], t["n_samples"], t["n_errors"]) for name, t in tasks.items()}


@pytest.mark.parametrize("kill_at", [5, 35])
def test_sigkill_then_resume_loses_and_repeats_nothing(
    tmp_path: Path, data_dir: Path, kill_at: int
) -> None:
    with OpenAIServer(delay_s=0.05) as server:
        killed = tmp_path / "killed"
        kill_after(args_for(server, data_dir, killed), killed, kill_at)
        logged = count_records(killed, "completion")
        assert kill_at <= logged < PLANNED
        sent_before = len(server.requests)

        assert main(args_for(server, data_dir, killed)) == 0
        assert len(server.requests) - sent_before == PLANNED - logged  # only what was missing

        clean = tmp_path / "clean"
        assert main(args_for(server, data_dir, clean)) == 0

    records = list(read_log(killed / LOG))
    completions = Counter(r["key"] for r in records if r["type"] == "completion")
    grades = Counter(r["key"] for r in records if r["type"] == "grade")
    assert len(completions) == PLANNED and set(completions.values()) == {1}
    assert grades == completions  # every sample graded exactly once
    assert scores(killed) == scores(clean)
