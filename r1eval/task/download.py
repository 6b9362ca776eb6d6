"""``r1eval data download``: the tasks' Hub datasets -> the local layout r1eval reads.

Prepared once on a machine with Hub access, the folder serves ``--data-dir`` on machines
without it. Each task's rows come from its pinned revision, are written by the task's own
``LocalSource.writer`` and read back with its reader: the download succeeds only if the
folder yields exactly the samples the Hub does, in the same order. Everything is staged in a
hidden folder inside the target and moved into place at the end, so a failure leaves nothing
half-written; the Hub's files and ``datasets``' cache for the download live there too and go
with it (GPQA's rows pass through them; r1eval itself writes them only into the protected zip).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1eval import __version__
from r1eval.errors import DataError, UsageError
from r1eval.task.data import checksum, load_hub_records, load_task, samples_of
from r1eval.task.definition import Task

SUMS = "SHA256SUMS"
SOURCES = "r1eval-sources.json"


@dataclass(frozen=True)
class Downloaded:
    """One task stored: where, how many questions, its checksum as runs record it, from where."""

    task: str
    path: Path
    questions: int
    sha256: str
    source: dict[str, Any]


def download(tasks: list[Task], to: Path, replace: bool = False) -> list[Downloaded]:
    """Store ``tasks`` under ``to``; an existing file is replaced only with ``replace``."""
    _check_targets(tasks, to, replace)
    to.mkdir(parents=True, exist_ok=True)
    done = []
    with tempfile.TemporaryDirectory(dir=to, prefix=".r1eval-download-") as scratch, \
            _hub_cache(Path(scratch) / "hub"):
        staged = Path(scratch) / "data"
        for task in tasks:
            done.append(_stage(task, staged, Path(scratch) / "hf-cache"))
        for task in tasks:
            _move(staged / task.local.path, to / task.local.path)
    stored = [Downloaded(d.task, to / d.path.relative_to(staged), d.questions, d.sha256,
                         d.source) for d in done]
    _record(stored, to)
    return stored


@contextmanager
def _hub_cache(folder: Path) -> Iterator[None]:
    """The Hub files ``datasets`` fetches go to ``folder`` (deleted afterwards), not to the
    shared Hugging Face cache: GPQA's rows arrive from the Hub as plain CSV, and the only copy
    left should be the protected zip. huggingface_hub reads this setting at each download."""
    from huggingface_hub import constants

    before = constants.HF_HUB_CACHE
    constants.HF_HUB_CACHE = str(folder)
    try:
        yield
    finally:
        constants.HF_HUB_CACHE = before


def _check_targets(tasks: list[Task], to: Path, replace: bool) -> None:
    if to.exists() and not to.is_dir():
        raise UsageError(f"--to {to} is a file, not a folder")
    missing = [t.name for t in tasks if t.local.writer is None]
    if missing:
        raise UsageError(f"{', '.join(missing)}: no local layout to download into (the task "
                         "has no writer)")
    existing = [str(to / t.local.path) for t in tasks if (to / t.local.path).exists()]
    if existing and not replace:
        raise UsageError(f"{', '.join(existing)} already there; --force replaces it")


def _stage(task: Task, staged: Path, cache: Path) -> Downloaded:
    """Fetch, write, read back and compare one task, inside the staging folder."""
    records, source = load_hub_records(task, cache)
    expected = samples_of(task, records, source["location"])
    target = staged / task.local.path
    target.parent.mkdir(parents=True, exist_ok=True)
    writer = task.local.writer
    if writer is None:  # _check_targets refuses these before anything is fetched
        raise UsageError(f"{task.name}: no local layout to download into")
    writer(records, target)
    again = load_task(task, staged).samples
    if again != expected:
        differ = next((i for i, (a, b) in enumerate(zip(again, expected, strict=False))
                       if a != b), min(len(again), len(expected)))
        raise DataError(f"{task.name}: the stored files do not read back as the Hub's rows "
                        f"(first difference at question {differ + 1}); nothing was written")
    return Downloaded(task.name, target, len(expected), checksum(target), source)


def _move(staged: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    staged.replace(target)


def _record(stored: list[Downloaded], to: Path) -> None:
    """``SHA256SUMS`` (``sha256sum -c`` checks it) and where each task's files came from."""
    sums: dict[str, str] = {}
    if (to / SUMS).exists():
        for line in (to / SUMS).read_text(encoding="utf-8").splitlines():
            digest, _, name = line.partition("  ")
            sums[name] = digest
    sources = json.loads((to / SOURCES).read_text(encoding="utf-8")) \
        if (to / SOURCES).exists() else {}
    for item in stored:
        root = item.path.relative_to(to).as_posix()
        for name in [n for n in sums if n == root or n.startswith(root + "/")]:
            del sums[name]
        files = sorted(item.path.rglob("*")) if item.path.is_dir() else [item.path]
        for file in (f for f in files if f.is_file()):
            sums[file.relative_to(to).as_posix()] = checksum(file)
        sources[item.task] = {
            "path": root, "questions": item.questions, "sha256": item.sha256,
            "source": item.source, "downloaded": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "r1eval_version": __version__,
        }
    (to / SUMS).write_text("".join(f"{d}  {n}\n" for n, d in sorted(sums.items())),
                           encoding="utf-8")
    (to / SOURCES).write_text(json.dumps(sources, indent=2, sort_keys=True) + "\n",
                              encoding="utf-8")
