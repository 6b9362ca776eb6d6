"""Loading a task's questions: from the Hub (pinned revision) or from a local data folder."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1eval.errors import DataError
from r1eval.task.definition import Record, Task
from r1eval.types import Sample

DATA_DIR_HINT = "pass --data-dir DIR (or set R1EVAL_DATA_DIR) to read local files instead"


@dataclass(frozen=True)
class LoadedTask:
    """A task's samples, in the dataset's own order, and where exactly they came from."""

    task: Task
    samples: tuple[Sample, ...]
    source: dict[str, Any]


def load_task(task: Task, data_dir: Path | None, limit: int | None = None) -> LoadedTask:
    """Read and map every record of ``task``; ``limit`` keeps the first N questions."""
    if data_dir is not None:
        records, source = _load_local(task, data_dir)
    else:
        records, source = load_hub_records(task)
    samples = samples_of(task, records, source["location"])
    if limit is not None:
        samples = samples[:limit]
    return LoadedTask(task=task, samples=samples, source=source)


def samples_of(task: Task, records: list[Record], where: str) -> tuple[Sample, ...]:
    """The task's samples from its records (either source), checked: every record maps, and
    question ids are unique."""
    samples = tuple(_to_samples(task, task.prepare(records), where))
    _check_unique_ids(task, samples)
    return samples


def _to_samples(task: Task, records: Iterable[Record], where: str) -> Iterable[Sample]:
    for row, record in enumerate(records, start=1):
        try:
            yield task.to_sample(record)
        except (KeyError, ValueError, TypeError, IndexError) as error:
            raise DataError(
                f"{task.name}: malformed record {row} in {where}: {type(error).__name__} {error}"
            ) from None


def _check_unique_ids(task: Task, samples: tuple[Sample, ...]) -> None:
    ids = [s.id for s in samples]
    if len(set(ids)) != len(ids):
        raise DataError(f"{task.name}: question ids are not unique in the data")


def _load_local(task: Task, data_dir: Path) -> tuple[list[Record], dict[str, Any]]:
    path = data_dir / task.local.path
    if not path.exists():
        raise DataError(f"{task.name}: {path} not found (the data folder must be laid out "
                        f"as <dir>/{task.local.path})")
    try:
        records = task.local.reader(path)
    except UnicodeDecodeError as error:
        raise DataError(f"{task.name}: {path} holds text that is not UTF-8 ({error.reason} "
                        f"at byte {error.start})") from None
    except OSError as error:  # no permission, a folder where a file belongs, ...
        raise DataError(f"{task.name}: cannot read {path} ({error.strerror})") from None
    return records, {"kind": "local", "location": str(path), "sha256": checksum(path)}


def load_hub_records(
    task: Task, cache_dir: Path | None = None
) -> tuple[list[Record], dict[str, Any]]:
    """The task's rows from the Hub at its pinned revision (``HF_TOKEN`` for gated data);
    ``cache_dir``: where ``datasets`` keeps its files (default: its own cache)."""
    hub = task.hub
    try:
        import datasets  # imported here: slow to import and not needed with local data

        # Their per-retry warnings would bury our one-line error under a dozen lines.
        for library in ("datasets", "huggingface_hub"):
            logging.getLogger(library).setLevel(logging.ERROR)
        dataset = datasets.load_dataset(
            hub.path, hub.config, split=hub.split, revision=hub.revision,
            cache_dir=None if cache_dir is None else str(cache_dir),
        )
    except OSError as error:  # offline, unreachable, gated or missing dataset
        if _is_gated(error):
            raise DataError(
                f"{task.name}: {hub.path} is gated on the Hugging Face Hub: accept its terms "
                f"at https://huggingface.co/datasets/{hub.path} (logged in), then set HF_TOKEN "
                f"to an access token of that account; or {DATA_DIR_HINT}"
            ) from None
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise DataError(
            f"{task.name}: cannot load {hub.describe()} from the Hugging Face Hub "
            f"({type(error).__name__}: {first_line[:160]}); {DATA_DIR_HINT}"
        ) from None
    source = {
        "kind": "hub",
        "location": hub.describe(),
        "dataset": hub.path,
        "config": hub.config,
        "split": hub.split,
        "revision": hub.revision,
        "fingerprint": getattr(dataset, "_fingerprint", None),
    }
    return [dict(row) for row in dataset], source


def _is_gated(error: BaseException) -> bool:
    """Whether the Hub refused a gated dataset (huggingface_hub's GatedRepoError, which
    ``datasets`` wraps), anywhere in the chain of causes."""
    seen: BaseException | None = error
    while seen is not None:
        if type(seen).__name__ == "GatedRepoError" or "gated" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def checksum(path: Path) -> str:
    """SHA-256 of a file (as ``sha256sum`` prints it), or of a folder: the SHA-256 of its
    ``sha256sum``-style listing (one "<sha256>  <relative path>" line per file, sorted)."""
    if not path.is_dir():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    listing = "".join(
        f"{checksum(file)}  {file.relative_to(path).as_posix()}\n"
        for file in sorted(p for p in path.rglob("*") if p.is_file())
    )
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()


# Readers: local files -> records shaped like the Hub dataset's rows.


def read_jsonl(path: Path) -> list[Record]:
    records = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{number}: not valid JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{number}: expected a JSON object")
            records.append(record)
    return records


def write_jsonl(records: list[Record], path: Path) -> None:
    """The inverse of ``read_jsonl``: one JSON object a line, UTF-8."""
    with path.open("w", encoding="utf-8") as lines:
        for record in records:
            lines.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")


def read_csv_rows(text: str, where: str, columns: int | None = None) -> list[list[str]]:
    """Rows of a CSV text, with a real CSV reader (quoted fields may hold newlines)."""
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as error:
        raise DataError(f"{where}: bad CSV ({error})") from None
    for number, row in enumerate(rows, start=1):
        if columns is not None and len(row) != columns:
            raise DataError(f"{where}: row {number} has {len(row)} fields, expected {columns}")
    return rows


def csv_text(rows: Iterable[Iterable[Any]]) -> str:
    """The inverse of ``read_csv_rows``: fields quoted where needed (newlines, commas)."""
    text = io.StringIO(newline="")
    csv.writer(text, lineterminator="\n").writerows(rows)
    return text.getvalue()


def read_zip_member(path: Path, member: str, password: bytes) -> str:
    """One member of a (possibly password-protected) zip, decoded in memory, never on disk."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open(member, pwd=password) as handle:
            return handle.read().decode("utf-8")
    except KeyError:
        raise DataError(f"{path}: no member {member}") from None
    except RuntimeError as error:  # zipfile's "Bad password for file"
        raise DataError(f"{path}: cannot open {member} ({error})") from None
    except (zipfile.BadZipFile, zlib.error, UnicodeDecodeError) as error:
        raise DataError(f"{path}: unreadable zip ({error})") from None
