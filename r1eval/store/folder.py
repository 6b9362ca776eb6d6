"""A run folder on disk: its manifest, its append-only sample log and its scores.

Layout::

    <run-dir>/run.json       configuration and provenance (never an API key)
    <run-dir>/samples.jsonl  one JSON record a line, appended as each event happens:
                             "completion" (a response), "error" (a request that failed for
                             good this time), "grade" (how a completion was judged)
    <run-dir>/scores.json    per-task scores, rewritten atomically at the end of each run
    <run-dir>/samples.state.jsonl
                             a snapshot of what the log says (``LogState``), written
                             atomically when a process closes the folder: a cache, used
                             only when proven to be of the log's bytes (see ``load_state``)

The log is only ever appended to, one flushed line per record, so a crash loses at most the
requests in flight. A torn last line (the process died mid-write) is detected and cut off when
the folder is reopened, never read as a record. A process working in the folder holds an
``flock`` on the folder itself (see ``RunFolder``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from r1eval.errors import DiskFull, RunFolderError
from r1eval.gc_pause import no_cyclic_gc

MANIFEST = "run.json"
LOG = "samples.jsonl"
SNAPSHOT = "samples.state.jsonl"
SCORES = "scores.json"
#: Shorter keys (``x``, for a local server that wants none) are not redacted from the log:
#: that would rewrite the model's own words wherever those letters appear.
MIN_SECRET_CHARS = 8


def _json_bytes(data: Any, **options: Any) -> bytes:
    """``data`` as JSON in UTF-8, readable in any editor.

    A lone surrogate (a model's broken UTF-16, or an undecodable byte of a command-line
    argument) cannot be encoded in UTF-8: it is written as its JSON escape ``\\udXXX`` instead
    of crashing the run, and reads back as the same string.
    """
    text = json.dumps(data, ensure_ascii=False, **options)
    return text.encode("utf-8", errors="backslashreplace")


def utf8_safe(text: str) -> str:
    """``text`` with each lone surrogate written as its escape ``\\udXXX``, as the log writes
    it: what every UTF-8 writer (a file, a terminal, pyarrow's strings) accepts."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return text


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old file or the new one, never a half-written one
    (nor a temporary file left behind when the write fails)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(_json_bytes(data, indent=2) + b"\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def disk_full_as_error(run_dir: Path) -> Iterator[None]:
    """A write that finds the disk full raises ``DiskFull``: one line, not a traceback."""
    try:
        yield
    except OSError as error:
        if is_disk_full(error):
            raise DiskFull(run_dir) from None
        raise


def read_log(
    path: Path, start: int = 0, digest: Digest | None = None
) -> Iterator[dict[str, Any]]:
    """The records of a sample log (from byte ``start``, the start of a line), skipping a torn
    (unterminated, unparsable) last line; each whole line read is also fed to ``digest``."""
    if not path.exists():
        return
    with path.open("rb") as handle:
        handle.seek(start)
        for line in handle:
            if not line.endswith(b"\n"):
                return  # torn last line: the writer died before finishing it
            if digest is not None:
                digest.update(line)
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                raise RunFolderError(f"{path}: corrupt record in the middle of the log") from None


class Digest:
    """SHA-256 of the bytes fed so far, and how many there were."""

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes) -> None:
        self._sha256.update(data)
        self.size += len(data)

    def hexdigest(self) -> str:
        return self._sha256.hexdigest()


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
    except UnicodeDecodeError:
        raise RunFolderError(f"{path} is not UTF-8 text (a run manifest is)") from None
    except OSError as error:
        raise RunFolderError(f"{path} cannot be read ({error.strerror})") from None
    if not isinstance(data, dict):
        raise RunFolderError(f"{path} is not a run manifest")
    for name, kind in _MANIFEST_OBJECTS.items():
        if not isinstance(data.get(name, {}), dict):
            raise RunFolderError(f"{path} is not a run manifest: its {name!r} is not {kind}")
    if not isinstance(data.get("identity", {}).get("endpoint", {}), dict):
        raise RunFolderError(f"{path} is not a run manifest: its identity names no endpoint")
    if not all(isinstance(entry, dict) for entry in data.get("tasks", {}).values()):
        raise RunFolderError(f"{path} is not a run manifest: a task entry is not an object")
    return data


#: The manifest's fields that readers look into, and what each must be.
_MANIFEST_OBJECTS = {"identity": "an object", "tasks": "an object of task entries",
                     "config": "an object"}


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
    the snapshot is proven to be of this log, else from the whole log (the same state either
    way, and the same checks: a corrupt record in the middle of the log is an error)."""
    return _load_state(run_dir).state


@dataclass
class _Loaded:
    """A log state as loaded, with what a snapshot of it must record."""

    state: LogState
    digest: Digest  # of the log bytes the state was read from
    snapshot_holds_all: bool  # the snapshot on disk already holds all of ``state``


def _load_state(run_dir: Path) -> _Loaded:
    with no_cyclic_gc():
        snapshot = _read_snapshot(run_dir)
        state, digest = snapshot or (LogState(), Digest())
        start = digest.size
        for record in read_log(run_dir / LOG, start, digest):
            state.add(record)
    return _Loaded(state, digest, snapshot is not None and digest.size == start)


# The snapshot: JSON lines. A header naming the log prefix it stands for: its size and the
# SHA-256 of all its bytes (``log_sha256``, checked in one pass over the log before the
# snapshot is trusted); then ``["completions" | "grades" | "errors", {key: record}]`` lines in
# the state's order, at most ``_SNAPSHOT_CHUNK`` records a line (writing it never holds a second
# copy of the state in memory); then ``["end", {section: count}, sha256]``, the SHA-256 of every
# line before it, header included: an edit anywhere in the snapshot, or in the log it stands
# for, makes it ignored, and the state is read from the whole log.
_SNAPSHOT_FORMAT = 2
_SNAPSHOT_CHUNK = 10_000
_SECTIONS = ("completions", "grades", "errors")
_HASH_BLOCK = 1 << 20


def write_snapshot(run_dir: Path, state: LogState, log_size: int, log_sha256: str) -> None:
    """Record ``state`` as what the first ``log_size`` bytes of the log say (atomically);
    ``log_sha256`` is the SHA-256 of those bytes."""
    path = run_dir / SNAPSHOT
    tmp = path.with_name(f".{path.name}.tmp")
    body = Digest()

    def write(out: IO[bytes], line: bytes) -> None:
        body.update(line)
        out.write(line)

    try:
        with tmp.open("wb") as out:
            write(out, _json_line(_snapshot_header(log_size, log_sha256)))
            for section in _SECTIONS:
                records = list(getattr(state, section).items())
                for start in range(0, len(records), _SNAPSHOT_CHUNK):
                    chunk = dict(records[start : start + _SNAPSHOT_CHUNK])
                    write(out, _json_line([section, chunk]))
            out.write(_json_line(["end", _counts(state), body.hexdigest()]))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_snapshot(run_dir: Path) -> tuple[LogState, int] | None:
    """The state the snapshot records and the log offset up to which it holds, or None when
    it is missing, unreadable, of another format, altered, or not of this log's content."""
    snapshot = _read_snapshot(run_dir)
    return None if snapshot is None else (snapshot[0], snapshot[1].size)


def _read_snapshot(run_dir: Path) -> tuple[LogState, Digest] | None:
    """The snapshot's state and the digest of the log bytes it stands for (to go on with)."""
    try:
        with (run_dir / SNAPSHOT).open("rb") as lines:
            first = next(lines, b"null")
            header = json.loads(first)
            if not isinstance(header, dict) or not isinstance(header.get("log_size"), int):
                return None
            size, claimed = header["log_size"], header.get("log_sha256")
            if header != _snapshot_header(size, claimed):
                return None
            body = Digest()
            body.update(first)
            state = _snapshot_state(lines, body)
    except (OSError, ValueError, TypeError, RecursionError):  # not JSON, or not of this shape
        return None
    if state is None:
        return None
    digest = _prefix_digest(run_dir / LOG, size)
    if digest is None or digest.hexdigest() != claimed:
        return None
    return state, digest


def _snapshot_state(lines: Iterable[bytes], body: Digest) -> LogState | None:
    """The state from the snapshot's record lines; None unless they are whole, well-formed
    and those the end line's digest was made of."""
    state = LogState()
    for line in lines:
        section, records, *rest = json.loads(line)
        if section == "end":
            whole = records == _counts(state) and rest == [body.hexdigest()]
            return state if whole else None
        body.update(line)
        if section not in _SECTIONS or not isinstance(records, dict):
            return None
        getattr(state, section).update(records)
    return None  # cut short: no end line


def _counts(state: LogState) -> dict[str, int]:
    return {section: len(getattr(state, section)) for section in _SECTIONS}


def _snapshot_header(size: int, log_sha256: object) -> dict[str, Any]:
    """What identifies the log prefix a snapshot stands for (and what the state leaves out)."""
    return {
        "format": _SNAPSHOT_FORMAT,
        "kept_out": [list(BULKY_FIELDS), list(ITEM_FIELDS)],
        "log_size": size,
        "log_sha256": log_sha256,
    }


def _prefix_digest(log: Path, size: int) -> Digest | None:
    """SHA-256 of the first ``size`` bytes of the log, read in one pass; None when the log is
    shorter than ``size``."""
    digest = Digest()
    try:
        with log.open("rb") as handle:
            if os.fstat(handle.fileno()).st_size < size:
                return None
            left = size
            while left:
                block = handle.read(min(left, _HASH_BLOCK))
                if not block:
                    return None
                digest.update(block)
                left -= len(block)
    except FileNotFoundError:
        return None if size else digest
    return digest


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
    """Exclusive, append-only access to one run folder (a context manager holding the lock).

    The lock is ``flock`` on the folder itself, held on an open descriptor for as long as the
    process works in it: the system releases it when the process dies, and no file that could
    be deleted stands for it. Every text of ``secrets`` (the API key) is logged as ``***``
    (if at least ``MIN_SECRET_CHARS`` long).
    A full disk raises ``DiskFull``; when the folder was made by this process and nothing was
    logged yet, it is removed again.
    """

    def __init__(self, path: Path, secrets: Iterable[str] = ()) -> None:
        self.path = path
        self._secrets = [s.encode() for s in secrets if len(s) >= MIN_SECRET_CHARS]
        self._lock: int | None = None
        self._created = False
        self._log: IO[bytes] | None = None
        self._log_end = 0  # offset past the last record known to be whole in the log
        self._state: LogState | None = None
        self._digest: Digest | None = None  # of the log bytes ``_state`` holds
        self._snapshot_current = False  # the snapshot on disk holds all of ``_state``

    def __enter__(self) -> RunFolder:
        self._created = not self.path.exists()
        try:
            with disk_full_as_error(self.path):
                self.path.mkdir(parents=True, exist_ok=True)
            self._lock = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        except (FileExistsError, NotADirectoryError):
            raise RunFolderError(f"{self.path} is a file, not a run folder") from None
        except OSError as error:  # no permission, read-only disk
            raise RunFolderError(
                f"cannot use {self.path} as a run folder ({error.strerror})"
            ) from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            self._lock = None
            raise RunFolderError(
                f"another r1eval process is working in {self.path}; wait for it or use "
                "another --run-dir"
            ) from None
        try:
            with disk_full_as_error(self.path):
                self._log = self._open_log()
        except BaseException:
            self._release(remove_if_unused=True)
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        disk_full = isinstance(exc, DiskFull)
        try:
            with disk_full_as_error(self.path):
                self._close_log(snapshot=not disk_full)
        finally:
            self._release(remove_if_unused=disk_full)

    def _close_log(self, snapshot: bool) -> None:
        if self._log is None:
            return
        log, self._log = self._log, None
        try:
            log.flush()
            os.fsync(log.fileno())
            if snapshot:
                self._save_snapshot(log)
        finally:
            with contextlib.suppress(OSError):  # a flush that failed: the line stays torn
                log.close()

    def _release(self, remove_if_unused: bool) -> None:
        """Unlock; remove the folder again if this process made it and logged nothing."""
        if remove_if_unused and self._created:
            with contextlib.suppress(OSError):
                if (self.path / LOG).stat().st_size == 0:
                    (self.path / LOG).unlink()
                    (self.path / MANIFEST).unlink(missing_ok=True)
                    self.path.rmdir()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

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
        if self._state is None or self._digest is None or self._snapshot_current:
            return
        if not self._log_end == self._digest.size == os.fstat(log.fileno()).st_size:
            return
        with contextlib.suppress(OSError):
            write_snapshot(self.path, self._state, self._log_end, self._digest.hexdigest())

    def append(self, record: dict[str, Any]) -> None:
        """Append one record and flush it to the OS at once."""
        assert self._log is not None, "RunFolder used outside its context"
        line = _json_line(record)
        if any(secret in line for secret in self._secrets):
            for secret in self._secrets:
                line = line.replace(secret, b"***")
            record = json.loads(line)  # the state holds what the log holds
        self._snapshot_current = False
        with disk_full_as_error(self.path):
            self._log.write(line)
            self._log.flush()
        if self._state is not None:
            self._state.add(record)
        if self._digest is not None:
            self._digest.update(line)
        self._log_end += len(line)  # last: an append cut short leaves the log ahead

    def state(self) -> LogState:
        """What the log says: read once, then kept current by ``append`` (so the end of a run
        does not read the whole log again)."""
        if self._state is None:
            loaded = _load_state(self.path)
            self._state, self._digest = loaded.state, loaded.digest
            self._snapshot_current = loaded.snapshot_holds_all
        return self._state

    def read_manifest(self) -> dict[str, Any] | None:
        return read_manifest(self.path)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        with disk_full_as_error(self.path):
            write_json_atomic(self.path / MANIFEST, manifest)

    def write_scores(self, scores: dict[str, Any]) -> None:
        with disk_full_as_error(self.path):
            write_json_atomic(self.path / SCORES, scores)
