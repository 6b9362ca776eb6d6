"""Per-task scores from a plan and a log, against values computed by hand."""

from __future__ import annotations

from typing import Any

import pytest

from r1eval.run.plan import WorkItem
from r1eval.scoring.scores import score_task, tally
from r1eval.store.folder import LogState
from r1eval.types import Prompt, Sample


def item(question: str, repeat: int, metadata: dict[str, Any] | None = None) -> WorkItem:
    sample = Sample(id=question, input="?", target="x", metadata=metadata or {})
    return WorkItem("t", sample, repeat, Prompt(messages=(), gold="x"), f"{question}#{repeat}")


def log(state: LogState, it: WorkItem, correct: bool | None, *, canonical: str | None = "a",
        finish: str = "stop", usage: dict[str, int] | None = None,
        order: list[int] | None = None) -> None:
    """Log a completion and its grade (correct None: a failed request instead)."""
    request = {"key": it.key, "task": it.task, "sample_id": it.sample.id, "repeat": it.repeat}
    if correct is None:
        state.add({"type": "error", **request, "message": "HTTP 503"})
        return
    state.add({"type": "completion", **request, "finish_reason": finish,
               "usage": usage or {}, "prompt_metadata": {"option_order": order} if order else {}})
    state.add({"type": "grade", "key": it.key, "correct": correct, "canonical": canonical,
               "extracted": canonical, "method": "boxed" if canonical else None})


def test_scores_by_hand() -> None:
    # q1: 2 of 2 right; q2: 1 of 2 (one truncated, wrong, no answer); q3: 1 right, 1 failed.
    items = [item(q, r) for q in ("q1", "q2", "q3") for r in range(2)]
    state = LogState()
    log(state, items[0], True, usage={"prompt_tokens": 10, "completion_tokens": 40,
                                       "shared_by": 2})
    log(state, items[1], True, usage={"prompt_tokens": 10, "completion_tokens": 40,
                                       "shared_by": 2})
    log(state, items[2], True)
    log(state, items[3], False, canonical=None, finish="length")
    log(state, items[4], True)
    log(state, items[5], None)
    s = score_task(tally(items, state)["t"])
    # pass@1 = mean over questions (1 + 1/2 + 1) / 3, the failed request left out
    assert s["pass@1"] == pytest.approx(2.5 / 3)
    assert (s["n_questions"], s["n_samples"], s["n_errors"]) == (3, 5, 1)
    assert s["complete"] is False
    assert s["truncated_rate"] == pytest.approx(1 / 5)
    assert s["no_answer_rate"] == pytest.approx(1 / 5)
    assert s["accuracy_completed"] == pytest.approx(4 / 4)
    # pass@2 and cons@2 over every question with the samples it has: pass@2: q1 1, q2
    # 1 - C(1,2)/C(2,2) = 1, q3 (one sample, right) pass@1 = 1 -> 1.0; cons@2: q1 "a" right,
    # q2 "a" against "no answer", a tie won by "a" (seen first), q3 "a" right.
    assert s["pass@2"] == pytest.approx(1.0)
    assert s["cons@2"] == pytest.approx(1.0)
    assert s["n_questions_short_of_k"] == 1
    # usage shared by the 2 choices of one response: 10 + 10 prompt tokens / 2 = 10 in all
    assert s["tokens"] == {"completion": 40, "prompt": 10}
    assert s["ci_low"] <= s["pass@1"] <= s["ci_high"]


def test_multiple_choice_votes_compare_options_not_shuffled_letters() -> None:
    # Three repeats answer "B", "C", "C"; under the orders shown, "B" and the first "C" name
    # the same option (data letter C), the last "C" names data letter A.
    items = [item("g", r) for r in range(3)]
    state = LogState()
    log(state, items[0], True, canonical="B", order=[0, 2, 1, 3])  # shown B = data C
    log(state, items[1], True, canonical="C", order=[1, 0, 2, 3])  # shown C = data C
    log(state, items[2], False, canonical="C", order=[2, 3, 0, 1])  # shown C = data A
    s = score_task(tally(items, state)["t"])
    assert s["cons@3"] == 1.0  # the majority option is right; by letters "C" would win wrongly


def test_breakdown_by_metadata() -> None:
    items = [item("m1", 0, {"category": "STEM"}), item("m2", 0, {"category": "STEM"}),
             item("m3", 0, {"category": "other"})]
    state = LogState()
    for it, correct in zip(items, (True, False, True), strict=True):
        log(state, it, correct)
    by = score_task(tally(items, state)["t"], ("category",))["by"]["category"]
    assert by == {"STEM": {"pass@1": 0.5, "n_questions": 2},
                  "other": {"pass@1": 1.0, "n_questions": 1}}


def test_cons_and_pass_at_k_count_every_question() -> None:
    """The issue's case: 20 easy questions (64/64) and 10 hard ones (0/63 plus one failed
    request each). Counting only questions with all 64 samples gave cons@64 = pass@64 = 1.0
    beside pass@1 = 0.667."""
    items = [item(f"q{q:02d}", r) for q in range(30) for r in range(64)]
    state = LogState()
    for it in items:
        hard = int(it.sample.id[1:]) >= 20
        if hard and it.repeat == 63:
            log(state, it, None)
        else:
            log(state, it, not hard, canonical="7" if hard else "a")
    s = score_task(tally(items, state)["t"])
    assert s["pass@1"] == pytest.approx(20 / 30)
    assert s["cons@64"] == pytest.approx(20 / 30)
    assert s["pass@64"] == pytest.approx(20 / 30)
    assert (s["n_questions"], s["n_samples"], s["n_questions_short_of_k"]) == (30, 1910, 10)


def test_a_vote_won_by_no_answer_is_wrong() -> None:
    items = [item("q", r) for r in range(5)]
    state = LogState()
    for it, (correct, answer) in zip(items, [(False, None), (True, "5"), (False, None),
                                             (True, "5"), (False, None)], strict=True):
        log(state, it, correct, canonical=answer)
    assert score_task(tally(items, state)["t"])["cons@5"] == 0.0


def test_breakdown_weights_questions_like_the_task_score() -> None:
    """The issue's case: 64/64 right, and 1 graded wrong + 63 failed requests: the task
    scores 0.5 and the breakdown said 0.985 (64 of 65 samples)."""
    items = [item(q, r, {"category": "STEM"}) for q in ("a", "b") for r in range(64)]
    state = LogState()
    for it in items:
        if it.sample.id == "a":
            log(state, it, True)
        else:
            log(state, it, False if it.repeat == 0 else None)
    s = score_task(tally(items, state)["t"], ("category",))
    assert s["pass@1"] == pytest.approx(0.5)
    assert s["by"]["category"]["STEM"] == {"pass@1": 0.5, "n_questions": 2}
