"""Writing run files safely: UTF-8 JSON that any editor reads, atomic replacement, a full disk
as one clear error."""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from r1eval.errors import DiskFull


def json_bytes(data: Any, **options: Any) -> bytes:
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
        tmp.write_bytes(json_bytes(data, indent=2) + b"\n")
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


def json_line(data: Any) -> bytes:
    """``data`` as one compact JSON line (a log record, a snapshot line)."""
    return json_bytes(data, separators=(",", ":")) + b"\n"
