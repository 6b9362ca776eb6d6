"""Soak: thousands of requests to an endpoint that fails one in five, in every way it can.

The run must end with every sample graded exactly once, the server's own count of delivered
completions equal to the number of samples (nothing asked for again once received), and the
very scores of a run against the same endpoint without faults.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from r1eval.backends.openai_compat import OpenAICompatBackend
from r1eval.run.config import RunConfig
from r1eval.run.evaluate import execute, prepare
from r1eval.store.folder import LOG, read_log

from openai_server import FAULT_KINDS, OpenAIServer, RandomFaults, last_user_text, prompt_answer

pytestmark = pytest.mark.slow

QUESTIONS = 2000  # one request each (its K repeats share the prompt: n=K)
K = 2
FAULT_RATE = 0.2
SEED = 20240229
#: A client timeout that normal answers never reach, even on a loaded 2-core machine; slow
#: faults take far longer (the server drops them when the client gives up).
TIMEOUT_S = 2.0

TASK_FILE = '''
"""Synthetic multiple-choice questions whose prompts script the test server's answer."""
from r1eval.task.data import read_jsonl
from r1eval.grading.choice_answers import grade_choice
from r1eval.task.definition import HubSource, LocalSource, Task
from r1eval.types import Prompt, Sample


def to_sample(record):
    return Sample(id=str(record["id"]), input=record["question"], target=record["gold"])


def prompt(sample, repeat):
    return Prompt(messages=({"role": "user", "content": sample.input},), gold=sample.target)


TASK = Task(
    name="soak", version="1", description="synthetic", hub=HubSource("none", "test", "none"),
    local=LocalSource("soak/questions.jsonl", read_jsonl), size=0, prompt_template="{q}",
    to_sample=to_sample, prompt=prompt, grader=grade_choice, r1_samples=1, reference="none",
)
'''


def write_task(root: Path) -> None:
    """The task file and its questions: about two in three scripted to be answered right."""
    (root / "tasks").mkdir()
    (root / "tasks" / "soak.py").write_text(TASK_FILE)
    (root / "data" / "soak").mkdir(parents=True)
    lines = []
    for number in range(QUESTIONS):
        gold = "ABCD"[number % 4]
        answered = gold if number % 3 else "ABCD"[(number + 1) % 4]
        question = f"Question {number}. [[answer: {answered}]]"
        lines.append(json.dumps({"id": number, "question": question, "gold": gold}))
    (root / "data" / "soak" / "questions.jsonl").write_text("\n".join(lines) + "\n")


def respond(body: dict[str, Any], index: int) -> dict[str, Any]:
    prompt = last_user_text(body)
    answer = f"Answer: {prompt_answer(prompt)}"
    return {"reasoning_content": f"Choice {index}: thinking.", "content": answer}


def run(root: Path, name: str, server: OpenAIServer) -> dict[str, Any]:
    config = RunConfig(
        model=server.model, base_url=server.base_url, tasks=["soak"], samples=K,
        task_dir=root / "tasks", data_dir=root / "data", run_dir=root / name,
        concurrency=32, grader_workers=0, max_attempts=12, timeout=TIMEOUT_S,
    )
    prepared = prepare(config, {}, key_explicit=False)
    backend = OpenAICompatBackend(
        server.model, server.base_url, None, timeout_s=TIMEOUT_S, max_attempts=12,
        max_connections=32, backoff_initial_s=0.001, backoff_max_s=0.01, retry_after_max_s=0.01,
    )
    return execute(prepared, backend=backend).tasks["soak"].record()


def not_the_probe(body: dict[str, Any]) -> bool:
    """Not the request for two one-token choices that finds out whether the server honours n
    (``OpenAICompatBackend.detect_n``)."""
    return bool(body.get("max_tokens") != 1)


def without_token_counts(scores: dict[str, Any]) -> dict[str, Any]:
    """Scores but for token counts and speed: a top-up request sends the prompt again, so
    the prompt tokens billed rightly grow when a server returns fewer choices than asked;
    how fast and how streamed the samples came depends on the faults."""
    return {key: value for key, value in scores.items()
            if "token" not in key and key != "speed"}


def test_a_fifth_of_requests_failing_changes_nothing(tmp_path: Path) -> None:
    write_task(tmp_path)
    faults = RandomFaults(rate=FAULT_RATE, seed=SEED, slow_s=60.0)
    started = time.monotonic()
    with OpenAIServer(responder=respond, faults=faults) as server:
        faulty = run(tmp_path, "faulty", server)
        served, received = server.completions_served_to(not_the_probe), len(server.requests)
    elapsed = time.monotonic() - started
    assert elapsed < 120  # bounded: about 10 s on a 2-core machine
    with OpenAIServer(responder=respond) as server:
        clean = run(tmp_path, "clean", server)
        assert server.completions_served_to(not_the_probe) == QUESTIONS * K

    records = list(read_log(tmp_path / "faulty" / LOG))
    completions = Counter(r["key"] for r in records if r["type"] == "completion")
    grades = Counter(r["key"] for r in records if r["type"] == "grade")
    assert len(completions) == QUESTIONS * K and set(completions.values()) == {1}
    assert grades == completions  # every sample graded, and graded once
    assert not [r for r in records if r["type"] == "error"]
    assert served == QUESTIONS * K  # nothing asked for again once it had been delivered

    injected = sum(faults.injected.values())
    assert received - injected >= QUESTIONS  # at least 2,000 requests were answered
    assert set(faults.injected) == set(FAULT_KINDS)
    assert 0.15 < injected / received < 0.25
    assert without_token_counts(faulty) == without_token_counts(clean)
    assert faulty["complete"] and faulty["n_samples"] == QUESTIONS * K
    assert faulty["tokens"]["completion"] == clean["tokens"]["completion"]
    print(f"\nsoak: {received} requests, {injected} faults injected "
          f"({dict(sorted(faults.injected.items()))}), {elapsed:.1f} s")
