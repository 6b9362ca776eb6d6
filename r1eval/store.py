"""A run folder on disk: its manifest, its append-only sample log and its scores.

Layout::

    <run-dir>/run.json       configuration and provenance (never an API key)
    <run-dir>/samples.jsonl  one JSON record a line, appended as each event happens:
                             "completion" (a response), "error" (a request that failed for
                             good this time), "grade" (how a completion was judged)
    <run-dir>/scores.json    per-task scores, rewritten atomically at the end of each run
    <run-dir>/.lock          held while a process works in the folder

The log is only ever appended to, one flushed line per record, so a crash loses at most the
requests in flight. A torn last line (the process died mid-write) is detected and cut off when
the folder is reopened, never read as a record.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from r1eval.errors import RunFolderError

MANIFEST = "run.json"
LOG = "samples.jsonl"
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


def read_log(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a sample log, skipping a torn (unterminated, unparsable) last line."""
    if not path.exists():
        return
    with path.open("rb") as handle:
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


def load_state(run_dir: Path) -> LogState:
    state = LogState()
    with _no_cyclic_gc():
        for record in read_log(run_dir / LOG):
            state.add(record)
    return state


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Reading a log makes hundreds of thousands of dicts and no reference cycles: the cyclic
    collector would scan them again and again (a third of the time of reading a big log)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
        self._state: LogState | None = None

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
            self._log.close()
        if self._lock is not None:
            self._lock.close()

    def _open_log(self) -> IO[bytes]:
        handle = (self.path / LOG).open("ab+")
        size = handle.seek(0, os.SEEK_END)
        end = _end_of_last_line(handle, size)
        if end != size:  # cut a torn last line so the next record starts on its own line
            handle.truncate(end)
        return handle

    def append(self, record: dict[str, Any]) -> None:
        """Append one record and flush it to the OS at once."""
        assert self._log is not None, "RunFolder used outside its context"
        self._log.write(_json_bytes(record, separators=(",", ":")) + b"\n")
        self._log.flush()
        if self._state is not None:
            self._state.add(record)

    def state(self) -> LogState:
        """What the log says: read once, then kept current by ``append`` (so the end of a run
        does not read the whole log again)."""
        if self._state is None:
            self._state = load_state(self.path)
        return self._state

    def read_manifest(self) -> dict[str, Any] | None:
        path = self.path / MANIFEST
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise RunFolderError(f"{path} is not valid JSON ({error.msg})") from None
        if not isinstance(data, dict):
            raise RunFolderError(f"{path} is not a run manifest")
        return data

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_json_atomic(self.path / MANIFEST, manifest)

    def write_scores(self, scores: dict[str, Any]) -> None:
        write_json_atomic(self.path / SCORES, scores)
