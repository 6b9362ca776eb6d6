"""Other harnesses' sample files, read as the fields of r1eval's completions lines.

``r1eval grade`` regrades the responses another harness already generated. The format is
detected from the content, never from a flag:

- lm-evaluation-harness ``--log_samples`` (``samples_<task>_<time>.jsonl``): one JSON object a
  document, ``{"doc_id", "doc", "target", "resps": [[response, ...]], "filtered_resps", ...}``.
  Every raw response (``resps``, before lm-eval's filters cut it down) becomes a line. The
  question is the document's ``problem`` / ``question`` text, or, for a task exported by
  ``r1eval export-lm-eval``, its ``question`` id and ``repeat``.

lighteval's details files are not read yet: lighteval pins a version of latex2sympy2_extended
that math-verify cannot work with, so no test here can have lighteval write one.

What the other harness recorded besides (its document id, target, its own metric values) is
kept as the response's metadata (``fields``); its own verdict is never used.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from r1eval.backends.replay import read_text
from r1eval.errors import DataError

__all__ = ["read_foreign"]

Fields = dict[str, Any]
_PARQUET_MAGIC = b"PAR1"
# Where another harness's document holds the question text (first found wins).
_PROBLEM_KEYS = ("problem", "Problem", "question", "Question")


def read_foreign(path: Path) -> list[tuple[int, Fields]] | None:
    """(row number, response fields) of every response of another harness's file at
    ``path``; None when the file is r1eval's own format."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as error:
        raise DataError(f"completions file {path}: cannot read it ({error})") from None
    if head == _PARQUET_MAGIC:
        raise DataError(f"completions file {path} is a parquet file (lighteval details?): "
                        "not supported yet; convert it to r1eval's JSONL (id or problem, "
                        "response)")
    first = next((line for line in read_text(path).splitlines() if line.strip()), "")
    try:
        record = json.loads(first)
    except json.JSONDecodeError:
        return None
    if isinstance(record, dict) and {"doc", "resps"} <= set(record):
        return list(_lm_eval_samples(path))
    return None


def _lm_eval_samples(path: Path) -> Iterator[tuple[int, Fields]]:
    for number, raw in enumerate(read_text(path).splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{number}"
        try:
            sample = json.loads(raw)
        except json.JSONDecodeError as error:
            raise DataError(f"{where}: not valid JSON ({error.msg})") from None
        if not isinstance(sample, dict) or not isinstance(sample.get("doc"), dict):
            raise DataError(f"{where}: an lm-eval sample needs a 'doc' object")
        responses = _flat(sample.get("resps"), where, "resps")
        question = _question(sample["doc"], len(responses), where)
        kept = {"doc_id": sample.get("doc_id"), "target": sample.get("target"),
                "filter": sample.get("filter")}
        kept.update({name: sample.get(name) for name in sample.get("metrics") or ()})
        for response in responses:
            yield number, {**question, "response": response, "lm_eval": kept}


def _question(doc: Mapping[str, Any], responses: int, where: str) -> Fields:
    """The question of an lm-eval document: r1eval's exported id and repeat, or its text."""
    if {"task", "question", "repeat", "gold", "prompt"} <= set(doc):  # r1eval export-lm-eval
        exported: Fields = {"id": doc["question"]}
        if responses == 1:
            exported["repeat"] = doc["repeat"]
        return exported
    for key in _PROBLEM_KEYS:
        if isinstance(doc.get(key), str):
            return {"problem": doc[key]}
    raise DataError(f"{where}: cannot tell which question this is: its doc has none of the "
                    f"fields {', '.join(_PROBLEM_KEYS)}")


def _flat(value: Any, where: str, name: str) -> list[str]:
    """The responses of a document: a list of strings, or of lists of strings (one a request)."""
    if not isinstance(value, list):
        raise DataError(f"{where}: '{name}' is not a list of responses")
    flat: list[str] = []
    for item in value:
        items = item if isinstance(item, list) else [item]
        if not all(isinstance(text, str) for text in items):
            raise DataError(f"{where}: '{name}' holds something other than text")
        flat.extend(items)
    return flat
