"""Turning loaded tasks into the list of work items of a run, each with its cache key."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from r1eval.errors import UsageError
from r1eval.gc_pause import no_cyclic_gc
from r1eval.task.data import LoadedTask
from r1eval.task.definition import Task
from r1eval.types import Prompt, Request, Sample, SamplingParams, WorkItem

__all__ = [
    "MAX_PLANNED_RESPONSES",
    "WorkItem",  # defined with the core types (r1eval.types); the plan is a list of them
    "build_plan",
    "check_plan_size",
    "group_requests",
    "repeat_keys",
    "request_key",
    "with_system_prompt",
]


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
    never collapse into one; timeouts, concurrency and retries are not. The key is the first
    32 hex digits of the SHA-256 of the identity's canonical JSON (sorted keys, no spaces).
    """
    return repeat_keys(endpoint, sampling, messages, task, sample_id)(repeat)


def repeat_keys(
    endpoint: Mapping[str, str],
    sampling: SamplingParams,
    messages: Iterable[Mapping[str, str]],
    task: str,
    sample_id: str,
) -> Callable[[int], str]:
    """``request_key`` of each repeat of one prompt, the canonical JSON built only once.

    Sorted keys put "repeat" between "messages" and "sample", so the canonical JSON is a
    fixed head, the repeat number and a fixed tail: the head is hashed once and each key
    only adds its repeat and the tail (serialising the identity of each of 100,000 samples
    was most of the time of building a plan).
    """
    head = _canonical({"endpoint": dict(endpoint), "messages": [dict(m) for m in messages]})
    tail = _canonical({"sample": sample_id, "sampling": dict(_sampling_fields(sampling)),
                       "task": task})
    before_repeat = hashlib.sha256(f'{head[:-1]},"repeat":'.encode())
    after_repeat = f",{tail[1:]}"

    def key(repeat: int) -> str:
        digest = before_repeat.copy()
        digest.update(f"{repeat:d}{after_repeat}".encode())
        return digest.hexdigest()[:32]

    return key


def _canonical(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@functools.lru_cache(maxsize=16)
def _sampling_fields(sampling: SamplingParams) -> tuple[tuple[str, Any], ...]:
    """``sampling.record()`` once per setting, not once per key (it deep-copies: most of the
    time of building a plan of 100,000 items)."""
    return tuple(sampling.record().items())


#: The most responses one run plans (MMLU x 71, MATH-500 x 1024). Its plan holds a few hundred
#: bytes a response (bench/resume_memory.py measures it); a run that
#: wants more (MMLU x 1024 would be 14.4 M items) is refused before anything is built.
MAX_PLANNED_RESPONSES = 1_000_000


def check_plan_size(loaded: Iterable[LoadedTask], samples_per_task: Mapping[str, int]) -> None:
    """``UsageError`` naming the flags when the run would plan over ``MAX_PLANNED_RESPONSES``."""
    sizes = {t.task.name: len(t.samples) * samples_per_task[t.task.name] for t in loaded}
    if sum(sizes.values()) > MAX_PLANNED_RESPONSES:
        parts = ", ".join(f"{name} {size:,}" for name, size in sizes.items())
        fitting = MAX_PLANNED_RESPONSES // max(1, sum(len(t.samples) for t in loaded))
        raise UsageError(
            f"this run asks for {sum(sizes.values()):,} responses ({parts}); one run holds at "
            f"most {MAX_PLANNED_RESPONSES:,}: use --samples {fitting} or less for these "
            "questions, or fewer questions (--limit, or one run per task)"
        )


@no_cyclic_gc()
def build_plan(
    loaded: Iterable[LoadedTask],
    samples_per_task: Mapping[str, int],
    endpoint: Mapping[str, str],
    sampling: SamplingParams,
) -> list[WorkItem]:
    """Every (task, question, repeat) of the run, task by task, in the dataset's order.

    Repeats whose prompt is the same (every task but GPQA, which shuffles its options per
    repeat) share one ``Prompt`` object, so a plan holds one copy of each question's text.
    Raises ``UsageError`` for a run over ``MAX_PLANNED_RESPONSES`` (``check_plan_size``).
    """
    loaded = list(loaded)
    check_plan_size(loaded, samples_per_task)
    items: list[WorkItem] = []
    for task_data in loaded:
        repeats = samples_per_task[task_data.task.name]
        for sample in task_data.samples:
            items += _question_items(task_data.task, sample, repeats, endpoint, sampling)
    return items


def _question_items(
    task: Task, sample: Sample, repeats: int, endpoint: Mapping[str, str], sampling: SamplingParams
) -> Iterator[WorkItem]:
    """The repeats of one question: those whose prompt is the same as the one before share
    that ``Prompt`` object and the canonical JSON of their keys."""
    shared: tuple[Prompt, Callable[[int], str]] | None = None
    for repeat in range(repeats):
        prompt = with_system_prompt(task.prompt(sample, repeat), sampling.system_prompt)
        if shared is None or prompt != shared[0]:
            keys = repeat_keys(endpoint, sampling, prompt.messages, task.name, sample.id)
            shared = (prompt, keys)
        yield WorkItem(task.name, sample, repeat, shared[0], shared[1](repeat))


def with_system_prompt(prompt: Prompt, system_prompt: str | None) -> Prompt:
    """The prompt with ``--system-prompt`` as a system turn before the task's messages."""
    if system_prompt is None:
        return prompt
    system = {"role": "system", "content": system_prompt}
    return replace(prompt, messages=(system, *prompt.messages))


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
