"""The run folder: append-only log, torn lines, lock, slim state."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from r1eval.errors import RunFolderError
from r1eval.store.folder import (
    LOG,
    RunFolder,
    load_state,
    read_completions,
    read_log,
    read_manifest,
)
from r1eval.store.logged import logged_grade


def completion(key: str, text: str = "answer") -> dict[str, object]:
    return {"type": "completion", "key": key, "task": "t", "sample_id": "q", "repeat": 0,
            "text": text, "reasoning": "long", "finish_reason": "stop"}


def error(key: str) -> dict[str, object]:
    return {"type": "error", "key": key, "task": "t", "sample_id": "q", "repeat": 0,
            "message": "503"}


def test_records_are_appended_and_read_back_in_order(tmp_path: Path) -> None:
    with RunFolder(tmp_path) as folder:
        folder.append(completion("a"))
        folder.append({"type": "grade", "key": "a", "correct": True})
    with RunFolder(tmp_path) as folder:
        folder.append(completion("b"))
    assert [r["key"] for r in read_log(tmp_path / LOG)] == ["a", "a", "b"]


def test_a_torn_last_line_is_ignored_and_cut_before_the_next_append(tmp_path: Path) -> None:
    log = tmp_path / LOG
    log.write_text(json.dumps(completion("a")) + "\n" + '{"type": "completion", "key": "b", "te')
    assert [r["key"] for r in read_log(log)] == ["a"]  # the torn record is not a sample
    with RunFolder(tmp_path) as folder:
        folder.append(completion("c"))
    assert [r["key"] for r in read_log(log)] == ["a", "c"]
    assert log.read_text().count("\n") == 2


def test_a_corrupt_line_in_the_middle_is_an_error_not_a_silent_skip(tmp_path: Path) -> None:
    (tmp_path / LOG).write_text('{"type": "completion", "key": "a"}\nnot json\n{"key": "b"}\n')
    with pytest.raises(RunFolderError, match="corrupt"):
        list(read_log(tmp_path / LOG))


def test_a_second_process_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    with RunFolder(tmp_path), pytest.raises(RunFolderError, match="another r1eval process"):
        RunFolder(tmp_path).__enter__()
    with RunFolder(tmp_path):  # released on exit
        pass


def test_state_keeps_completions_slim_and_lets_later_success_supersede_errors(
    tmp_path: Path,
) -> None:
    with RunFolder(tmp_path) as folder:
        folder.append(error("a"))
        folder.append(completion("a", text="x" * 1000))
        folder.append(error("b"))
        folder.append({"type": "grade", "key": "a", "correct": False})
    state = load_state(tmp_path)
    assert set(state.completions) == {"a"} and not hasattr(state.completions["a"], "text")
    assert set(state.errors) == {"b"}
    assert state.grades["a"].correct is False
    assert read_completions(tmp_path, {"a"})["a"]["text"] == "x" * 1000


def test_the_folder_state_is_read_once_and_kept_current(tmp_path: Path) -> None:
    """``RunFolder.state`` reads the log once; ``append`` keeps it current (the end of a run
    scores without reading the log again). Grades are kept without what their completion
    already says."""
    with RunFolder(tmp_path) as folder:
        folder.append({**completion("a"), "task": "t", "sample_metadata": {"level": 1}})
        state = folder.state()
        folder.append({**completion("b"), "task": "t", "sample_metadata": {"level": 1}})
        folder.append({"type": "grade", "key": "b", "task": "t", "sample_id": "q", "repeat": 0,
                       "sample_metadata": {"level": 1}, "time": 1.0, "correct": True})
        assert folder.state() is state and set(state.completions) == {"a", "b"}
        assert state.grades["b"] == logged_grade({"key": "b", "correct": True})
        assert not hasattr(state.grades["b"], "sample_metadata")
    assert load_state(tmp_path).completions == state.completions


def test_deleting_the_lock_file_does_not_let_a_second_process_in(tmp_path: Path) -> None:
    """The lock is the folder's own ``flock``: no file whose removal would free it."""
    with RunFolder(tmp_path):
        for stray in tmp_path.glob(".lock"):
            stray.unlink()
        with pytest.raises(RunFolderError, match="another r1eval process"):
            RunFolder(tmp_path).__enter__()


def test_the_lock_dies_with_its_process(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from r1eval.store.folder import RunFolder; f = RunFolder(Path(sys.argv[1])).__enter__(); "
         "print('locked', flush=True); time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
            with pytest.raises(RunFolderError, match="another r1eval process"):
                RunFolder(tmp_path).__enter__()
        finally:
            holder.kill()  # SIGKILL: no exit handler releases anything
    with RunFolder(tmp_path):
        pass


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"identity": {}}'.encode("utf-16"), "is not UTF-8 text"),
        (b'{"identity": [1, 2], "tasks": {}}', "its 'identity' is not an object"),
        (b'{"identity": {"endpoint": {}}, "tasks": ["math500"]}', "its 'tasks' is not an"),
        (b'{"identity": {"endpoint": "x"}, "tasks": {}}', "identity names no endpoint"),
        (b'{"identity": {"endpoint": {}}, "tasks": {"aime24": 3}}', "a task entry is not"),
    ],
    ids=["utf-16", "identity-list", "tasks-list", "endpoint-string", "task-entry-number"],
)
def test_a_manifest_of_the_wrong_encoding_or_shape_is_one_clear_error(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    (tmp_path / "run.json").write_bytes(content)
    with pytest.raises(RunFolderError, match=problem):
        read_manifest(tmp_path)


def test_a_configured_key_is_redacted_from_every_record_and_the_state(tmp_path: Path) -> None:
    key = "sk-test-0123456789abcdef"
    with RunFolder(tmp_path, secrets=[key, "x"]) as folder:
        folder.state()
        folder.append({**completion("k1", text=f"my key is {key}, said the model"),
                       "finish_reason": key})
        assert folder.state().completions["k1"].finish_reason == "***"
    assert key.encode() not in (tmp_path / LOG).read_bytes()
    assert b"x" in (tmp_path / LOG).read_bytes()  # too short to be a key: left alone
    [record] = read_log(tmp_path / LOG)
    assert record["text"] == "my key is ***, said the model"
    assert all(key.encode() not in p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
