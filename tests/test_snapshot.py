"""The snapshot of a run folder's log state: a cache that never changes what the log says."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from r1eval.errors import RunFolderError
from r1eval.store.folder import (
    LOG,
    SNAPSHOT,
    LogState,
    RunFolder,
    load_state,
    read_log,
    read_snapshot,
)


def completion(key: str, text: str = "answer") -> dict[str, object]:
    return {"type": "completion", "key": key, "task": "t", "sample_id": "q", "repeat": 0,
            "text": text, "reasoning": "long",
            "finish_reason": "stop", "usage": {"completion_tokens": 7, "shared_by": 2},
            "prompt_metadata": {"option_order": [2, 0, 1, 3]}, "latency_s": 0.25}


def grade(key: str, correct: bool) -> dict[str, object]:
    return {"type": "grade", "key": key, "task": "t", "sample_id": "q", "repeat": 0,
            "correct": correct, "canonical": "B", "method": "letter"}


def logged(run_dir: Path, *records: dict[str, object]) -> None:
    """Append ``records`` through a folder whose state is loaded: it writes a snapshot when it
    closes."""
    with RunFolder(run_dir) as folder:
        folder.state()
        for record in records:
            folder.append(record)


def whole_log_state(run_dir: Path) -> LogState:
    state = LogState()
    for record in read_log(run_dir / LOG):
        state.add(record)
    return state


def assert_same_as_the_whole_log(run_dir: Path) -> None:
    """``load_state`` gives what reading every line of the log gives, in the same order."""
    loaded, expected = load_state(run_dir), whole_log_state(run_dir)
    for section in ("completions", "grades", "errors"):
        assert list(getattr(loaded, section).items()) == list(getattr(expected, section).items())


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A folder closed after a first session: 20 completions, their grades, an error, and a
    lone surrogate (a model's broken UTF-16) in one record."""
    records = [completion(f"k{i}") for i in range(20)] + [grade(f"k{i}", i % 3 == 0)
                                                            for i in range(20)]
    records += [{"type": "error", "key": "e", "task": "t", "sample_id": "q", "repeat": 1,
                 "message": "HTTP 503"},
                {**completion("odd"), "finish_reason": "bad \udc80 utf-16"}]
    logged(tmp_path, *records)
    return tmp_path


def test_closing_a_folder_snapshots_its_state_and_reopening_reads_only_the_snapshot(
    run_dir: Path,
) -> None:
    snapshot = read_snapshot(run_dir)
    assert snapshot is not None
    state, covered = snapshot
    assert covered == (run_dir / LOG).stat().st_size
    assert len(state.completions) == 21 and not hasattr(state.completions["k0"], "text")
    assert state.completions["odd"].finish_reason == "bad \udc80 utf-16"
    assert_same_as_the_whole_log(run_dir)


def test_a_reopened_folder_that_appends_nothing_keeps_its_snapshot(run_dir: Path) -> None:
    before = (run_dir / SNAPSHOT).stat().st_ino
    logged(run_dir)
    assert (run_dir / SNAPSHOT).stat().st_ino == before  # not rewritten (os.replace: new inode)
    logged(run_dir, grade("k1", True))
    assert (run_dir / SNAPSHOT).stat().st_ino != before
    assert not list(run_dir.glob(".*.tmp"))


def test_records_appended_after_the_snapshot_are_read_from_the_log(run_dir: Path) -> None:
    with RunFolder(run_dir) as folder:  # the state never loaded: no new snapshot
        folder.append(completion("k0", text="again"))  # a later completion supersedes
        folder.append(grade("k2", True))  # a later grade supersedes
        folder.append({"type": "error", "key": "k3", "task": "t", "sample_id": "q", "repeat": 0,
                       "message": "ignored: k3 has a response"})
        folder.append(completion("e"))  # a response supersedes the error
    snapshot = read_snapshot(run_dir)
    assert snapshot is not None and snapshot[1] < (run_dir / LOG).stat().st_size
    assert load_state(run_dir).grades["k2"].correct is True
    assert_same_as_the_whole_log(run_dir)


def test_a_torn_last_line_after_the_snapshot_is_not_a_record(run_dir: Path) -> None:
    with (run_dir / LOG).open("ab") as log:
        log.write(json.dumps(completion("late")).encode() + b"\n" + b'{"type": "completion", "ke')
    assert "late" in load_state(run_dir).completions
    assert_same_as_the_whole_log(run_dir)
    logged(run_dir, grade("late", False))  # the store cuts the torn line, then appends
    assert_same_as_the_whole_log(run_dir)
    assert read_snapshot(run_dir) is not None


@pytest.mark.parametrize("change", ["cut short", "rewritten, same size", "replaced"])
def test_a_log_cut_short_or_rewritten_makes_the_snapshot_useless(run_dir: Path,
                                                                  change: str) -> None:
    log = run_dir / LOG
    lines = log.read_bytes().splitlines(keepends=True)
    if change == "cut short":
        log.write_bytes(b"".join(lines[:-3]))
    elif change == "rewritten, same size":  # one grade flipped: same length, other bytes
        log.write_bytes(b"".join(lines).replace(b'"correct":true', b'"correct":null'))
    else:  # another run's log, longer than the one snapshotted
        log.write_bytes(b"".join(lines[20:] + lines[:20] + lines[:2]))
    assert read_snapshot(run_dir) is None
    assert_same_as_the_whole_log(run_dir)


def _garbled(snapshot: bytes, how: str) -> bytes:
    lines = snapshot.splitlines(keepends=True)
    header = json.loads(lines[0])
    if how == "not JSON":
        return b"\x00\xff garbage"
    if how == "empty":
        return b""
    if how == "cut short":  # no end line: a write that never finished
        return b"".join(lines[:-1])
    if how == "counts differ":
        return b"".join(lines[:-1]) + b'["end",{"completions":1,"grades":0,"errors":0}]\n'
    if how == "other format":
        return json.dumps({**header, "format": 0}).encode() + b"\n" + b"".join(lines[1:])
    if how == "unknown section":
        return b"".join([lines[0], b'["texts",{}]\n', *lines[1:]])
    assert how == "not a pair"
    return b"".join([lines[0], b"42\n", *lines[1:]])


@pytest.mark.parametrize("how", ["not JSON", "empty", "cut short", "counts differ",
                                 "other format", "unknown section", "not a pair"])
def test_a_garbled_snapshot_is_ignored_never_an_error(run_dir: Path, how: str) -> None:
    path = run_dir / SNAPSHOT
    path.write_bytes(_garbled(path.read_bytes(), how))
    assert read_snapshot(run_dir) is None
    assert_same_as_the_whole_log(run_dir)
    logged(run_dir)  # reopening replaces it with a good one
    assert read_snapshot(run_dir) is not None
    assert_same_as_the_whole_log(run_dir)


def test_a_log_ahead_of_the_folder_state_is_not_snapshotted(run_dir: Path) -> None:
    """A record the state does not hold (here, written behind the folder's back, as an
    append cut short by an error would leave one) must not be hidden by a snapshot."""
    before = (run_dir / SNAPSHOT).read_bytes()
    with RunFolder(run_dir) as folder:
        folder.state()
        folder.append(grade("k4", True))
        with (run_dir / LOG).open("ab") as log:
            log.write(json.dumps(grade("k5", True)).encode() + b"\n")
    assert (run_dir / SNAPSHOT).read_bytes() == before
    assert load_state(run_dir).grades["k5"].correct is True
    assert_same_as_the_whole_log(run_dir)


def test_an_unwritable_snapshot_does_not_fail_the_run(run_dir: Path) -> None:
    (run_dir / SNAPSHOT).unlink()
    (run_dir / SNAPSHOT).mkdir()  # os.replace onto a folder fails
    logged(run_dir, grade("k6", True))
    assert (run_dir / SNAPSHOT).is_dir() and not list(run_dir.glob(".*.tmp"))
    assert_same_as_the_whole_log(run_dir)


def test_the_snapshot_is_written_in_chunks_and_read_back_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("r1eval.store.snapshot._SNAPSHOT_CHUNK", 3)
    logged(tmp_path, *[completion(f"k{i}") for i in (5, 1, 9, 0, 7, 3, 8)])
    lines = (tmp_path / SNAPSHOT).read_bytes().splitlines()
    assert [json.loads(line)[0] for line in lines[1:]] == ["completions"] * 3 + ["end"]
    assert list(load_state(tmp_path).completions) == ["k5", "k1", "k9", "k0", "k7", "k3", "k8"]
    assert os.path.getsize(tmp_path / LOG) == read_snapshot(tmp_path)[1]  # type: ignore[index]


def test_a_snapshot_whose_content_was_edited_is_not_trusted(run_dir: Path) -> None:
    """Grades flipped inside the snapshot (still valid JSON, counts unchanged) must not change
    what the run reads: the snapshot no longer matches the digest of its own lines."""
    path = run_dir / SNAPSHOT
    edited = path.read_bytes().replace(b'["k0",true', b'["k0",false')  # a grade row
    assert edited != path.read_bytes()
    path.write_bytes(edited)
    assert read_snapshot(run_dir) is None
    assert_same_as_the_whole_log(run_dir)
    assert load_state(run_dir).grades["k0"].correct is True


@pytest.fixture
def long_run(tmp_path: Path) -> Path:
    """A snapshotted folder whose log is far longer than 128 KiB (records in its middle are
    neither in its first nor its last 64 KiB)."""
    logged(tmp_path, *[completion(f"k{i}", text="x" * 200) for i in range(2000)],
           *[grade(f"k{i}", True) for i in range(2000)])
    assert (tmp_path / LOG).stat().st_size > 600_000
    return tmp_path


def _overwrite_middle(log: Path, old: bytes, new: bytes) -> None:
    """Overwrite ``len(new)`` bytes in place where ``old`` occurs past the middle of the log
    (its size stays the same)."""
    data = bytearray(log.read_bytes())
    at = data.index(old, len(data) // 2)
    data[at : at + len(new)] = new
    log.write_bytes(bytes(data))


def test_an_edit_in_the_middle_of_the_log_makes_the_snapshot_useless(long_run: Path) -> None:
    _overwrite_middle(long_run / LOG, b'"correct":true', b'"correct":null')
    assert read_snapshot(long_run) is None
    assert_same_as_the_whole_log(long_run)
    assert None in {g.correct for g in load_state(long_run).grades.values()}


def test_a_corrupt_record_in_the_middle_of_the_log_is_an_error_with_a_snapshot_too(
    long_run: Path,
) -> None:
    _overwrite_middle(long_run / LOG, b'"correct":true', b"\x00" * 20)
    with pytest.raises(RunFolderError, match="corrupt record in the middle of the log"):
        load_state(long_run)
    with pytest.raises(RunFolderError, match="corrupt record"), RunFolder(long_run) as folder:
        folder.state()
