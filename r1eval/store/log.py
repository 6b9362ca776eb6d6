"""The sample log (``samples.jsonl``): reading its records back, and ``LogState``, what it says
about each request key.

The log is only ever appended to, one flushed line per record, so a crash loses at most the
requests in flight. A torn last line (the process died mid-write) is never read as a record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1eval.errors import RunFolderError
from r1eval.store.logged import (
    BULKY_FIELDS,
    ITEM_FIELDS,
    LoggedCompletion,
    LoggedError,
    LoggedGrade,
    completion_from_record,
    kind_and_key,
    logged,
)
from r1eval.types import Completion

__all__ = ["BULKY_FIELDS", "ITEM_FIELDS", "LOG", "Digest", "LogState", "read_completions",
           "read_log", "read_responses"]

LOG = "samples.jsonl"


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


@dataclass
class LogState:
    """What the log says about each request key: the latest completion, grade and error, as
    the slim views of ``r1eval.store.logged`` (a completion without its text and reasoning, a
    grade without what its completion already says), so the state of a run of 100,000 long
    reasoning traces fits in memory; ``read_responses`` fetches the text of the few keys that
    need it.
    """

    completions: dict[str, LoggedCompletion] = field(default_factory=dict)
    grades: dict[str, LoggedGrade] = field(default_factory=dict)
    errors: dict[str, LoggedError] = field(default_factory=dict)

    def add(self, record: Mapping[str, Any]) -> None:
        """Take in one parsed log record (``KeyError`` when it lacks a field of its kind)."""
        view = logged(record)
        if isinstance(view, LoggedCompletion):
            self.completions[view.key] = view
            self.errors.pop(view.key, None)
        elif isinstance(view, LoggedGrade):
            self.grades[view.key] = view
        elif isinstance(view, LoggedError) and view.key not in self.completions:
            self.errors[view.key] = view


def read_completions(run_dir: Path, keys: set[str]) -> dict[str, dict[str, Any]]:
    """The full completion records (with text) of ``keys``, as the log holds them."""
    found = {}
    for record in read_log(run_dir / LOG):
        kind, key = kind_and_key(record)
        if kind == "completion" and key in keys:
            found[str(key)] = record
    return found


def read_responses(run_dir: Path, keys: set[str]) -> dict[str, Completion]:
    """The responses (with their text and reasoning) logged for ``keys``."""
    return {key: completion_from_record(record)
            for key, record in read_completions(run_dir, keys).items()}
