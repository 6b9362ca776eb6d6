"""Every task's record mapping and prompt, on the real benchmark files.

GPQA's authors ask that its questions never appear in plain text: the GPQA checks below assert
on booleans and counts only, so that no failure message can print a question.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from r1eval.task.data import LoadedTask, load_task
from r1eval.task.prompts import LETTERS
from r1eval.task.registry import available_tasks, resolve

pytestmark = pytest.mark.data

MATH_SUFFIX = "\nPlease reason step by step, and put your final answer within \\boxed{}."


def load(name: str, data_dir: Path, limit: int | None = None) -> LoadedTask:
    return load_task(resolve([name])[0], data_dir, limit)


def test_builtin_tasks_are_registered_through_entry_points() -> None:
    tasks = available_tasks()
    assert {"aime24", "math500", "gpqa_diamond", "mmlu", "aime25", "hmmt_feb25", "amc23",
            "mmlu_pro"} <= set(tasks)
    assert all(task.version for task in tasks.values())


@pytest.mark.parametrize(
    ("name", "size"), [("aime24", 30), ("math500", 500), ("gpqa_diamond", 198), ("mmlu", 14042)]
)
def test_question_counts_match_the_declared_size(name: str, size: int, data_dir: Path) -> None:
    loaded = load(name, data_dir)
    assert len(loaded.samples) == size == loaded.task.size
    assert len({s.id for s in loaded.samples}) == size
    assert loaded.source["kind"] == "local" and len(loaded.source["sha256"]) == 64


@pytest.mark.parametrize(
    ("name", "sha256"),
    [  # the checksums published in each folder's PROVENANCE.md
        ("aime24", "af2b8bd2aa911b6333ad0df32f3ca05c7ae8ed10f1731f4372c8ae26990bf7ac"),
        ("math500", "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132"),
        ("gpqa_diamond", "461ae7329f15a3e35f8184d2dac24b990f34fdf12f366ca4062d8e6638cd08dc"),
    ],
)
def test_runs_record_the_data_files_checksum(name: str, sha256: str, data_dir: Path) -> None:
    assert load(name, data_dir, limit=1).source["sha256"] == sha256


def test_mmlu_checksum_covers_every_test_file(data_dir: Path) -> None:
    sums = [line.split() for line in (data_dir / "mmlu/SHA256SUMS").read_text().splitlines()]
    listing = "".join(f"{digest}  {name.removeprefix('test/')}\n"
                      for digest, name in sorted(sums, key=lambda s: s[1])
                      if name.startswith("test/"))
    expected = hashlib.sha256(listing.encode()).hexdigest()
    assert load("mmlu", data_dir, limit=1).source["sha256"] == expected


def test_aime_answers_are_integers_without_padding(data_dir: Path) -> None:
    raw = [json.loads(line) for line in (data_dir / "aime24/test.jsonl").read_text().splitlines()]
    loaded = load("aime24", data_dir)
    assert [s.target for s in loaded.samples] == [str(int(r["answer"])) for r in raw]
    padded = [r["answer"] for r in raw if r["answer"].startswith("0")]
    assert len(padded) == 7  # "025" and friends, read as 25
    assert "25" in {s.target for s in loaded.samples}
    assert all(not s.target.startswith("0") or s.target == "0" for s in loaded.samples)


@pytest.mark.parametrize("name", ["aime24", "math500"])
def test_math_prompt_is_the_r1_model_card_prompt(name: str, data_dir: Path) -> None:
    loaded = load(name, data_dir)
    for sample in loaded.samples:
        prompt = loaded.task.prompt(sample, 0)
        assert prompt.messages == ({"role": "user", "content": sample.input + MATH_SUFFIX},)
        assert prompt.gold == sample.target
        assert loaded.task.prompt(sample, 5) == prompt  # same prompt for every repeat


def test_math500_gold_is_the_answer_field(data_dir: Path) -> None:
    raw = [json.loads(line) for line in (data_dir / "math500/test.jsonl").read_text().splitlines()]
    loaded = load("math500", data_dir)
    assert [s.target for s in loaded.samples] == [r["answer"] for r in raw]
    assert [s.id for s in loaded.samples] == [r["unique_id"] for r in raw]
    first = loaded.samples[0]
    assert first.metadata == {"subject": "Precalculus", "level": 2}


def _option_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line[:3] in {f"{x}) " for x in LETTERS}]


def test_gpqa_options_are_shuffled_per_question_and_repeat(data_dir: Path) -> None:
    loaded = load("gpqa_diamond", data_dir)
    task = loaded.task
    gold_letters: Counter[str] = Counter()
    gold_points_to_correct = True
    orders_differ_across_repeats = 0
    for sample in loaded.samples:
        first, second = task.prompt(sample, 0), task.prompt(sample, 1)
        assert task.prompt(sample, 0) == first  # deterministic
        lines = _option_lines(first.messages[0]["content"])
        correct_line = f"{first.gold}) {sample.choices[0]}"
        gold_points_to_correct &= correct_line in first.messages[0]["content"]
        gold_points_to_correct &= len(lines) >= 4
        gold_letters[first.gold] += 1
        orders_differ_across_repeats += first.metadata != second.metadata
        assert sorted(first.metadata["option_order"]) == [0, 1, 2, 3]
    assert gold_points_to_correct
    # A fair shuffle puts the correct answer near 198/4 = 49.5 times at each letter.
    assert set(gold_letters) == set(LETTERS)
    assert all(30 <= count <= 70 for count in gold_letters.values()), dict(gold_letters)
    assert orders_differ_across_repeats > 198 * 0.8  # 1 - 1/24 of pairs differ on average


def test_gpqa_prompt_follows_simple_evals(data_dir: Path) -> None:
    loaded = load("gpqa_diamond", data_dir, limit=1)
    text = loaded.task.prompt(loaded.samples[0], 0).messages[0]["content"]
    assert text.startswith(
        "Answer the following multiple choice question. The last line of your response should "
        "be of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of "
        "ABCD. Think step by step before answering.\n\n"
    )
    assert loaded.samples[0].input in text


def test_mmlu_order_categories_and_answers(data_dir: Path) -> None:
    loaded = load("mmlu", data_dir)
    samples = loaded.samples
    assert [s.id for s in samples[:3]] == ["abstract_algebra/0", "abstract_algebra/1",
                                          "abstract_algebra/2"]
    assert samples[-1].id == "world_religions/170"
    subjects = [s.metadata["subject"] for s in samples]
    assert subjects == sorted(subjects)  # subjects in alphabetical order, rows in file order
    assert len(set(subjects)) == 57
    assert Counter(s.target for s in samples) == {"A": 3222, "B": 3462, "C": 3582, "D": 3776}
    categories = Counter(s.metadata["category"] for s in samples)
    assert set(categories) == {"STEM", "humanities", "social sciences", "other"}
    assert categories["STEM"] == 3018  # the 18 STEM subjects (Qwen2.5-Math's mmlu_stem)
    assert sum(categories.values()) == 14042


def test_mmlu_prompt_keeps_the_data_order(data_dir: Path) -> None:
    loaded = load("mmlu", data_dir, limit=2)
    first = loaded.samples[0]
    prompt = loaded.task.prompt(first, 0)
    lines = _option_lines(prompt.messages[0]["content"])
    expected = zip(LETTERS, first.choices, strict=True)
    assert lines == [f"{letter}) {choice}" for letter, choice in expected]
    assert prompt.gold == first.target
    assert len(loaded.samples) == 2
