"""A run folder on disk: its manifest, its append-only sample log and its scores.

Layout::

    <run-dir>/run.json       configuration and provenance (never an API key): ``Manifest``
    <run-dir>/samples.jsonl  one JSON record a line, appended as each event happens:
                             "completion" (a response), "error" (a request that failed for
                             good this time), "grade" (how a completion was judged); see
                             ``r1eval.store.log``
    <run-dir>/scores.json    per-task scores, rewritten atomically at the end of each run:
                             ``Scores``
    <run-dir>/samples.state.jsonl
                             a snapshot of what the log says (``r1eval.store.snapshot``)

The files' shapes are the models of ``r1eval.store.contracts``. A process working in the folder
holds an ``flock`` on the folder itself (see ``RunFolder``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from pydantic import ValidationError

from r1eval.errors import DiskFull, RunFolderError
from r1eval.store.contracts import FORMATS, Manifest, Scores, check_formats
from r1eval.store.files import (
    disk_full_as_error,
    is_disk_full,
    json_line,
    utf8_safe,
    write_json_atomic,
)
from r1eval.store.log import (
    BULKY_FIELDS,
    ITEM_FIELDS,
    LOG,
    Digest,
    LogState,
    read_completions,
    read_log,
)
from r1eval.store.snapshot import (
    SNAPSHOT,
    load_state,
    load_state_with_digest,
    read_snapshot,
    write_snapshot,
)

MANIFEST = "run.json"
SCORES = "scores.json"
#: Shorter keys (``x``, for a local server that wants none) are not redacted from the log:
#: that would rewrite the model's own words wherever those letters appear.
MIN_SECRET_CHARS = 8

#: What ``r1eval.store.folder`` offers: its own names, and those of the modules it was split into
#: (files, log, snapshot), still importable from here.
__all__ = [
    "BULKY_FIELDS",
    "ITEM_FIELDS",
    "LOG",
    "MANIFEST",
    "MIN_SECRET_CHARS",
    "SCORES",
    "SNAPSHOT",
    "Digest",
    "LogState",
    "RunFolder",
    "disk_full_as_error",
    "is_disk_full",
    "is_run_folder",
    "json_line",
    "load_state",
    "read_completions",
    "read_log",
    "read_manifest",
    "read_scores",
    "read_snapshot",
    "run_folders",
    "utf8_safe",
    "write_json_atomic",
    "write_snapshot",
]


def is_run_folder(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def run_folders(folder: Path) -> list[Path]:
    """``folder`` if it is a run folder, else every run folder below it (sorted by path)."""
    if is_run_folder(folder):
        return [folder]
    return sorted(p.parent for p in folder.rglob(MANIFEST) if is_run_folder(p.parent))


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise RunFolderError(f"{path} is not valid JSON ({error.msg})") from None
    except UnicodeDecodeError:
        raise RunFolderError(f"{path} is not UTF-8 text (a {what} is)") from None
    except OSError as error:
        raise RunFolderError(f"{path} cannot be read ({error.strerror})") from None


def _problem(error: ValidationError) -> str:
    """The first thing wrong, in one line: where in the file, and what."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg'].lower()}" if where else first["msg"].lower()


def read_manifest(run_dir: Path) -> Manifest | None:
    """The run folder's ``run.json``; None when there is none, ``RunFolderError`` when it is not
    a manifest (or one of a newer format than this release reads)."""
    path = run_dir / MANIFEST
    if not path.exists():
        return None
    data = _read_json(path, "run manifest")
    if not isinstance(data, dict):
        raise RunFolderError(f"{path} is not a run manifest")
    for name, kind in _MANIFEST_OBJECTS.items():
        if not isinstance(data.get(name, {}), dict):
            raise RunFolderError(f"{path} is not a run manifest: its {name!r} is not {kind}")
    if not isinstance(data.get("identity", {}).get("endpoint", {}), dict):
        raise RunFolderError(f"{path} is not a run manifest: its identity names no endpoint")
    if not all(isinstance(entry, dict) for entry in data.get("tasks", {}).values()):
        raise RunFolderError(f"{path} is not a run manifest: a task entry is not an object")
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as error:
        raise RunFolderError(f"{path} is not a run manifest: {_problem(error)}") from None
    check_formats(manifest, str(path))
    return manifest


#: The manifest's fields that readers look into, and what each must be.
_MANIFEST_OBJECTS = {"identity": "an object", "tasks": "an object of task entries",
                     "config": "an object"}


def read_scores(run_dir: Path) -> Scores:
    """The run folder's ``scores.json`` (no tasks when there is none yet)."""
    path = run_dir / SCORES
    if not path.exists():
        return Scores()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as error:  # not JSON, not UTF-8, unreadable
        problem = getattr(error, "msg", None) or getattr(error, "strerror", None) or "not UTF-8"
        raise RunFolderError(f"{run_dir}: unreadable run file ({problem})") from None
    try:
        return Scores.model_validate(data)
    except ValidationError as error:
        raise RunFolderError(f"{path} is not a scores file: {_problem(error)}") from None


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
        line = json_line(record)
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
            loaded = load_state_with_digest(self.path)
            self._state, self._digest = loaded.state, loaded.digest
            self._snapshot_current = loaded.snapshot_holds_all
        return self._state

    def read_manifest(self) -> Manifest | None:
        return read_manifest(self.path)

    def write_manifest(self, manifest: Manifest) -> None:
        """Write ``run.json``, stamped with the formats of the files this release writes."""
        stamped = manifest.model_copy(update={"formats": dict(FORMATS)})
        with disk_full_as_error(self.path):
            write_json_atomic(self.path / MANIFEST, stamped.record())

    def write_scores(self, scores: Scores) -> None:
        with disk_full_as_error(self.path):
            write_json_atomic(self.path / SCORES, scores.record())
