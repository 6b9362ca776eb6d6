"""A run folder on disk: its manifest, its append-only sample log and its scores.

Layout::

    <run-dir>/run.json       configuration and provenance (never an API key)
    <run-dir>/samples.jsonl  one JSON record a line, appended as each event happens:
                             "completion" (a response), "error" (a request that failed for
                             good this time), "grade" (how a completion was judged)
    <run-dir>/scores.json    per-task scores, rewritten atomically at the end of each run
    <run-dir>/samples.state.jsonl
                             a snapshot of what the log says (``LogState``), written
                             atomically when a process closes the folder: a cache, never
                             the truth (see ``load_state``)
    <run-dir>/.lock          held while a process works in the folder

The log is only ever appended to, one flushed line per record, so a crash loses at most the
requests in flight. A torn last line (the process died mid-write) is detected and cut off when
the folder is reopened, never read as a record.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from r1eval.errors import RunFolderError
from r1eval.gc_pause import no_cyclic_gc

MANIFEST = "run.json"
LOG = "samples.jsonl"
SNAPSHOT = "samples.state.jsonl"
SCORES = "scores.json"
LOCK = ".lock"


def _json_bytes(data: Any, **options: Any) -> bytes:
    """``data`` as JSON in UTF-8, readable in any editor.

    A lone surrogate (a model's broken UTF-16, or an undecodable byte of a command-line
    argument) cannot be encoded in UTF-8: it is written as its JSON escape ``\\udXXX`` instead
    of crashing the run, and reads back as the same string.
    """
    text = json.dumps(data, ensure_ascii=False, **options)
    return text.encode("utf-8", errors="backslashreplace")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old file or the new one, never a half-written one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(_json_bytes(data, indent=2) + b"\n")
    os.replace(tmp, path)


def read_log(path: Path, start: int = 0) -> Iterator[dict[str, Any]]:
    """The records of a sample log (from byte ``start``, the start of a line), skipping a torn
    (unterminated, unparsable) last line."""
    if not path.exists():
        return
    with path.open("rb") as handle:
        handle.seek(start)
        for line in handle:
            if not line.endswith(b"\n"):
                return  # torn last line: the writer died before finishing it
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                raise RunFolderError(f"{path}: corrupt record in the middle of the log") from None


BULKY_FIELDS = ("text", "reasoning")
#: What a grade record repeats of its completion record: not kept in the state.
ITEM_FIELDS = ("task", "sample_id", "repeat", "sample_metadata", "time")


@dataclass
class LogState:
    """What the log says about each request key: the latest completion, grade and error.

    Completions are kept without their text and reasoning (``BULKY_FIELDS``) and grades
    without what their completion already says (``ITEM_FIELDS``), so the state of a run of
    100,000 long reasoning traces fits in memory; ``read_completions`` fetches the full
    records of the few keys that need them.
    """

    completions: dict[str, dict[str, Any]] = field(default_factory=dict)
    grades: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, record: dict[str, Any]) -> None:
        kind, key = record.get("type"), record.get("key")
        if not isinstance(key, str):
            return
        if kind == "completion":
            self.completions[key] = {k: v for k, v in record.items() if k not in BULKY_FIELDS}
            self.errors.pop(key, None)
        elif kind == "grade":
            self.grades[key] = {k: v for k, v in record.items() if k not in ITEM_FIELDS}
        elif kind == "error" and key not in self.completions:
            self.errors[key] = record


def read_completions(run_dir: Path, keys: set[str]) -> dict[str, dict[str, Any]]:
    """The full completion records (with text) of ``keys``."""
    found = {}
    for record in read_log(run_dir / LOG):
        if record.get("type") == "completion" and record.get("key") in keys:
            found[record["key"]] = record
    return found


def is_run_folder(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    """The run folder's ``run.json``; None when there is none, ``RunFolderError`` when it is not
    a manifest."""
    path = run_dir / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise RunFolderError(f"{path} is not valid JSON ({error.msg})") from None
    if not isinstance(data, dict):
        raise RunFolderError(f"{path} is not a run manifest")
    return data


def manifest_model(manifest: dict[str, Any]) -> str:
    """The model a run was made with, as its manifest names it."""
    return str(manifest["identity"]["endpoint"]["model"])


def run_folders(folder: Path) -> list[Path]:
    """``folder`` if it is a run folder, else every run folder below it (sorted by path)."""
    if is_run_folder(folder):
        return [folder]
    return sorted(p.parent for p in folder.rglob(MANIFEST) if is_run_folder(p.parent))


def load_state(run_dir: Path) -> LogState:
    """What the log of ``run_dir`` says: from its snapshot and the records appended since, when
    the snapshot matches the log, else from the whole log (the same state either way)."""
    return _load_state(run_dir)[0]


def _load_state(run_dir: Path) -> tuple[LogState, bool]:
    """The state, and whether the snapshot on disk already holds all of it."""
    with no_cyclic_gc():
        snapshot = read_snapshot(run_dir)
        state, start = snapshot or (LogState(), 0)
        appended = False
        for record in read_log(run_dir / LOG, start):
            state.add(record)
            appended = True
    return state, snapshot is not None and not appended


# The snapshot: JSON lines. A header naming the log prefix it covers (its size and a digest of
# its first and last 64 KiB); then ``["completions" | "grades" | "errors", {key: record}]``
# lines in the state's order, at most ``_SNAPSHOT_CHUNK`` records a line (writing it never
# holds a second copy of the state in memory); then ``["end", {section: count}]``.
_SNAPSHOT_FORMAT = 1
_SNAPSHOT_CHUNK = 10_000
_SECTIONS = ("completions", "grades", "errors")
_CHECKED_BYTES = 1 << 16


def write_snapshot(run_dir: Path, state: LogState, log_size: int) -> None:
    """Record ``state`` as what the first ``log_size`` bytes of the log say (atomically)."""
    path = run_dir / SNAPSHOT
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as out:
            out.write(_json_line(_snapshot_header(run_dir / LOG, log_size)))
            for section in _SECTIONS:
                records = list(getattr(state, section).items())
                for start in range(0, len(records), _SNAPSHOT_CHUNK):
                    out.write(_json_line([section, dict(records[start : start + _SNAPSHOT_CHUNK])]))
            out.write(_json_line(["end", _counts(state)]))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_snapshot(run_dir: Path) -> tuple[LogState, int] | None:
    """The state the snapshot records and the log offset up to which it holds, or None when
    it is missing, unreadable, of another format or not of this log's current content."""
    try:
        with (run_dir / SNAPSHOT).open("rb") as lines:
            header = json.loads(next(lines, b"null"))
            if not isinstance(header, dict) or not isinstance(header.get("log_size"), int):
                return None
            if header != _snapshot_header(run_dir / LOG, header["log_size"]):
                return None
            state = _snapshot_state(lines)
    except (OSError, ValueError, TypeError, RecursionError):  # not JSON, or not of this shape
        return None
    return None if state is None else (state, header["log_size"])


def _snapshot_state(lines: Iterable[bytes]) -> LogState | None:
    """The state from the snapshot's record lines; None unless they are whole and well-formed."""
    state = LogState()
    for line in lines:
        section, records = json.loads(line)
        if section == "end":
            return state if records == _counts(state) else None
        if section not in _SECTIONS or not isinstance(records, dict):
            return None
        getattr(state, section).update(records)
    return None  # cut short: no end line


def _counts(state: LogState) -> dict[str, int]:
    return {section: len(getattr(state, section)) for section in _SECTIONS}


def _snapshot_header(log: Path, size: int) -> dict[str, Any]:
    """What identifies the first ``size`` bytes of the log (and what the state leaves out)."""
    return {
        "format": _SNAPSHOT_FORMAT,
        "kept_out": [list(BULKY_FIELDS), list(ITEM_FIELDS)],
        "log_size": size,
        "log_digest": _log_digest(log, size),
    }


def _log_digest(log: Path, size: int) -> str | None:
    """SHA-256 of the first and the last 64 KiB of the first ``size`` bytes of the log: a
    log cut short, rewritten or replaced no longer matches (an edit inside an append-only log
    is not looked for). None when the log is shorter than ``size``."""
    digest = hashlib.sha256(b"%d:" % size)
    with contextlib.suppress(FileNotFoundError), log.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size < size:
            return None
        digest.update(handle.read(min(size, _CHECKED_BYTES)))
        tail = max(0, size - _CHECKED_BYTES)
        handle.seek(tail)
        digest.update(handle.read(size - tail))
        return digest.hexdigest()
    return None if size else digest.hexdigest()


def _json_line(data: Any) -> bytes:
    return _json_bytes(data, separators=(",", ":")) + b"\n"


def _end_of_last_line(handle: IO[bytes], size: int, chunk: int = 1 << 16) -> int:
    """Offset just past the last newline of a file, reading backwards from its end."""
    position = size
    while position > 0:
        start = max(0, position - chunk)
        handle.seek(start)
        newline = handle.read(position - start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        position = start
    return 0


class RunFolder:
    """Exclusive, append-only access to one run folder (a context manager holding the lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock: IO[str] | None = None
        self._log: IO[bytes] | None = None
        self._log_end = 0  # offset past the last record known to be whole in the log
        self._state: LogState | None = None
        self._snapshot_current = False  # the snapshot on disk holds all of ``_state``

    def __enter__(self) -> RunFolder:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = (self.path / LOCK).open("w")
        except FileExistsError:
            raise RunFolderError(f"{self.path} is a file, not a run folder") from None
        except OSError as error:  # no permission, read-only disk
            raise RunFolderError(
                f"cannot use {self.path} as a run folder ({error.strerror})"
            ) from None
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise RunFolderError(
                f"another r1eval process is working in {self.path}; wait for it or use "
                "another --run-dir"
            ) from None
        self._log = self._open_log()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._log is not None:
            self._log.flush()
            os.fsync(self._log.fileno())
            self._save_snapshot(self._log)
            self._log.close()
        if self._lock is not None:
            self._lock.close()

    def _open_log(self) -> IO[bytes]:
        handle = (self.path / LOG).open("ab+")
        size = handle.seek(0, os.SEEK_END)
        end = _end_of_last_line(handle, size)
        if end != size:  # cut a torn last line so the next record starts on its own line
            handle.truncate(end)
        self._log_end = end
        return handle

    def _save_snapshot(self, log: IO[bytes]) -> None:
        """Snapshot the state for the next process, unless the snapshot already holds it or
        the log holds more than the state (an append that failed half-way). Failing to write
        it costs the next process a full read of the log, never this run."""
        if self._state is None or self._snapshot_current:
            return
        if os.fstat(log.fileno()).st_size != self._log_end:
            return
        with contextlib.suppress(OSError):
            write_snapshot(self.path, self._state, self._log_end)

    def append(self, record: dict[str, Any]) -> None:
        """Append one record and flush it to the OS at once."""
        assert self._log is not None, "RunFolder used outside its context"
        line = _json_line(record)
        self._snapshot_current = False
        self._log.write(line)
        self._log.flush()
        if self._state is not None:
            self._state.add(record)
        self._log_end += len(line)  # last: an append cut short leaves the log ahead

    def state(self) -> LogState:
        """What the log says: read once, then kept current by ``append`` (so the end of a run
        does not read the whole log again)."""
        if self._state is None:
            self._state, self._snapshot_current = _load_state(self.path)
        return self._state

    def read_manifest(self) -> dict[str, Any] | None:
        return read_manifest(self.path)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_json_atomic(self.path / MANIFEST, manifest)

    def write_scores(self, scores: dict[str, Any]) -> None:
        write_json_atomic(self.path / SCORES, scores)
