"""Work items, cache keys and request grouping."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict
from pathlib import Path

import pytest

from r1eval.run.plan import WorkItem, build_plan, group_requests, request_key
from r1eval.task.data import LoadedTask, load_task
from r1eval.task.registry import resolve
from r1eval.types import THINKING_CONTROLS, Sample, SamplingParams

ENDPOINT = {"model": "m", "base_url": "http://x/v1"}
SAMPLING = SamplingParams(temperature=0.6, top_p=0.95, max_tokens=100)
MESSAGES = ({"role": "user", "content": "q"},)


def test_key_changes_with_everything_that_changes_the_output() -> None:
    base = request_key(ENDPOINT, SAMPLING, MESSAGES, "t", "1", 0)
    assert request_key(ENDPOINT, SAMPLING, MESSAGES, "t", "1", 0) == base
    variants = [
        request_key({**ENDPOINT, "model": "m2"}, SAMPLING, MESSAGES, "t", "1", 0),
        request_key({**ENDPOINT, "base_url": "http://y/v1"}, SAMPLING, MESSAGES, "t", "1", 0),
        request_key(ENDPOINT, SamplingParams(temperature=0.7, top_p=0.95, max_tokens=100),
                    MESSAGES, "t", "1", 0),
        request_key(ENDPOINT, SAMPLING, ({"role": "user", "content": "q2"},), "t", "1", 0),
        request_key(ENDPOINT, SAMPLING, MESSAGES, "t", "1", 1),  # the repeat index
    ]
    assert len({base, *variants}) == 6


def _loaded(task_name: str, samples: list[Sample]) -> LoadedTask:
    return LoadedTask(task=resolve([task_name])[0], samples=tuple(samples), source={})


def test_math_repeats_share_one_request_with_n_and_gpqa_repeats_do_not() -> None:
    math = _loaded("math500", [Sample(id="p1", input="1+1?", target="2"),
                               Sample(id="p2", input="2+2?", target="4")])
    gpqa = _loaded("gpqa_diamond", [Sample(id="g1", input="Q?", target="A",
                                           choices=("right", "w1", "w2", "w3"))])
    items = build_plan([math, gpqa], {"math500": 4, "gpqa_diamond": 3}, ENDPOINT, SAMPLING)
    assert len(items) == 2 * 4 + 3
    assert len({item.key for item in items}) == len(items)  # repeats never collapse
    groups = group_requests(items, SAMPLING)
    sizes = [(members[0].task, request.n) for request, members in groups]
    # GPQA shuffles options per repeat: some of its 3 repeats differ, so no single n=3 request.
    assert sizes[:2] == [("math500", 4), ("math500", 4)]
    assert sum(n for task, n in sizes if task == "gpqa_diamond") == 3
    assert all(n < 3 for task, n in sizes if task == "gpqa_diamond")


def test_only_missing_repeats_are_regrouped() -> None:
    math = _loaded("math500", [Sample(id="p1", input="1+1?", target="2")])
    items = build_plan([math], {"math500": 8}, ENDPOINT, SAMPLING)
    groups = group_requests(items[5:], SAMPLING)
    assert [(r.n, [m.repeat for m in members]) for r, members in groups] == [(3, [5, 6, 7])]


def test_keys_are_stable_and_repeats_share_their_prompt() -> None:
    # the key of a fixed request never changes: runs made by earlier versions resume
    assert request_key(ENDPOINT, SAMPLING, MESSAGES, "t", "1", 0) == (
        "917684f0f0baa5f965833b394f6d3280"
    )
    math = _loaded("math500", [Sample(id="p1", input="1+1?", target="2")])
    gpqa = _loaded("gpqa_diamond", [Sample(id="g1", input="Q?", target="A",
                                           choices=("right", "w1", "w2", "w3"))])
    items = build_plan([math, gpqa], {"math500": 3, "gpqa_diamond": 3}, ENDPOINT, SAMPLING)
    assert items[0].prompt is items[1].prompt is items[2].prompt  # one copy of the text
    gpqa = [item.prompt for item in items[3:]]  # shuffled per repeat: shared when equal
    assert all((one is then) == (one == then) for one, then in itertools.pairwise(gpqa))


def _key_from_canonical_json(endpoint: dict[str, str], sampling: SamplingParams,
                             item: WorkItem) -> str:
    """The key as the first version of r1eval built it: the SHA-256 of the canonical JSON of
    the whole identity, serialised anew for each sample (with the thinking controls that are
    set: the first version had none)."""
    identity = {
        "endpoint": dict(sorted(endpoint.items())),
        "sampling": {k: v for k, v in asdict(sampling).items()
                     if k not in THINKING_CONTROLS or v is not None},
        "messages": [dict(m) for m in item.prompt.messages],
        "task": item.task,
        "sample": item.sample.id,
        "repeat": item.repeat,
    }
    canonical = json.dumps(identity, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


@pytest.mark.data
def test_plan_keys_of_real_tasks_are_those_of_the_canonical_json(data_dir: Path) -> None:
    """The plan builds each key around the repeat number, from JSON serialised once per
    prompt: every key of the four tasks (GPQA's messages differ per repeat) must be the one
    the whole identity's canonical JSON gives, so runs of earlier versions resume."""
    endpoint = {"model": "org/Model-ü", "base_url": "http://x/v1", "api": "chat"}
    sampling = SamplingParams(temperature=0.6, top_p=0.95, max_tokens=32768, stop=("</s>",))
    tasks = resolve(["aime24", "math500", "gpqa_diamond", "mmlu"])
    loaded = [load_task(task, data_dir, limit=40) for task in tasks]
    items = build_plan(loaded, {task.name: 4 for task in tasks}, endpoint, sampling)
    assert len(items) == sum(len(t.samples) for t in loaded) * 4
    for item in items:
        expected = _key_from_canonical_json(endpoint, sampling, item)
        assert item.key == expected, (item.task, item.sample.id, item.repeat)
        assert request_key(endpoint, sampling, item.prompt.messages, item.task, item.sample.id,
                           item.repeat) == expected
    gpqa = [item for item in items if item.task == "gpqa_diamond"]
    shown = {json.dumps(item.prompt.messages) for item in gpqa}
    assert len(shown) > len({item.sample.id for item in gpqa})  # prompts differ per repeat


def test_each_thinking_control_changes_the_key_and_an_unset_one_does_not() -> None:
    """A changed control is a different output, so a different sample; a run made without
    any keeps the keys it had (the stable key above), and equal dicts give equal keys."""
    base = request_key(ENDPOINT, SAMPLING, MESSAGES, "t", "1", 0)
    variants = [
        SamplingParams(temperature=0.6, top_p=0.95, max_tokens=100, **{name: value})
        for name, value in (("reasoning_effort", "high"),
                            ("chat_template_kwargs", {"enable_thinking": True}),
                            ("chat_template_kwargs", {"enable_thinking": False}),
                            ("system_prompt", "Think step by step."),
                            ("extra_body", {"top_k": 20}))
    ]
    keys = [request_key(ENDPOINT, s, MESSAGES, "t", "1", 0) for s in variants]
    assert len({base, *keys}) == 6
    same = SamplingParams(temperature=0.6, top_p=0.95, max_tokens=100,
                          chat_template_kwargs={"enable_thinking": True})
    assert request_key(ENDPOINT, same, MESSAGES, "t", "1", 0) == keys[1]
    assert "reasoning_effort" not in SAMPLING.record()


def test_system_prompt_is_a_system_turn_before_the_task_messages() -> None:
    math = _loaded("math500", [Sample(id="p1", input="1+1?", target="2")])
    sampling = SamplingParams(system_prompt="Be brief.")
    plain, with_system = (build_plan([math], {"math500": 1}, ENDPOINT, s)[0]
                          for s in (SamplingParams(), sampling))
    assert with_system.prompt.messages == (
        {"role": "system", "content": "Be brief."}, *plain.prompt.messages)
    assert with_system.key == request_key(ENDPOINT, sampling, with_system.prompt.messages,
                                          "math500", "p1", 0)
