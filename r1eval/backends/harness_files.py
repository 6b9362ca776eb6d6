"""Other harnesses' sample files, read as the fields of r1eval's completions lines.

``r1eval grade`` regrades the responses another harness already generated. The format is
detected from the content, never from a flag:

- lm-evaluation-harness ``--log_samples`` (``samples_<task>_<time>.jsonl``): one JSON object a
  document, ``{"doc_id", "doc", "target", "resps": [[response, ...]], "filtered_resps", ...}``.
  Every raw response (``resps``, before lm-eval's filters cut it down) becomes a line. The
  question is the document's ``problem`` / ``question`` text, or, for a task exported by
  ``r1eval export-lm-eval``, its ``question`` id and ``repeat``.
- lighteval details (``details_<task>_<time>.parquet``, written with ``--save-details``): one
  row a document, ``doc`` (``query``: the whole prompt, which contains the question's text),
  ``model_response`` (``text``: the raw responses, ``reasonings``: their separate reasoning, if
  any) and ``metric``. Read with pyarrow (pandas' own dependency).

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
        return list(_lighteval_rows(path))
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


def _lighteval_rows(path: Path) -> Iterator[tuple[int, Fields]]:
    try:
        import pyarrow.parquet as parquet  # type: ignore[import-untyped]
    except ImportError:
        raise DataError(f"completions file {path} is a parquet file (lighteval details): "
                        "reading it needs pyarrow (pip install pyarrow)") from None
    try:
        rows = parquet.read_table(path).to_pylist()
    except Exception as error:
        raise DataError(f"completions file {path}: not a readable parquet file "
                        f"({type(error).__name__})") from None
    for number, row in enumerate(rows, start=1):
        where = f"{path}: row {number}"
        doc, response = row.get("doc"), row.get("model_response")
        if not isinstance(doc, dict) or not isinstance(doc.get("query"), str) \
                or not isinstance(response, dict):
            raise DataError(f"{where}: a lighteval detail needs doc.query and model_response")
        texts = _flat(response.get("text"), where, "model_response.text")
        reasonings = response.get("reasonings") or []
        choices, gold = doc.get("choices") or [], doc.get("gold_index")
        kept = {"gold": choices[gold] if isinstance(gold, int) and gold < len(choices) else None,
                "metric": row.get("metric")}
        for index, text in enumerate(texts):
            reasoning = reasonings[index] if index < len(reasonings) else None
            yield number, {"prompt": doc["query"], "response": text, "reasoning": reasoning,
                           "lighteval": kept}
