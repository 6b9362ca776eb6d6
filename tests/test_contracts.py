"""The run folder's contracts (``r1eval.store.contracts``): folders written by a released r1eval
still read, score and resume the same; a malformed file is one clear error; a newer format is
refused."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from r1eval.cli import main
from r1eval.errors import RunFolderError
from r1eval.scoring.regrade import items_from_log
from r1eval.scoring.scores import score_task, tally
from r1eval.store.contracts import FORMATS, Record
from r1eval.store.folder import read_manifest, read_scores
from r1eval.store.loading import load_run
from r1eval.store.log import LOG, read_log
from r1eval.store.snapshot import load_state

TESTS = Path(__file__).parent
#: Run folders written by r1eval 0.1.0 (commit a9b96f1), by ``fixtures/make_release_runs.py``.
RELEASE = TESTS / "fixtures" / "release_runs" / "0.1.0"
FOLDERS = ["graded", "served"]


@pytest.fixture(params=FOLDERS)
def release_run(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A copy of one of the release's run folders (its snapshot left out: read from the log)."""
    run = tmp_path / request.param
    shutil.copytree(RELEASE / request.param, run)
    (run / "samples.state.jsonl").unlink()
    return run


def test_a_release_folder_reads_with_the_scores_it_wrote(release_run: Path) -> None:
    written = json.loads((release_run / "scores.json").read_text(encoding="utf-8"))
    manifest = read_manifest(release_run)
    assert manifest is not None and manifest.formats == {}  # the first formats
    assert manifest.tasks["tiny_math"].samples_per_question == 2
    run = load_run(release_run)
    [row] = run.scores.to_dict("records")
    score = written["tasks"]["tiny_math"]
    assert row["pass@1"] == score["pass@1"] and row["cons@k"] == score["cons@2"]
    assert row["n_errors"] == score["n_errors"] and row["n_samples"] == score["n_samples"]
    assert len(run.samples) == 16
    assert (run.samples["verdict"] == "right").sum() == score["n_correct"]


def test_the_release_log_scores_to_exactly_the_scores_it_wrote(release_run: Path) -> None:
    """Today's scoring of the release's log: the task's scores.json entry, value for value."""
    written = (release_run / "scores.json").read_text(encoding="utf-8")
    state = load_state(release_run)
    rescored = score_task(tally(items_from_log(state), state)["tiny_math"])
    assert rescored == json.loads(written)["tasks"]["tiny_math"]


def test_every_record_of_a_release_log_is_a_record_kind(release_run: Path) -> None:
    kinds = TypeAdapter(Record)
    records = list(read_log(release_run / LOG))
    assert {r["type"] for r in records} >= {"completion", "grade"}
    for record in records:
        assert kinds.validate_python(record).record() == record


def test_scores_read_and_written_again_are_the_same_bytes(release_run: Path) -> None:
    path = release_run / "scores.json"
    text = path.read_text(encoding="utf-8")
    scores = read_scores(release_run)
    assert scores.tasks["tiny_math"].at_k("cons") == json.loads(text)["tasks"]["tiny_math"][
        "cons@2"]
    assert json.dumps(scores.record(), indent=2, ensure_ascii=False) + "\n" == text


def test_a_graded_release_folder_resumes_and_rewrites_the_same_scores(tmp_path: Path) -> None:
    """The same ``r1eval grade`` command today: nothing left to do, scores.json unchanged
    (but for the folder's path)."""
    run = tmp_path / "graded"
    shutil.copytree(RELEASE / "graded", run)
    log = (run / LOG).read_bytes()
    before = (run / "scores.json").read_text(encoding="utf-8")
    assert main(["grade", "--task", "tiny_math", "--completions",
                 str(RELEASE / "responses.jsonl"), "--model", "tiny-model", "--task-dir",
                 str(TESTS / "task_files"), "--data-dir", str(TESTS / "task_data"),
                 "--run-dir", str(run), "--grader-workers", "0"]) == 0
    assert (run / LOG).read_bytes() == log
    recorded = json.loads(before)["run_dir"]
    after = (run / "scores.json").read_text(encoding="utf-8")
    assert after == before.replace(json.dumps(recorded), json.dumps(str(run)))
    assert json.loads((run / "run.json").read_text(encoding="utf-8"))["formats"] == FORMATS


def test_a_folder_of_a_newer_format_is_refused_in_one_line(
    release_run: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    manifest = json.loads((release_run / "run.json").read_text(encoding="utf-8"))
    manifest["formats"] = {**FORMATS, "samples.jsonl": FORMATS["samples.jsonl"] + 1}
    (release_run / "run.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(RunFolderError,
                       match=re.escape("its samples.jsonl is of format 2, newer than")):
        read_manifest(release_run)
    capsys.readouterr()
    assert main(["leaderboard", str(release_run), "-o", str(release_run / "board.csv")]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "newer than this r1eval reads" in line
    assert not (release_run / "board.csv").exists()


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda m: m["tasks"]["tiny_math"].update(questions="eight"),
         "is not a run manifest: tasks.tiny_math.questions: "),
        (lambda m: m["identity"]["endpoint"].pop("model"),
         "is not a run manifest: identity.endpoint.model: field required"),
        (lambda m: m["identity"]["sampling"].update(stop="</s>"),
         "is not a run manifest: identity.sampling.stop: "),
    ],
    ids=["questions-text", "no-model", "stop-string"],
)
def test_a_manifest_field_of_the_wrong_type_is_one_clear_error(
    release_run: Path, edit: object, problem: str, capsys: pytest.CaptureFixture[str],
) -> None:
    manifest = json.loads((release_run / "run.json").read_text(encoding="utf-8"))
    edit(manifest)  # type: ignore[operator]
    (release_run / "run.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(RunFolderError, match=re.escape(problem)):
        read_manifest(release_run)
    capsys.readouterr()
    assert main(["leaderboard", str(release_run), "-o", str(release_run / "board.csv")]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert problem in line


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "unreadable run file"),
        ('{"tasks": {"tiny_math": {"n_errors": "two"}}}',
         "is not a scores file: tasks.tiny_math.n_errors: "),
        ('{"tasks": []}', "is not a scores file: tasks: "),
    ],
    ids=["not-json", "count-text", "tasks-list"],
)
def test_a_malformed_scores_file_is_one_clear_error(
    release_run: Path, content: str, problem: str,
) -> None:
    (release_run / "scores.json").write_text(content, encoding="utf-8")
    with pytest.raises(RunFolderError, match=re.escape(problem)):
        load_run(release_run)
