"""One owner per concept, logic where it belongs (issue 17, items 2 and 3): where each concept is
defined, that the modules which only need a type do not import the stage that makes it, and that
no module grows past about 400 lines."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

import r1eval
from r1eval import types
from r1eval.backends import thinking
from r1eval.backends.factory import identity_for
from r1eval.backends.replay import file_identity
from r1eval.claims.check import ReproductionVerdict
from r1eval.grading import final_answer, inline, pool
from r1eval.percent import as_percent, percent_text, points_text
from r1eval.regress.paired import RegressionVerdict
from r1eval.reports.end_of_run import scores_table
from r1eval.run import config
from r1eval.scoring.design import Assumptions, estimate_design
from r1eval.scoring.power import Design
from r1eval.store.contracts import Scores
from r1eval.store.outcomes import STATUSES
from r1eval.task.definition import Task

PACKAGE = Path(r1eval.__file__).resolve().parent

MAX_LINES = 410


def _imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
    return {node.module for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module}


def _defines(module: str, name: str) -> bool:
    """Whether ``module`` assigns or defines ``name`` at its top level."""
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return True
        if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == name for target in node.targets):
            return True
    return False


@pytest.mark.parametrize("module", [
    "store/records.py", "scoring/scores.py", "run/regrade.py", "run/schedule.py",
    "run/progress.py", "run/estimate.py", "export/lm_eval.py",
])
def test_work_items_come_with_the_core_types_not_the_planner(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
    from_planner = {alias.name for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module == "r1eval.run.plan"
                    for alias in node.names}
    assert "WorkItem" not in from_planner
    assert types.WorkItem.__module__ == "r1eval.types"


def test_regrade_does_not_import_pandas() -> None:
    """A 10-line status function is no reason to load pandas (through the run loader)."""
    code = "import sys, r1eval.run.regrade; print('pandas' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def test_grader_is_declared_once() -> None:
    declaring = [str(path.relative_to(PACKAGE)) for path in sorted(PACKAGE.rglob("*.py"))
                 if _defines(str(path.relative_to(PACKAGE)), "Grader")]
    assert declaring == ["types.py"]
    assert pool.Grader is final_answer.Grader is types.Grader
    assert inline.inline_grade.__annotations__["grader"] == "Grader"


def test_thinking_names_flags_as_config_does() -> None:
    assert not any(_defines(m, "flag_name") for m in ("run/config.py", "backends/thinking.py"))
    assert thinking.flag_name is config.flag_name
    assert thinking.FLAGS["reasoning_effort"] == config.flag_name("reasoning_effort")


def test_task_has_no_unread_extra_field() -> None:
    assert "extra" not in {f.name for f in dataclasses.fields(Task)}


def test_the_three_verdict_vocabularies_do_not_overlap() -> None:
    """A sample's status, a regression verdict and a reproduction verdict are told apart by
    their values, not only by where they are read."""
    vocabularies = [set(STATUSES), set(get_args(RegressionVerdict)),
                    set(get_args(ReproductionVerdict))]
    assert sum(len(v) for v in vocabularies) == len(set().union(*vocabularies))


def test_modules_stay_small() -> None:
    long = {str(path.relative_to(PACKAGE)): n for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, long


def test_a_replayed_file_names_its_own_identity(tmp_path: Path) -> None:
    """r1eval grade goes through the live run's preparation: no endpoint override."""
    responses = tmp_path / "responses.jsonl"
    responses.write_text('{"id": "q1", "response": "5"}\n', encoding="utf-8")
    identity = file_identity(responses, "my-model")
    assert identity_for("my-model", identity["base_url"]) == identity
    assert "prepare(" not in (PACKAGE / "commands/grade.py").read_text(encoding="utf-8")


def test_power_estimates_its_design_in_scoring() -> None:
    assumed = estimate_design([], "aime24", Assumptions(correlation=0.8, score=0.7))
    assert assumed == Design.assumed(0.7, 0.5).paired(0.8)
    imported = _imports("commands/power.py")
    assert "r1eval.scoring.design" in imported and "r1eval.regress.pairing" not in imported


@pytest.mark.parametrize(("fraction", "number", "text", "signed"), [
    (0.12345, 12.35, "12.3", "+12.3"),
    (-0.05, -5.0, "-5.0", "-5.0"),
    (None, None, "-", "-"),
    (float("nan"), None, "-", "-"),
])
def test_percent_has_one_definition(
    fraction: float | None, number: float | None, text: str, signed: str
) -> None:
    assert as_percent(fraction, 2) == number
    assert percent_text(fraction) == text and percent_text(fraction, signed=True) == signed
    assert points_text(as_percent(fraction)) == text


def test_the_end_of_run_table_shows_percent_through_it() -> None:
    score = {"pass@1": 0.5, "ci_low": 0.25, "ci_high": None, "n_questions": 2,
             "n_questions_planned": 2, "samples_per_question": 1, "truncated_rate": 0.0,
             "no_answer_rate": None, "n_errors": 0}
    row = scores_table(Scores.model_validate({"tasks": {"t": score}})).splitlines()[2]
    assert [c.strip() for c in row.strip("|").split("|")][1:3] == ["50.0", "25.0--"]
    assert row.split("|")[-3].strip() == "-"  # a missing rate
