"""One definition of a sample's status, of a question's outcomes and of K (issue 17, item 2).

One run holds every status: right, wrong, no answer, truncated (outcomes), failed requests and
a response never graded (not outcomes). Scoring, the run loader, the reproduction check, the
paired regression, ``power`` and the report's views must all read it the same way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from r1eval.claims.measure import task_views
from r1eval.cli import main
from r1eval.regress.paired import Settings, paired_regression
from r1eval.regress.pairing import pair_task, question_records
from r1eval.reports.views import lengths
from r1eval.scoring.design import run_outcomes, run_samples_per_question
from r1eval.store.loading import load_run
from r1eval.store.logged import logged_completion, logged_grade
from r1eval.store.outcomes import (
    NOT_OUTCOMES,
    OUTCOMES,
    STATUSES,
    is_outcome,
    outcomes_by_question,
    question_outcomes,
    sample_status,
    samples_per_question,
)
from r1eval.types import Completion, WorkItem

from runs_for_tests import answer, build_run

TESTS = Path(__file__).resolve().parent
TASK_DIR, DATA_DIR = TESTS / "task_files", TESTS / "task_data"
K = 4

#: (question, repeat) -> status; repeat 3 of every question failed, everything else is right.
STATUS = {("q1", 0): "right", ("q1", 1): "wrong", ("q1", 2): "truncated",
          ("q2", 0): "no_answer", ("q3", 1): "ungraded"}


def _expected(question: str, repeat: int) -> str:
    return "error" if repeat == K - 1 else STATUS.get((question, repeat), "right")


def _respond(item: WorkItem) -> Completion | None:
    status = _expected(item.sample.id, item.repeat)
    if status == "error":
        return None
    if status == "truncated":
        return answer("<think>still thinking", finish_reason="length", tokens=4000)
    if status == "no_answer":
        return answer("<think>Hmm.</think>I cannot tell.")
    value = "\\frac{9}{8}" if status == "wrong" else item.prompt.gold
    return answer(f"<think>Let $x=1$.</think>So $\\boxed{{{value}}}$.")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(tmp_path_factory.mktemp("outcomes") / "run", DATA_DIR, "tiny_math",
                     _respond, samples=K, task_dir=TASK_DIR,
                     graded=lambda item: _expected(item.sample.id, item.repeat) != "ungraded")


def _expected_outcomes() -> dict[str, tuple[bool, ...]]:
    found: dict[str, list[bool]] = {}
    for question in (f"q{i}" for i in range(1, 9)):
        for repeat in range(K):
            status = _expected(question, repeat)
            if status in OUTCOMES:
                found.setdefault(question, []).append(status == "right")
    return {question: tuple(flags) for question, flags in found.items()}


@pytest.mark.parametrize(("grade", "completion", "status"), [
    (None, None, "error"),
    (None, {"finish_reason": "stop"}, "ungraded"),
    ({"correct": True}, {"finish_reason": "length"}, "right"),
    ({"correct": False, "failure": "wrong"}, {"finish_reason": "length"}, "truncated"),
    ({"correct": False, "failure": "wrong"}, {"finish_reason": "stop"}, "wrong"),
    ({"correct": False, "failure": "no_answer"}, {"finish_reason": "stop"}, "no_answer"),
    ({"correct": False, "failure": "grader_timeout"}, {"finish_reason": "stop"}, "no_answer"),
])
def test_a_samples_status_from_its_records(
    grade: dict[str, object] | None, completion: dict[str, object] | None, status: str
) -> None:
    request = {"key": "k", "task": "t", "sample_id": "q", "repeat": 0}
    logged = None if completion is None else logged_completion({**request, **completion})
    judged = None if grade is None else logged_grade({**request, **grade})
    assert sample_status(judged, logged) == status
    assert is_outcome(status) == (status not in NOT_OUTCOMES)


def test_outcomes_are_the_graded_statuses_in_order() -> None:
    assert set(STATUSES) == set(OUTCOMES) | set(NOT_OUTCOMES)
    assert not set(OUTCOMES) & set(NOT_OUTCOMES)
    assert question_outcomes(["wrong", "error", "right", "ungraded", "truncated"]) == (
        False, True, False)
    assert samples_per_question([2, 0, 1, 2]) == 3 and samples_per_question([]) == 0


def test_the_loader_and_scoring_count_the_same_outcomes(run_dir: Path) -> None:
    run = load_run(run_dir)
    shown = {(q, r): s for q, r, s in zip(run.samples["sample_id"], run.samples["repeat"],
                                          run.samples["verdict"], strict=True)}
    assert shown == {(f"q{i}", r): _expected(f"q{i}", r) for i in range(1, 9) for r in range(K)}
    score = run.scores.iloc[0]
    graded = sum(s in OUTCOMES for s in shown.values())
    assert score["n_samples"] == graded == 23
    assert score["n_errors"] == 8 and score["n_not_attempted"] == 1  # the ungraded response
    assert score["samples_per_question"] == K


def test_every_reader_finds_the_same_outcomes_per_question(run_dir: Path) -> None:
    run = load_run(run_dir)
    expected = _expected_outcomes()
    assert outcomes_by_question(run.samples, "tiny_math") == expected
    assert {q: tuple(o) for q, o in task_views(run)[0].outcomes.items()} == expected  # compare
    _, records = question_records(run, "tiny_math")  # regress
    assert {q: r.outcomes for q, r in records.items()} == expected
    assert run_outcomes(run, "tiny_math") == list(expected.values())  # power
    bins = lengths(run, "tiny_math", None)  # the report's lengths view
    assert bins is not None
    assert sum(sum(b["counts"].values()) for b in bins["bins"]) == 23


def test_a_failed_last_repeat_does_not_lower_k(run_dir: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Every question's last repeat failed: K is still the run's 4 (it was 3 in regress and
    power, which took the most graded samples of a question for K)."""
    run = load_run(run_dir)
    assert pair_task(run, run, "tiny_math").samples == (K, K)
    assert run_samples_per_question(run, "tiny_math") == K
    comparison = paired_regression(run, run, Settings())
    assert comparison.tasks[0].samples == (K, K)
    assert main(["power", "--task", "tiny_math", "--task-dir", str(TASK_DIR), "--delta", "10",
                 "--from", str(run_dir)]) == 0
    assert f"smallest detectable drop at K = {K}:" in capsys.readouterr().out
