"""``r1eval regrade``: stored responses re-scored with a changed grader; the grader audit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import r1eval
from r1eval.cli import main
from r1eval.run.second_opinion import independent_check
from r1eval.store.folder import LOG, SNAPSHOT, LogState, load_state, read_log

from runs_for_tests import answer, build_run

TESTS = Path(__file__).resolve().parent
TASK_DIR, DATA_DIR = TESTS / "task_files", TESTS / "task_data"

# (question, response): gold answers are q1 5, q2 \frac{1}{2}, q3 12, q4 3\sqrt{2}.
RESPONSES = [
    ("q1", "</think> \\boxed{5}"),
    ("q1", "</think> \\boxed{6}"),
    ("q2", "</think> \\boxed{0.5}"),          # right for math-verify, not for a string match
    ("q2", "</think> \\boxed{\\frac{1}{2}}"),  # right for both
    ("q3", "</think> The final answer is 12"),  # no box: math-verify's fallback finds it
    ("q3", "<think> cut off \\boxed{12}"),    # truncated: no answer for any grader
    ("q4", "</think> \\boxed{\\sqrt{18}}"),    # right for math-verify; the plain check differs
    ("q4", "</think> \\boxed{3\\sqrt{2}}"),
]

# The "grader fix" to test with: only a box holding exactly the gold string is right.
STRICT_TASK = '''
import dataclasses
import importlib.util
import pathlib

from r1eval.grading.math_answers import find_boxes
from r1eval.types import Grade

_spec = importlib.util.spec_from_file_location("tiny_base", pathlib.Path({base!r}))
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)


def boxed_string(answer, gold):
    boxes = find_boxes(answer)
    found = boxes[-1].content if boxes else None
    right = found == gold
    failure = None if right else ("wrong" if found else "no_answer")
    return Grade(right, found, found, "boxed" if boxes else None, failure, "string match")


TASK = dataclasses.replace(_base.TASK, grader=boxed_string)
'''


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    completions = tmp_path / "responses.jsonl"
    completions.write_text("".join(json.dumps({"id": q, "response": r}) + "\n"
                                   for q, r in RESPONSES))
    run = tmp_path / "run"
    assert main(["grade", "--task", "tiny_math", "--completions", str(completions),
                 "--task-dir", str(TASK_DIR), "--data-dir", str(DATA_DIR), "--run-dir",
                 str(run), "--grader-workers", "0"]) == 0
    return run


@pytest.fixture()
def strict_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "strict"
    folder.mkdir()
    (folder / "tiny_math.py").write_text(STRICT_TASK.format(base=str(TASK_DIR / "tiny_math.py")))
    return folder


def scores(run: Path) -> dict[str, Any]:
    return dict(json.loads((run / "scores.json").read_text())["tasks"]["tiny_math"])


def regrade(run: Path, *extra: str) -> int:
    return main(["regrade", str(run), "--grader-workers", "0", *extra])


def test_regrade_with_a_changed_grader(
    run_dir: Path, strict_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = scores(run_dir)
    # math-verify: q1 1/2, q2 2/2, q3 1/2 (one truncated), q4 2/2 -> (0.5 + 1 + 0.5 + 1) / 4
    assert before["pass@1"] == pytest.approx(0.75)
    grades_before = sum(r["type"] == "grade" for r in read_log(run_dir / LOG))
    capsys.readouterr()
    assert regrade(run_dir, "--task-dir", str(strict_dir)) == 0
    out = capsys.readouterr().out
    # string match: q1 1/2, q2 1/2 (0.5 is not "\frac{1}{2}"), q3 0/2 (no box), q4 1/2
    after = scores(run_dir)
    assert after["pass@1"] == pytest.approx((0.5 + 0.5 + 0 + 0.5) / 4)
    assert after["n_samples"] == before["n_samples"] == 8
    assert "| tiny_math | 8         | 3" in out  # 3 verdicts changed
    assert "right -> wrong" in out and "| q2       | 0      | right  | wrong" in out
    # the log keeps the old grades: one new grade per response, appended
    records = list(read_log(run_dir / LOG))
    assert sum(r["type"] == "grade" for r in records) == grades_before + 8
    assert sum(bool(r.get("regraded")) for r in records) == 8
    verdicts = r1eval.load_run(run_dir).samples.set_index(["sample_id", "repeat"])["verdict"]
    assert verdicts["q3", 0] == "no_answer" and verdicts["q2", 1] == "right"
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["regrades"][-1]["verdicts_changed"] == 3
    assert manifest["tasks"]["tiny_math"]["grader"].endswith(".boxed_string")

    # the grader "fixed" back: the run's own scores return exactly
    assert regrade(run_dir, "--task-dir", str(TASK_DIR)) == 0
    assert scores(run_dir) == before
    assert len(json.loads((run_dir / "run.json").read_text())["regrades"]) == 2


def test_regrade_with_the_same_grader_changes_nothing(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = scores(run_dir)
    assert regrade(run_dir) == 0  # the run's own --task-dir is found in run.json
    assert scores(run_dir) == before
    assert "r1eval: 0 verdicts changed" in capsys.readouterr().err


def test_dry_run_writes_nothing(
    run_dir: Path, strict_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (run_dir / SNAPSHOT).unlink()  # the state is read from the log (and snapshotted again)
    files = {name: (run_dir / name).read_bytes() for name in (LOG, "scores.json", "run.json")}
    assert regrade(run_dir, "--task-dir", str(strict_dir), "--dry-run") == 0
    captured = capsys.readouterr()
    assert "| 75.0            | 37.5" in captured.out  # pass@1 before and after
    assert "nothing written" in captured.err
    assert {name: (run_dir / name).read_bytes() for name in files} == files
    logged = LogState()
    for record in read_log(run_dir / LOG):
        logged.add(record)
    assert load_state(run_dir).grades == logged.grades  # the dry run's grades stayed in memory


def test_audit_lists_where_math_verify_and_the_plain_check_disagree(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert regrade(run_dir, "--audit", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "audit: 1 responses where math-verify and the independent check disagree" in out
    line = next(x for x in out.splitlines() if "\\sqrt{18}" in x)
    assert "| q4 " in line and "| right " in line and "| differs " in line


@pytest.mark.parametrize(("extracted", "gold", "expected"), [
    ("0.5", "\\frac{1}{2}", (True, "numeric")),
    ("\\dfrac12", "1/2", (True, "numeric")),
    ("-\\frac{3}{4}", "-0.75", (True, "numeric")),
    ("1,000", "1000", (True, "numeric")),
    ("x = 5", "5", (True, "numeric")),
    ("30^\\circ", "30", (True, "numeric")),
    ("25.", "025", (True, "numeric")),
    ("10\\%", "10", (True, "numeric")),
    ("\\text{(C)}", "(C)", (True, "string")),
    ("\\left( 1, 2 \\right)", "(1,2)", (True, "string")),
    ("\\sqrt{18}", "3\\sqrt{2}", (False, "string")),
    ("6", "5", (False, "numeric")),
])
def test_independent_check(extracted: str, gold: str, expected: tuple[bool, str]) -> None:
    assert independent_check(extracted, gold) == expected


def test_regrade_of_something_else_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert regrade(tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a run folder" in err[0]


def test_regrade_names_a_missing_task_folder(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert regrade(run_dir, "--task-dir", str(tmp_path / "empty-but-missing")) == 2
    assert "task folder" in capsys.readouterr().err


@pytest.mark.data
def test_a_stopped_run_stays_incomplete_after_a_regrade(tmp_path: Path, data_dir: Path) -> None:
    """Questions never sent are not in the log: the regrade keeps the run's plan counts."""
    run = build_run(tmp_path / "run", data_dir, "aime24",
                    lambda item: answer(f"</think> \\boxed{{{item.prompt.gold}}}"),
                    limit=5, stop_after=3)
    before = json.loads((run / "scores.json").read_text())["tasks"]["aime24"]
    assert before["n_not_attempted"] == 2 and not before["complete"]
    strict = tmp_path / "strict"
    strict.mkdir()
    (strict / "aime24.py").write_text(
        "import dataclasses\n"
        "from r1eval.tasks.aime24 import TASK as _T\n"
        "from r1eval.types import Grade\n"
        "def never(answer, gold):\n"
        "    return Grade(False, answer, answer, 'x', 'wrong')\n"
        "TASK = dataclasses.replace(_T, grader=never)\n")
    assert regrade(run, "--task-dir", str(strict)) == 0
    after = json.loads((run / "scores.json").read_text())["tasks"]["aime24"]
    assert after["pass@1"] == 0.0 and before["pass@1"] == 1.0
    assert (after["n_questions_planned"], after["n_not_attempted"]) == (5, 2)
    assert not after["complete"]


# Issue 14: responses, and the grade r1eval gave each before the changes (measured on the
# code of main before them: correct, extracted, failure). A run made then is re-graded now.
BEFORE_ISSUE_14 = [
    ("q1", "I need the answer as a residue from 0 to 8.\n\n14 - 9 = 5.\n\nTherefore, n is 5.",
     (False, "0", "wrong"), "right"),
    ("q1", "</think> \\boxed{5}", (True, "5", None), None),
    ("q3", "so the sum is $= \\boxed{11}$. Total 12.\nFinal Answer: The final answer is $12$.",
     (False, "11", "wrong"), "right"),
    ("q3", "</think> \\boxed{12^{\\mathrm{th}}}", (False, "12^{\\mathrm{th}}", "wrong"), "right"),
    ("q3", "<|begin_of_thought|>\nso \\boxed{12}", (True, "12", None), "no_answer"),
    ("q2", "</think> \\boxed{0.5}", (True, "0.5", None), None),
    ("q4", "</think> \\boxed{\\sqrt{18}}", (True, "\\sqrt{18}", None), None),
    ("q4", "</think> The answer is 3\\sqrt{2}", (False, "3", "wrong"), "right"),
    ("q1", "Let me see: 2 + 3 = 5, and then the next step is to", (True, "5", None),
     "no_answer"),
]

OLD_GRADER_TASK = '''
import dataclasses
import importlib.util
import pathlib

from r1eval.types import Grade

_spec = importlib.util.spec_from_file_location("tiny_base", pathlib.Path({base!r}))
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)
_BEFORE = {before!r}


def as_before(answer, gold):
    correct, extracted, failure = _BEFORE[answer.strip()]
    return Grade(correct, extracted, extracted, "boxed", failure, "as graded before")


TASK = dataclasses.replace(_base.TASK, grader=as_before)
'''


def test_regrade_lists_exactly_the_verdicts_issue_14_flips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {response.partition("</think>")[2].strip() or response.strip(): grade
              for _, response, grade, _ in BEFORE_ISSUE_14}
    old_tasks = tmp_path / "old"
    old_tasks.mkdir()
    (old_tasks / "tiny_math.py").write_text(
        OLD_GRADER_TASK.format(base=str(TASK_DIR / "tiny_math.py"), before=before))
    completions = tmp_path / "responses.jsonl"
    completions.write_text("".join(json.dumps({"id": q, "response": r}) + "\n"
                                   for q, r, _, _ in BEFORE_ISSUE_14))
    run = tmp_path / "run"
    assert main(["grade", "--task", "tiny_math", "--completions", str(completions),
                 "--task-dir", str(old_tasks), "--data-dir", str(DATA_DIR), "--run-dir",
                 str(run), "--grader-workers", "0", "--reasoning-delimiters", "think"]) == 0
    manifest = json.loads((run / "run.json").read_text())
    del manifest["config"]["reasoning_delimiters"]  # as in a run.json written before them
    (run / "run.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert regrade(run, "--task-dir", str(TASK_DIR), "--audit", "--show", "100") == 0
    out = capsys.readouterr().out
    repeats: dict[str, int] = {}
    expected = set()
    for question, _, (correct, _, failure), after in BEFORE_ISSUE_14:
        repeat = repeats[question] = repeats.get(question, -1) + 1
        if after is not None:
            was = "right" if correct else failure
            expected.add((question, str(repeat), was, after))
    table = out.split("verdicts changed (")[1].split("\n\n")[0].splitlines()[3:]
    listed = {tuple(cell.strip() for cell in row.strip("|").split("|")[1:5]) for row in table}
    assert listed == expected
    assert f"| tiny_math | {len(BEFORE_ISSUE_14)}         | {len(expected)} " in out


def test_regrade_splits_reasoning_with_the_runs_own_delimiters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run made with --reasoning-delimiters think keeps them when regraded."""
    completions = tmp_path / "responses.jsonl"
    completions.write_text(json.dumps(
        {"id": "q1", "response": "<|begin_of_thought|>\nso \\boxed{5}"}) + "\n")
    run = tmp_path / "run"
    assert main(["grade", "--task", "tiny_math", "--completions", str(completions),
                 "--task-dir", str(TASK_DIR), "--data-dir", str(DATA_DIR), "--run-dir",
                 str(run), "--grader-workers", "0", "--reasoning-delimiters", "think"]) == 0
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["config"]["reasoning_delimiters"] == ["think"]
    assert scores(run)["pass@1"] == 1.0  # the trace is not recognised: its box is the answer
    capsys.readouterr()
    assert regrade(run) == 0
    assert "r1eval: 0 verdicts changed" in capsys.readouterr().err
    assert scores(run)["pass@1"] == 1.0
