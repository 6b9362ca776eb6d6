"""The sample log (``samples.jsonl``): reading its records back, and ``LogState``, what it says
about each request key.

The log is only ever appended to, one flushed line per record, so a crash loses at most the
requests in flight. A torn last line (the process died mid-write) is never read as a record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1eval.errors import RunFolderError

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


