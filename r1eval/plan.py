"""Turning loaded tasks into the list of work items of a run, each with its cache key."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from r1eval.data import LoadedTask
from r1eval.types import Prompt, Request, Sample, SamplingParams


@dataclass(frozen=True)
class WorkItem:
    """One response wanted: repeat ``repeat`` of one question of one task."""

    task: str
    sample: Sample
    repeat: int
    prompt: Prompt
    key: str


def request_key(
    endpoint: Mapping[str, str],
    sampling: SamplingParams,
    messages: Iterable[Mapping[str, str]],
    task: str,
    sample_id: str,
    repeat: int,
) -> str:
    """A key built from everything that changes the output, and nothing that does not.

    The repeat index is part of it, so K samples of one question are K distinct entries and
    never collapse into one; timeouts, concurrency and retries are not.
    """
    identity = {
        "endpoint": dict(sorted(endpoint.items())),
        "sampling": dict(_sampling_fields(sampling)),
        "messages": [dict(m) for m in messages],
        "task": task,
        "sample": sample_id,
        "repeat": repeat,
    }
    canonical = json.dumps(identity, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


@functools.lru_cache(maxsize=16)
def _sampling_fields(sampling: SamplingParams) -> tuple[tuple[str, Any], ...]:
    """``asdict(sampling)`` once per setting, not once per key (it deep-copies: most of the
    time of building a plan of 100,000 items)."""
    return tuple(asdict(sampling).items())


def build_plan(
    loaded: Iterable[LoadedTask],
    samples_per_task: Mapping[str, int],
    endpoint: Mapping[str, str],
    sampling: SamplingParams,
) -> list[WorkItem]:
    """Every (task, question, repeat) of the run, task by task, in the dataset's order.

    Repeats whose prompt is the same (every task but GPQA, which shuffles its options per
    repeat) share one ``Prompt`` object, so a plan holds one copy of each question's text.
    """
    items = []
    for task_data in loaded:
        task = task_data.task
        for sample in task_data.samples:
            previous = None
            for repeat in range(samples_per_task[task.name]):
                prompt = task.prompt(sample, repeat)
                prompt = previous if prompt == previous else prompt
                previous = prompt
                key = request_key(endpoint, sampling, prompt.messages, task.name, sample.id, repeat)
                items.append(WorkItem(task.name, sample, repeat, prompt, key))
    return items


def group_requests(
    items: Iterable[WorkItem], sampling: SamplingParams
) -> list[tuple[Request, list[WorkItem]]]:
    """Batch the repeats of a question that share the same messages into one ``n`` request.

    vLLM then shares the prompt's prefill across the n responses. GPQA's options are shuffled
    per repeat, so its repeats have different messages and are sent separately.
    """
    groups: dict[tuple[str, str, Any], list[WorkItem]] = {}
    for item in items:
        messages = tuple(tuple(sorted(m.items())) for m in item.prompt.messages)
        groups.setdefault((item.task, item.sample.id, messages), []).append(item)
    return [
        (Request(messages=members[0].prompt.messages, n=len(members), sampling=sampling), members)
        for members in groups.values()
    ]
