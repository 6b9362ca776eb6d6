"""The run folder: append-only log, torn lines, lock, slim state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from r1eval.errors import RunFolderError
from r1eval.store import LOG, RunFolder, load_state, read_completions, read_log


def completion(key: str, text: str = "answer") -> dict[str, object]:
    return {"type": "completion", "key": key, "text": text, "reasoning": "long",
            "finish_reason": "stop"}


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
        folder.append({"type": "error", "key": "a", "message": "503"})
        folder.append(completion("a", text="x" * 1000))
        folder.append({"type": "error", "key": "b", "message": "503"})
        folder.append({"type": "grade", "key": "a", "correct": False})
    state = load_state(tmp_path)
    assert set(state.completions) == {"a"} and "text" not in state.completions["a"]
    assert set(state.errors) == {"b"}
    assert state.grades["a"]["correct"] is False
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
        assert state.grades["b"] == {"type": "grade", "key": "b", "correct": True}
    assert load_state(tmp_path).completions == state.completions
