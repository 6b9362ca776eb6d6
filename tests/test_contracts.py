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
from r1eval.run.plan import WorkItem
from r1eval.run.regrade import items_from_log
from r1eval.scoring.scores import score_task, tally
from r1eval.store.contracts import FORMATS, CompletionRecord, ErrorRecord, GradeRecord, Record
from r1eval.store.folder import read_manifest, read_scores
from r1eval.store.loading import load_run
from r1eval.store.log import LOG, read_log
from r1eval.store.records import completion_record, error_record, grade_record
from r1eval.store.snapshot import load_state, read_snapshot
from r1eval.types import Completion, Grade, Prompt, Sample, Usage

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


def test_the_record_writers_write_the_record_kinds() -> None:
    """What the runner logs is what the contracts describe: each writer's record validates as
    its kind and is written back unchanged."""
    sample = Sample(id="q1", input="What is 2 + 3?", target="5", metadata={"level": 1})
    item = WorkItem("tiny_math", sample, 1, Prompt(messages=(), gold="5",
                                                   metadata={"option_order": [1, 0]}), "k1")
    completion = Completion(text="\\boxed{5}", reasoning="2 + 3", finish_reason="stop",
                            usage=Usage(prompt_tokens=9, completion_tokens=4, shared_by=2),
                            latency_s=1.5, model="m", first_token_s=0.25)
    grade = Grade(correct=True, extracted="5", canonical="5", method="boxed", failure=None)
    kinds = TypeAdapter(Record)
    written = [completion_record(item, completion), grade_record(item, grade),
               error_record(item, "HTTP 503", True, 503)]
    parsed = [kinds.validate_python(json.loads(json.dumps(record))) for record in written]
    assert [type(p) for p in parsed] == [CompletionRecord, GradeRecord, ErrorRecord]
    assert [p.record() for p in parsed] == written
    assert parsed[0].usage.shared_by == 2 and parsed[0].prompt_metadata["option_order"] == [1, 0]


def test_the_first_shapes_r1eval_wrote_still_read(tmp_path: Path) -> None:
    """run.json, the log and scores.json as the first commits wrote them (``git log -p --
    r1eval/records.py r1eval/scoring.py``): no provenance, prices or creation time, no sample
    metadata or streaming time, usage without ``estimated``, scores without ``n_correct``,
    ``speed`` or ``n_questions_short_of_k``."""
    manifest = {"r1eval_version": "0.1.0",
                "identity": {"endpoint": {"model": "m", "base_url": "http://h/v1"},
                             "sampling": {"temperature": 0.6, "top_p": None, "max_tokens": None,
                                          "stop": [], "seed": None}},
                "config": {"model": "m", "tasks": ["tiny_math"]},
                "tasks": {"tiny_math": {"version": "1", "prompt_hash": "p", "grader": "g",
                                        "source": {"kind": "local", "location": "x",
                                                   "sha256": "s"},
                                        "questions": 1, "samples_per_question": 2}}}
    item = {"key": "k{}", "task": "tiny_math", "sample_id": "q1", "time": 1.0}
    log = [
        {"type": "completion", **item, "key": "k0", "repeat": 0, "text": "\\boxed{5}",
         "reasoning": None, "finish_reason": "stop",
         "usage": {"prompt_tokens": 3, "completion_tokens": 2, "reasoning_tokens": None,
                   "shared_by": 1},
         "latency_s": 0.5, "model": "m", "gold": "5", "prompt_metadata": {}},
        {"type": "grade", **item, "key": "k0", "repeat": 0, "correct": True, "extracted": "5",
         "canonical": "5", "method": "boxed", "failure": None, "explanation": ""},
        {"type": "error", **item, "key": "k1", "repeat": 1, "message": "HTTP 503",
         "transient": True, "status": 503},
    ]
    score = {"pass@1": 1.0, "ci_low": 0.2, "ci_high": 1.0, "ci_method": "wilson",
             "n_questions": 1, "n_questions_planned": 1, "samples_per_question": 2,
             "n_samples": 1, "n_errors": 1, "n_not_attempted": 0, "complete": False,
             "truncated_rate": 0.0, "no_answer_rate": 0.0, "accuracy_completed": 1.0,
             "cons@2": None, "pass@2": None, "extraction": {"boxed": 1},
             "tokens": {"completion": 2, "prompt": 3}, "by": {}}
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps(manifest), encoding="utf-8")
    (run / LOG).write_text("".join(json.dumps(r) + "\n" for r in log), encoding="utf-8")
    scores = json.dumps({"run_dir": str(run), "model": "m", "complete": False,
                         "tasks": {"tiny_math": score}}, indent=2)
    (run / "scores.json").write_text(scores + "\n", encoding="utf-8")
    for record in log:
        TypeAdapter(Record).validate_python(record)
    loaded = load_run(run)
    assert loaded.model == "m" and loaded.created is None
    [row] = loaded.scores.to_dict("records")
    assert row["pass@1"] == 1.0 and row["n_errors"] == 1 and row["completion_tokens"] == 2
    assert sorted(loaded.samples["verdict"]) == ["error", "right"]
    assert json.dumps(read_scores(run).record(), indent=2) == scores  # nothing added or lost


def test_a_manifest_read_as_the_dict_it_was_warns_for_one_release(release_run: Path) -> None:
    run = load_run(release_run, samples=False)
    with pytest.warns(DeprecationWarning, match="use the attribute"):
        assert run.manifest["identity"]["endpoint"]["model"] == run.model
    with pytest.warns(DeprecationWarning, match="use the attribute"):
        assert run.manifest.get("tasks")["tiny_math"]["questions"] == 8


@pytest.mark.parametrize("name", FOLDERS)
def test_the_snapshot_a_release_wrote_is_used_and_says_what_its_log_says(
    name: str, tmp_path: Path,
) -> None:
    run = tmp_path / name
    shutil.copytree(RELEASE / name, run)
    assert read_snapshot(run) is not None
    from_snapshot = load_state(run)
    (run / "samples.state.jsonl").unlink()
    assert load_state(run) == from_snapshot
