"""End to end: the ``r1eval`` command against a real OpenAI-compatible server on loopback.

The server answers every prompt of the eight real benchmarks with one of several scripted
behaviours (separate ``reasoning_content``, ``</think>`` only, full ``<think>`` tags with a decoy
answer inside the reasoning, a truncated trace that contains the right answer but never ends,
a wrong answer), chosen by a hash of the prompt and the choice index. The test knows which
behaviour each request got, so it knows the exact score the run must report.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from r1eval.cli import main
from r1eval.store.folder import LOG, read_log
from r1eval.task.data import load_task
from r1eval.task.registry import resolve

from openai_server import OpenAIServer, last_user_text

pytestmark = pytest.mark.data

LIMITS = {"aime24": 30, "math500": 24, "gpqa_diamond": 12, "mmlu": 40,
          "aime25": 30, "hmmt_feb25": 30, "amc23": 40, "mmlu_pro": 40}
SAMPLES = 2
ONE_RUN_LIMIT = 40  # the run of all eight tasks at once
CORRECT_BEHAVIOURS = {"reasoning_field", "close_only", "think_with_decoy"}
BEHAVIOURS = [*sorted(CORRECT_BEHAVIOURS), "truncated", "wrong"]


def behaviour(prompt: str, index: int) -> str:
    digest = hashlib.sha256(f"{prompt}|{index}".encode()).digest()
    return BEHAVIOURS[digest[0] % len(BEHAVIOURS)]


def wrong_answer(gold: str, letters: str) -> str:
    """Another option's letter (``letters``: the question's), or a wrong number for math."""
    if letters:
        return letters[(letters.index(gold) + 1) % len(letters)]
    return "98765.4321"


def final(answer: str, letters: str) -> str:
    if len(letters) > 4:  # MMLU-Pro asks for "The answer is (X)"
        return f"The answer is ({answer})"
    return f"Answer: {answer}" if letters else f"So the answer is $\\boxed{{{answer}}}$."


def respond(gold: str, letters: str, kind: str) -> dict[str, Any]:
    decoy = final(wrong_answer(gold, letters), letters)
    right = final(gold, letters)
    if kind == "reasoning_field":
        return {"reasoning_content": f"Maybe {decoy}", "content": right}
    if kind == "close_only":  # the chat template opened <think> in the prompt
        return {"content": f"Hmm. {decoy} No.\n</think>\n\n{right}"}
    if kind == "think_with_decoy":
        return {"content": f"<think>\nFirst guess: {decoy}\nWait.\n</think>\n{right}"}
    if kind == "truncated":  # the right answer appears, but inside an unterminated trace
        return {"content": f"<think>\nSo far {right} but let me check", "finish_reason": "length"}
    return {"content": f"<think>\nthinking\n</think>\n{decoy}"}


class ScriptedModel:
    """Knows the gold answer of every prompt of the run, and answers each in a scripted way."""

    def __init__(self, data_dir: Path) -> None:
        self.gold: dict[str, tuple[str, str, str]] = {}
        self.expected: dict[str, list[bool]] = {}
        for name, limit in LIMITS.items():
            task = resolve([name])[0]
            for sample in load_task(task, data_dir, max(limit, ONE_RUN_LIMIT)).samples:
                for repeat in range(SAMPLES):
                    prompt = task.prompt(sample, repeat)
                    text = prompt.messages[0]["content"]
                    letters = "ABCDEFGHIJ"[: len(sample.choices)]
                    self.gold[text] = (name, prompt.gold, letters)

    def __call__(self, body: dict[str, Any], index: int) -> dict[str, Any]:
        prompt = last_user_text(body)
        if prompt not in self.gold:  # a probe of the endpoint: not a question of the run
            return {"content": "Hello"}
        _, gold, letters = self.gold[prompt]
        return respond(gold, letters, behaviour(prompt, index))

    def expected_scores(self, served: list[dict[str, Any]], ignore_n: bool) -> dict[str, Any]:
        """What the run must report, from the requests the server actually answered."""
        outcomes: dict[str, list[str]] = {name: [] for name in LIMITS}
        for body in served:
            prompt = last_user_text(body)
            if prompt not in self.gold:
                continue
            name = self.gold[prompt][0]
            n = 1 if ignore_n else body.get("n", 1)
            outcomes[name] += [behaviour(prompt, index) for index in range(n)]
        return {
            name: {
                "pass@1": sum(k in CORRECT_BEHAVIOURS for k in kinds) / len(kinds),
                "truncated_rate": kinds.count("truncated") / len(kinds),
                "n_samples": len(kinds),
            }
            for name, kinds in outcomes.items()
        }


def run_args(
    server: OpenAIServer, data_dir: Path, run_dir: Path, task: str, limit: int, *extra: str
) -> list[str]:
    return [
        "run", "--model", server.model, "--base-url", server.base_url,
        "--tasks", task, "--samples", str(SAMPLES), "--limit", str(limit),
        "--data-dir", str(data_dir), "--run-dir", str(run_dir), "--grader-workers", "1",
        "--concurrency", "8", *extra,
    ]


@pytest.fixture()
def scripted(data_dir: Path) -> Iterator[ScriptedModel]:
    yield ScriptedModel(data_dir)



def read_scores(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "scores.json").read_text())["tasks"]


@pytest.mark.parametrize("ignore_n", [False, True], ids=["n-honoured", "n-ignored"])
def test_full_run_reports_exactly_the_scripted_scores(
    scripted: ScriptedModel, data_dir: Path, tmp_path: Path, ignore_n: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with OpenAIServer(responder=scripted, ignore_n=ignore_n) as server:
        for name, limit in LIMITS.items():
            assert main(run_args(server, data_dir, tmp_path / name, name, limit)) == 0
        served = server.requests
    expected = scripted.expected_scores(served, ignore_n)
    for name, limit in LIMITS.items():
        got = read_scores(tmp_path / name)[name]
        assert got["n_questions"] == limit and got["samples_per_question"] == SAMPLES
        assert got["n_samples"] == expected[name]["n_samples"] == limit * SAMPLES
        assert got["pass@1"] == pytest.approx(expected[name]["pass@1"])
        assert got["truncated_rate"] == pytest.approx(expected[name]["truncated_rate"])
        assert got["n_errors"] == 0
        assert got["ci_low"] <= got["pass@1"] <= got["ci_high"]
    # Math repeats went out as requests of n (up to 2, as room allowed: at most 8 samples in
    # flight); not to a server that ignores n.
    math_requests = [b for b in served if "boxed" in last_user_text(b)]
    sizes = {b.get("n", 1) for b in math_requests}
    assert sizes <= {1, 2} and (2 in sizes) is not ignore_n
    assert "mmlu" in capsys.readouterr().out  # the score table


def test_one_run_of_all_eight_tasks_scores_exactly_what_was_answered(
    scripted: ScriptedModel, data_dir: Path, tmp_path: Path
) -> None:
    assert len(LIMITS) == 8
    with OpenAIServer(responder=scripted) as server:
        tasks = ",".join(LIMITS)
        assert main(run_args(server, data_dir, tmp_path / "run", tasks, ONE_RUN_LIMIT)) == 0
        served = server.requests
    expected = scripted.expected_scores(served, ignore_n=False)
    scores = read_scores(tmp_path / "run")
    assert set(scores) == set(LIMITS)
    for name in LIMITS:
        got, questions = scores[name], min(ONE_RUN_LIMIT, resolve([name])[0].size)
        assert got["n_questions"] == questions
        assert got["n_samples"] == expected[name]["n_samples"] == questions * SAMPLES
        assert got["pass@1"] == pytest.approx(expected[name]["pass@1"])
        assert got["truncated_rate"] == pytest.approx(expected[name]["truncated_rate"])
        assert got["n_errors"] == 0
    assert set(scores["aime25"]["by"]["paper"]) == {"AIME I", "AIME II"}
    assert set(scores["amc23"]["by"]["contest"]) == {"AMC 12A", "AMC 12B"}
    assert set(scores["mmlu_pro"]["by"]["category"]) == {"business"}  # the first 40 questions
    assert sum(v["n_questions"] for v in scores["mmlu_pro"]["by"]["source"].values()) == 40


def test_by_subject_and_category_for_mmlu(
    scripted: ScriptedModel, data_dir: Path, tmp_path: Path
) -> None:
    with OpenAIServer(responder=scripted) as server:
        assert main(run_args(server, data_dir, tmp_path / "run", "mmlu", 40)) == 0
    mmlu = read_scores(tmp_path / "run")["mmlu"]
    assert set(mmlu["by"]["subject"]) == {"abstract_algebra"}  # the first 40 questions
    assert mmlu["by"]["category"]["STEM"]["n_questions"] == 40
    assert mmlu["by"]["category"]["STEM"]["pass@1"] == pytest.approx(mmlu["pass@1"])


def test_failed_requests_are_errors_and_a_rerun_retries_only_those(
    scripted: ScriptedModel, data_dir: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_dir = tmp_path / "run"

    def every_third(body: dict[str, Any], number: int) -> int | None:
        return 503 if number % 3 == 1 else None  # request 0 asks whether n is honoured

    with OpenAIServer(responder=scripted, faults=every_third) as server:
        args = run_args(server, data_dir, run_dir, "aime24", 30, "--max-attempts", "1")
        assert main(args) == 1
        failed = sum(b.get("n", 1) for i, b in enumerate(server.requests) if i % 3 == 1)
        first = read_scores(run_dir)["aime24"]
        assert first["n_errors"] == failed  # every sample a failed request asked for
        assert first["n_samples"] == 60 - first["n_errors"]
        assert "requests failed" in capsys.readouterr().err

        server.faults = None  # the endpoint recovers
        sent_before = len(server.requests)
        assert main(args) == 0
        again = server.requests[sent_before:]
        # only the failed samples, and the probe of n (a new session does not know the server)
        assert again[0]["max_tokens"] == 1
        assert sum(b.get("n", 1) for b in again[1:]) == failed
        second = read_scores(run_dir)["aime24"]
        assert second["n_errors"] == 0 and second["n_samples"] == 60

        sent_before = len(server.requests)
        assert main(args) == 0  # a third run has nothing left to do
        assert len(server.requests) == sent_before
    assert read_scores(run_dir)["aime24"] == second


def test_every_sample_is_logged_once_with_its_grade(
    scripted: ScriptedModel, data_dir: Path, tmp_path: Path
) -> None:
    with OpenAIServer(responder=scripted) as server:
        assert main(run_args(server, data_dir, tmp_path / "run", "gpqa_diamond", 12)) == 0
    records = list(read_log(tmp_path / "run" / LOG))
    completions = [r for r in records if r["type"] == "completion"]
    grades = {r["key"]: r for r in records if r["type"] == "grade"}
    assert len(completions) == len({r["key"] for r in completions}) == 24
    assert set(grades) == {r["key"] for r in completions}
    for record in completions:
        assert sorted(record["prompt_metadata"]["option_order"]) == [0, 1, 2, 3]
        assert record["finish_reason"] in {"stop", "length"}
        assert record["latency_s"] >= 0
        grade = grades[record["key"]]
        if record["finish_reason"] == "length":
            assert grade["failure"] == "truncated" and grade["extracted"] is None
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    assert manifest["tasks"]["gpqa_diamond"]["source"]["kind"] == "local"
    assert manifest["identity"]["endpoint"]["model"] == server.model


def test_load_run_gives_one_row_per_sample_with_its_verdict(
    scripted: ScriptedModel, data_dir: Path, tmp_path: Path
) -> None:
    import r1eval

    with OpenAIServer(responder=scripted) as server:
        assert main(run_args(server, data_dir, tmp_path / "run", "math500", 24)) == 0
        served = server.requests
    run = r1eval.load_run(tmp_path / "run")
    assert len(run.samples) == 48 and run.model == server.model
    kinds = [behaviour(last_user_text(b), i) for b in served for i in range(b.get("n", 1))
             if last_user_text(b) in scripted.gold]  # not the probe of n
    verdicts = run.samples["verdict"].value_counts().to_dict()
    assert verdicts.get("right", 0) == sum(k in CORRECT_BEHAVIOURS for k in kinds)
    assert verdicts.get("truncated", 0) == kinds.count("truncated")
    assert verdicts.get("wrong", 0) == kinds.count("wrong")
    row = run.scores.set_index("task").loc["math500"]
    assert row["pass@1"] == pytest.approx(verdicts.get("right", 0) / 48)
