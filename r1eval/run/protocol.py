"""When two runs were made differently: the one definition of "the protocol differs", read
from their manifests (resuming a folder, pairing two runs for a regression test; a published
figure's protocol is compared by ``r1eval.claims.check`` with the same thinking controls)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from r1eval.backends.thinking import control_differences
from r1eval.store.contracts import Manifest, Sampling, TaskEntry
from r1eval.task.registry import current_prompt_hash

#: Sampling parameters that change what a model answers (besides the thinking controls).
SAMPLING_FIELDS = ("temperature", "top_p", "max_tokens", "stop")
#: What defines a task's questions and their grading, besides its data.
TASK_FIELDS = ("version", "prompt_hash", "grader")


def leaf_differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> str:
    """``a.b: X in the folder, Y now`` for each leaf that differs (a folder's identity against
    the run asked for)."""
    found = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            nested = leaf_differences(before, after, f"{prefix}{key}.")
            found += [nested] if nested else []
        elif before != after:
            found.append(f"{prefix}{key}: {before} in the folder, {after} now")
    return "; ".join(found)


def sampling_differences(base: Sampling, candidate: Sampling) -> list[str]:
    """``temperature: X vs Y`` for each sampling parameter, then each thinking control, set
    differently."""
    found = [
        f"{key}: {getattr(base, key)} vs {getattr(candidate, key)}"
        for key in SAMPLING_FIELDS
        if getattr(base, key) != getattr(candidate, key)
    ]
    return found + control_differences(base.model_dump(), candidate.model_dump())


def task_differences(name: str, base: TaskEntry, candidate: TaskEntry) -> list[str]:
    """How one task was defined differently: version, prompt, grader, data. A prompt hash
    recorded before hashes covered the rendered prompt counts as today's when it matches the
    template the task still has."""

    def value(entry: TaskEntry, key: str) -> object:
        recorded = getattr(entry, key)
        return current_prompt_hash(name, recorded) if key == "prompt_hash" else recorded

    found = [
        f"{name} {key}: {value(base, key)} vs {value(candidate, key)}"
        for key in TASK_FIELDS
        if value(base, key) != value(candidate, key)
    ]
    data_base, data_candidate = base.source.identity, candidate.source.identity
    if data_base != data_candidate:
        found.append(f"{name} data: {data_base} vs {data_candidate}")
    return found


def protocol_differences(base: Manifest, candidate: Manifest, tasks: Iterable[str]) -> list[str]:
    """Differences between two runs that bias a comparison (``base vs candidate``): sampling
    parameters and thinking controls, and per task its version, prompt, grader and data. The
    model and endpoint are meant to differ and are not compared."""
    found = sampling_differences(base.identity.sampling, candidate.identity.sampling)
    for name in tasks:
        found += task_differences(name, base.tasks.get(name) or TaskEntry(),
                                  candidate.tasks.get(name) or TaskEntry())
    return found
