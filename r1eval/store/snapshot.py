"""The log's snapshot (``samples.state.jsonl``): what the log says, written when a process
closes the run folder, so that reopening a big run need not parse the whole log. Only a cache,
used when proven to be of the log's bytes (see ``load_state``)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from r1eval.errors import RunFolderError
from r1eval.gc_pause import no_cyclic_gc
from r1eval.store.files import json_line
from r1eval.store.log import BULKY_FIELDS, ITEM_FIELDS, LOG, Digest, LogState, read_log
from r1eval.store.logged import (
    LoggedCompletion,
    LoggedError,
    LoggedGrade,
    LoggedRecord,
    LoggedUsage,
    logged_completion,
    logged_error,
    logged_grade,
)

SNAPSHOT = "samples.state.jsonl"


def load_state(run_dir: Path) -> LogState:
    """What the log of ``run_dir`` says: from its snapshot and the records appended since, when
    the snapshot is proven to be of this log, else from the whole log (the same state either
    way, and the same checks: a corrupt record in the middle of the log is an error)."""
    return load_state_with_digest(run_dir).state


@dataclass
class LoadedState:
    """A log state as loaded, with what a snapshot of it must record."""

    state: LogState
    digest: Digest  # of the log bytes the state was read from
    snapshot_holds_all: bool  # the snapshot on disk already holds all of ``state``


def load_state_with_digest(run_dir: Path) -> LoadedState:
    with no_cyclic_gc():
        snapshot = _read_snapshot(run_dir)
        state, digest, current = snapshot or (LogState(), Digest(), False)
        start = digest.size
        for record in read_log(run_dir / LOG, start, digest):
            try:
                state.add(record)
            except (KeyError, AttributeError) as error:
                problem = f"has no {error}" if isinstance(error, KeyError) else "is not an object"
                raise RunFolderError(f"{run_dir / LOG}: a record {problem}: not a record r1eval "
                                     "wrote") from None
    return LoadedState(state, digest, current and digest.size == start)


# The snapshot: JSON lines. A header naming the log prefix it stands for: its size and the
# SHA-256 of all its bytes (``log_sha256``, checked in one pass over the log before the
# snapshot is trusted), and the fields of each view; then ``["completions" | "grades" |
# "errors", [row, ...]]`` lines in the state's order, a row a view (its fields in order, a
# completion's usage a row too), at most ``_SNAPSHOT_CHUNK`` rows a line (writing it never holds
# a second copy of the state in memory); then ``["end", {section: count}, sha256]``, the SHA-256
# of every line before it, header included: an edit anywhere in the snapshot, or in the log it
# stands for, makes it ignored, and the state is read from the whole log. Format 2 (r1eval
# 0.1's) held ``{key: record}`` objects instead of rows: it is still read, and written again in
# this format when a process closes the folder.
_SNAPSHOT_FORMAT = 3
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
            write(out, json_line(_snapshot_header(log_size, log_sha256)))
            for section in _SECTIONS:
                views = list(getattr(state, section).values())
                for start in range(0, len(views), _SNAPSHOT_CHUNK):
                    write(out, json_line([section, views[start : start + _SNAPSHOT_CHUNK]]))
            out.write(json_line(["end", _counts(state), body.hexdigest()]))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_snapshot(run_dir: Path) -> tuple[LogState, int] | None:
    """The state the snapshot records and the log offset up to which it holds, or None when
    it is missing, unreadable, of another format, altered, or not of this log's content."""
    snapshot = _read_snapshot(run_dir)
    return None if snapshot is None else (snapshot[0], snapshot[1].size)


def _read_snapshot(run_dir: Path) -> tuple[LogState, Digest, bool] | None:
    """The snapshot's state, the digest of the log bytes it stands for (to go on with) and
    whether it is of the current format."""
    try:
        with (run_dir / SNAPSHOT).open("rb") as lines:
            first = next(lines, b"null")
            header = json.loads(first)
            if not isinstance(header, dict) or not isinstance(header.get("log_size"), int):
                return None
            size, claimed = header["log_size"], header.get("log_sha256")
            if header == _snapshot_header(size, claimed):
                build = _FROM_ROW
            elif header == _format_2_header(size, claimed):
                build = _FROM_RECORD
            else:
                return None
            body = Digest()
            body.update(first)
            state = _snapshot_state(lines, body, build)
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            RecursionError):  # not JSON, or not of this shape
        return None
    if state is None:
        return None
    digest = _prefix_digest(run_dir / LOG, size)
    if digest is None or digest.hexdigest() != claimed:
        return None
    return state, digest, build is _FROM_ROW


def _completion_from_row(row: list[Any]) -> LoggedCompletion:
    row[_USAGE_AT] = LoggedUsage._make(row[_USAGE_AT])
    return LoggedCompletion._make(row)


_USAGE_AT = LoggedCompletion._fields.index("usage")
#: How each section's views are read back: from this format's rows, from format 2's records.
_FROM_ROW: dict[str, Callable[[Any], LoggedRecord]] = {
    "completions": _completion_from_row, "grades": LoggedGrade._make,
    "errors": LoggedError._make}
_FROM_RECORD: dict[str, Callable[[Any], LoggedRecord]] = {
    "completions": logged_completion, "grades": logged_grade, "errors": logged_error}


def _snapshot_state(
    lines: Iterable[bytes], body: Digest, build: dict[str, Callable[[Any], LoggedRecord]]
) -> LogState | None:
    """The state from the snapshot's record lines; None unless they are whole, well-formed
    and those the end line's digest was made of."""
    state = LogState()
    for line in lines:
        section, records, *rest = json.loads(line)
        if section == "end":
            whole = records == _counts(state) and rest == [body.hexdigest()]
            return state if whole else None
        body.update(line)
        if section not in _SECTIONS or not isinstance(records, list if build is _FROM_ROW
                                                                 else dict):
            return None
        views: dict[str, LoggedRecord] = getattr(state, section)
        make = build[section]
        for record in records.values() if isinstance(records, dict) else records:
            view = make(record)
            views[view.key] = view
    return None  # cut short: no end line


def _counts(state: LogState) -> dict[str, int]:
    return {section: len(getattr(state, section)) for section in _SECTIONS}


def _snapshot_header(size: int, log_sha256: object) -> dict[str, Any]:
    """What identifies the log prefix a snapshot stands for (and the fields of its rows)."""
    return {
        "format": _SNAPSHOT_FORMAT,
        "fields": {"completions": list(LoggedCompletion._fields),
                   "usage": list(LoggedUsage._fields), "grades": list(LoggedGrade._fields),
                   "errors": list(LoggedError._fields)},
        "log_size": size,
        "log_sha256": log_sha256,
    }


def _format_2_header(size: int, log_sha256: object) -> dict[str, Any]:
    """The header of a format 2 snapshot (and what its records leave out)."""
    return {
        "format": 2,
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
