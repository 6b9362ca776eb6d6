"""The shape of the records in a run's sample log, and their conversion to and from types.

Records are built with ``vars``, not ``dataclasses.asdict``: the fields are plain values (and
one nested ``Usage``), and ``asdict``'s recursive deep copy costs 0.1 ms of CPU a sample.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from r1eval.backends.tokens import estimate_tokens
from r1eval.store.logged import completion_from_record, sample_tokens
from r1eval.types import Completion, Grade, Usage, WorkItem

#: ``completion_from_record`` and ``sample_tokens`` read records back: their home is
#: ``r1eval.store.logged`` (still importable from here).
__all__ = ["completion_from_record", "completion_record", "error_record", "grade_record",
           "sample_tokens"]


def _item_fields(item: WorkItem) -> dict[str, Any]:
    return {
        "key": item.key,
        "task": item.task,
        "sample_id": item.sample.id,
        "repeat": item.repeat,
        "sample_metadata": item.sample.metadata,
        "time": round(time.time(), 3),
    }


def completion_record(item: WorkItem, completion: Completion) -> dict[str, Any]:
    """A response as logged: what came back, plus the gold and per-repeat prompt details.

    The prompt text itself is not logged (it is rebuilt from the task; GPQA's authors ask
    that its questions are never written out in plain text).
    """
    if completion.usage.completion_tokens is None:
        completion = replace(completion, usage=_estimated_usage(item, completion))
    return {
        "type": "completion",
        **_item_fields(item),
        **vars(completion),
        "usage": dict(vars(completion.usage)),
        "gold": item.prompt.gold,
        "prompt_metadata": item.prompt.metadata,
    }


def _estimated_usage(item: WorkItem, completion: Completion) -> Usage:
    """Token counts from text length, for endpoints that report no usage."""
    prompt = sum(estimate_tokens(m.get("content")) for m in item.prompt.messages)
    reasoning = estimate_tokens(completion.reasoning)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=estimate_tokens(completion.text) + reasoning,
        reasoning_tokens=reasoning if completion.reasoning is not None else None,
        estimated=True,
    )


def error_record(
    item: WorkItem, message: str, transient: bool, status: int | None
) -> dict[str, Any]:
    """A request that failed for good this time: never graded, retried on the next run."""
    return {
        "type": "error",
        **_item_fields(item),
        "message": message,
        "transient": transient,
        "status": status,
    }


def grade_record(item: WorkItem, grade: Grade) -> dict[str, Any]:
    return {"type": "grade", **_item_fields(item), **vars(grade)}
