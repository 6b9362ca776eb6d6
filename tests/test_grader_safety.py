"""Pathological responses neither hang nor crash a run: each sample's grading is bounded in
time, and one that cannot be read fails with no answer and the reason on its grade."""

from __future__ import annotations

import gc
import json
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from r1eval.cli import main
from r1eval.grading import math_answers
from r1eval.grading.choice_answers import grade_choice
from r1eval.grading.final_answer import split_response
from r1eval.grading.math_answers import grade_math
from r1eval.store.folder import LOG, read_log
from r1eval.task.data import load_task
from r1eval.task.registry import resolve
from r1eval.types import Completion

from openai_server import OpenAIServer, last_user_text

HUGE = "so we think about it some more and then " * 2_500  # 100k characters
NESTED = "\\boxed{" + "\\frac{1}{" * 2_000 + "2" + "}" * 2_001
TOWER = "\\boxed{10^{10^{9}}}"
MANY_BOXES = " ".join(f"\\boxed{{{n}}}" for n in range(5_000))


@pytest.fixture()
def quick_math_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    """math-verify's own per-step timeout at 1 s instead of 5, to keep the tests short.

    Garbage left by earlier tests is collected first: an alarm that goes off while the
    collector runs a callback (asyncio's WeakSet of tasks) is swallowed by Python, and the
    parse runs on. In a run, the grading worker's wall-clock kill covers that case
    (``test_grader_pool``)."""
    gc.collect()
    monkeypatch.setattr(math_answers, "TIMEOUT_S", 1)


@pytest.mark.parametrize(
    ("answer", "failure", "why"),
    [
        (HUGE, "no_answer", "no answer found"),
        (HUGE + "\\boxed{", "no_answer", "no answer found"),  # unbalanced
        # each tried again with 3x the limit before it is given up
        (NESTED, "grader_timeout", "gave up after 1 s, then 3 s (timeout during parsing)"),
        (TOWER, "grader_timeout", "gave up after 1 s, then 3 s (timeout during comparison)"),
    ],
    ids=["100k-characters", "unbalanced-box", "deeply-nested", "10^10^9"],
)
@pytest.mark.usefixtures("quick_math_verify")
def test_math_answers_that_cannot_be_read_fail_quickly_with_the_reason(
    answer: str, failure: str, why: str
) -> None:
    grade = grade_math(answer, "42")
    assert signal.alarm(0) == 0  # no alarm left pending to go off later
    assert (grade.correct, grade.extracted, grade.failure) == (False, None, failure)
    assert why in grade.explanation


def test_thousands_of_boxes_take_the_last_at_once() -> None:
    grade = grade_math(MANY_BOXES, "4999")
    assert (grade.correct, grade.extracted, grade.method) == (True, "4999", "boxed")


@pytest.mark.parametrize(
    "answer", [HUGE, "Answer: " * 20_000, "(" * 50_000 + "A", "\\boxed{" * 20_000 + "C"]
)
def test_choice_answers_are_read_in_linear_time(answer: str) -> None:
    grade = grade_choice(answer, "B")
    assert grade.correct is False


def test_a_megabyte_of_reasoning_is_split_at_once() -> None:
    text = "<think>\n" + "hmm </thinking> <think> " * 50_000 + "\n</think>\nAnswer: B"
    final = split_response(Completion(text=text, reasoning=None, finish_reason="stop"))
    assert final.answer == "Answer: B"


# --- a whole run --------------------------------------------------------------------------

GRADE_TIMEOUT_S = 2.0
#: How each of the first questions is answered (the others: right, boxed), and the grade due.
PATHOLOGICAL: list[tuple[str, Callable[[str], str], str | None]] = [
    ("100k-characters", lambda gold: HUGE, "no_answer"),
    ("thousands-of-boxes", lambda gold: MANY_BOXES + f" \\boxed{{{gold}}}", None),
    ("deeply-nested", lambda gold: NESTED, "grader_timeout"),
    ("10^10^9", lambda gold: TOWER, "grader_timeout"),
    ("lone-surrogate", lambda gold: f"caf\udce9 \ud800 \\boxed{{{gold}}}", None),
    ("a-megabyte", lambda gold: "x " * 500_000 + f"\\boxed{{{gold}}}", None),
]


@pytest.mark.data
def test_a_run_with_pathological_responses_completes_in_bounded_time(
    tmp_path: Path, data_dir: Path
) -> None:
    task = resolve(["aime24"])[0]
    samples = load_task(task, data_dir, 10).samples
    plan = {task.prompt(s, 0).messages[0]["content"]: (n, task.prompt(s, 0).gold)
            for n, s in enumerate(samples)}

    def respond(body: dict[str, Any], index: int) -> dict[str, Any]:
        number, gold = plan[last_user_text(body)]
        make = PATHOLOGICAL[number][1] if number < len(PATHOLOGICAL) else None
        content = make(gold) if make else f"\\boxed{{{gold}}}"
        return {"reasoning_content": "...", "content": content}

    run_dir = tmp_path / "run"
    with OpenAIServer(responder=respond) as server:
        args = ["run", "--model", server.model, "--base-url", server.base_url, "--tasks",
                "aime24", "--limit", "10", "--data-dir", str(data_dir), "--run-dir", str(run_dir),
                "--grader-workers", "2", "--grade-timeout", str(GRADE_TIMEOUT_S)]
        assert main(args) == 0

    records = list(read_log(run_dir / LOG))
    grades = {r["sample_id"]: r for r in records if r["type"] == "grade"}
    assert Counter(r["type"] for r in records) == {"completion": 10, "grade": 10}
    for number, sample in enumerate(samples):
        grade = grades[sample.id]
        due = PATHOLOGICAL[number][2] if number < len(PATHOLOGICAL) else None
        assert grade["failure"] == due, PATHOLOGICAL[min(number, len(PATHOLOGICAL) - 1)][0]
        assert grade["correct"] == (due is None)
        if due is not None:
            assert grade["extracted"] is None and grade["explanation"]
    texts = [r["text"] for r in records if r["type"] == "completion"]
    assert any("caf\udce9 \ud800" in text for text in texts)  # logged as received
    timeouts = [g for g in grades.values() if g["failure"] == "grader_timeout"]
    assert all(f"more than {GRADE_TIMEOUT_S:g} s" in g["explanation"] for g in timeouts)
    scores = json.loads((run_dir / "scores.json").read_text())["tasks"]["aime24"]
    assert scores["n_samples"] == 10 and scores["pass@1"] == pytest.approx(0.7)
    assert scores["no_answer_rate"] == pytest.approx(0.3)
