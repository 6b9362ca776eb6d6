"""What a task is: its prompt hash covers what is sent, the factory's shapes, and resuming
folders whose prompt hash was the template's (before it covered the rendered prompt)."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import pytest

from r1eval.cli import main
from r1eval.errors import UsageError
from r1eval.grading.choice_answers import grade_choice, grade_choice_up_to_ten
from r1eval.task.data import load_task
from r1eval.task.definition import HubSource, LocalSource, Task
from r1eval.task.factory import choice_task, integer_answer, latex_answer, math_task
from r1eval.task.multiple_choice import (
    ChoicePrompt,
    mmlu_pro_text,
    question_as_shown,
    simple_evals_text,
    unshuffled_letter,
)
from r1eval.task.prompts import MATH_PROMPT, MULTIPLE_CHOICE_PROMPT, template_hash, user_turn
from r1eval.task.registry import available_tasks, resolve
from r1eval.types import Prompt, Sample

from openai_server import OpenAIServer

TESTS = Path(__file__).resolve().parent
TASK_DIR, DATA_DIR = TESTS / "task_files", TESTS / "task_data"
HUB = HubSource(path="r1eval-tests/none", split="test", revision="0" * 40)
LOCAL = LocalSource(path="none.jsonl", reader=lambda path: [])


def tiny_math() -> Task:
    return resolve(["tiny_math"], TASK_DIR)[0]


def polite_math_prompt(sample: Sample, repeat: int) -> Prompt:
    """The R1 prompt with one more word: what a prompt-function edit looks like."""
    text = "Please. " + MATH_PROMPT.format(problem=sample.input)
    return Prompt(messages=user_turn(text), gold=sample.target)


def test_prompt_hash_changes_when_the_prompt_function_does() -> None:
    task = tiny_math()
    edited = dataclasses.replace(task, prompt=polite_math_prompt)
    assert edited.prompt_template == task.prompt_template
    assert edited.prompt_hash != task.prompt_hash


def test_prompt_hash_covers_option_shuffling_and_the_option_format() -> None:
    shape = {"name": "mc", "version": "1", "description": "d", "hub": HUB, "local": LOCAL,
             "size": 1, "to_sample": lambda r: r, "prompt_template": MULTIPLE_CHOICE_PROMPT,
             "r1_samples": 1, "reference": "r"}
    fixed = choice_task(**shape)
    shuffled = choice_task(**shape, shuffle=True)
    ten = choice_task(**shape, options=10, text=mmlu_pro_text)
    assert len({fixed.prompt_hash, shuffled.prompt_hash, ten.prompt_hash}) == 3
    assert fixed.prompt_hash == choice_task(**shape).prompt_hash  # deterministic
    assert fixed.grader is grade_choice and ten.grader is grade_choice_up_to_ten


def test_the_hash_is_the_rendered_prompts_not_the_template() -> None:
    task = tiny_math()
    assert task.legacy_prompt_hash == template_hash(MATH_PROMPT) != task.prompt_hash


@pytest.mark.parametrize(
    ("value", "expected"), [("025", "25"), (" 7 ", "7"), (70, "70"), (27.0, "27"), (-1.0, "-1")]
)
def test_integer_answers(value: object, expected: str) -> None:
    assert integer_answer(value) == expected


@pytest.mark.parametrize("value", [27.5, True, None, "2/3", [1]])
def test_integer_answers_reject_what_is_not_an_integer(value: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        integer_answer(value)


def test_latex_answers_must_be_text() -> None:
    assert latex_answer("\\frac{1}{2}") == "\\frac{1}{2}"
    for value in ("", "  ", 3):
        with pytest.raises(ValueError):
            latex_answer(value)


def test_a_math_task_is_a_few_lines_and_picklable() -> None:
    task = math_task(name="m", version="1", description="d", hub=HUB, local=LOCAL, size=1,
                     r1_samples=4, reference="r", answer=integer_answer)
    sample = task.to_sample({"id": 3, "problem": "1+1?", "answer": "002"})
    assert sample == Sample(id="3", input="1+1?", target="2")
    assert task.prompt(sample, 0).messages[0]["content"] == MATH_PROMPT.format(problem="1+1?")
    assert pickle.loads(pickle.dumps(task.to_sample))(
        {"id": 3, "problem": "1+1?", "answer": "002"}) == sample


def test_choice_tasks_accept_two_to_ten_options() -> None:
    shape = {"name": "mc", "version": "1", "description": "d", "hub": HUB, "local": LOCAL,
             "size": 1, "to_sample": lambda r: r, "prompt_template": "t", "r1_samples": 1,
             "reference": "r"}
    for options in (1, 11):
        with pytest.raises(ValueError, match="options must be 2-10"):
            choice_task(**shape, options=options)


def test_shuffled_choice_prompts_record_the_order_and_move_the_gold() -> None:
    sample = Sample(id="q", input="Q?", target="C", choices=tuple("pqrstuvwxy"),
                    metadata={"category": "math"})
    prompt = ChoicePrompt(task="t", text=mmlu_pro_text, shuffle=True)
    orders = [prompt(sample, repeat).metadata["option_order"] for repeat in range(20)]
    assert all(sorted(order) == list(range(10)) for order in orders)
    assert len({tuple(order) for order in orders}) > 15
    for repeat in range(20):
        shown = prompt(sample, repeat)
        gold_line = f"{shown.gold}. r\n"  # option "r" is the data's C
        assert gold_line in shown.messages[0]["content"]
    with pytest.raises(ValueError, match="4 options"):
        simple_evals_text(sample, list(sample.choices))


def run_args(server: OpenAIServer, run_dir: Path, task_dir: Path = TASK_DIR) -> list[str]:
    return ["run", "--model", server.model, "--base-url", server.base_url, "--tasks",
            "tiny_math", "--samples", "1", "--task-dir", str(task_dir), "--data-dir",
            str(DATA_DIR), "--run-dir", str(run_dir), "--grader-workers", "0"]


def set_recorded_prompt_hash(run_dir: Path, value: str) -> None:
    manifest_path = run_dir / "run.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["tasks"]["tiny_math"]["prompt_hash"] = value
    manifest_path.write_text(json.dumps(manifest))


def test_a_folder_with_the_template_hash_resumes_and_takes_the_rendered_hash(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    with OpenAIServer() as server:
        assert main(run_args(server, run_dir)) == 0
        set_recorded_prompt_hash(run_dir, template_hash(MATH_PROMPT))  # as older releases did
        assert main(run_args(server, run_dir)) == 0
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["tasks"]["tiny_math"]["prompt_hash"] == tiny_math().prompt_hash


def test_a_folder_whose_prompt_changed_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    edited = tmp_path / "edited"
    edited.mkdir()
    base = str(TASK_DIR / "tiny_math.py")
    (edited / "tiny_math.py").write_text(
        "import dataclasses, importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('base', {base!r})\n"
        "base = importlib.util.module_from_spec(spec); spec.loader.exec_module(base)\n"
        "from r1eval.task.prompts import user_turn\n"
        "from r1eval.types import Prompt\n"
        "def prompt(sample, repeat):\n"
        "    return Prompt(messages=user_turn('Solve: ' + sample.input), gold=sample.target)\n"
        "TASK = dataclasses.replace(base.TASK, prompt=prompt)\n"
    )
    with OpenAIServer() as server:
        assert main(run_args(server, run_dir)) == 0
        capsys.readouterr()
        assert main(run_args(server, run_dir, edited)) == 2
    assert "task tiny_math changed prompt_hash since this run began" in capsys.readouterr().err


def test_unshuffling_letters_up_to_j() -> None:
    order = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    assert unshuffled_letter("A", order) == "J" and unshuffled_letter("J", order) == "A"
    assert unshuffled_letter("B", [1, 0, 2, 3]) == "A"
    assert unshuffled_letter("E", [1, 0, 2, 3]) == "E"  # past the four options: no option


def test_a_question_as_shown_letters_its_options_in_the_order_shown() -> None:
    sample = Sample(id="q", input="Q?", target="A", choices=("x", "y", "z"))
    assert question_as_shown(sample, [2, 0, 1]) == "Q?\n\nA) z\nB) x\nC) y"
    assert question_as_shown(sample) == "Q?\n\nA) x\nB) y\nC) z"
    assert question_as_shown(Sample(id="m", input="1+1?", target="2")) == "1+1?"


def test_the_readme_task_example_loads_from_a_task_folder_without_reinstalling(
    tmp_path: Path,
) -> None:
    readme = (TESTS.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Adding a task", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "my_contest.py").write_text(code)
    (tmp_path / "data" / "my_contest").mkdir(parents=True)
    rows = [{"id": f"p{n}", "problem": f"{n}+1?", "answer": f"{n + 1:03d}"} for n in range(15)]
    (tmp_path / "data" / "my_contest" / "test.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in rows))
    task = resolve(["my_contest"], tmp_path)[0]
    loaded = load_task(task, tmp_path / "data")
    assert [s.target for s in loaded.samples] == [str(n + 1) for n in range(15)]
    assert task.r1_samples == 64 and task.prompt_hash == tiny_math().prompt_hash  # R1 prompt
    assert len([line for line in code.splitlines() if line.strip()]) <= 20


def test_a_four_option_task_written_without_the_options_field_still_hashes() -> None:
    """Tasks written before ``options`` existed: probed with four options when needed."""
    def old_style_prompt(sample: Sample, repeat: int) -> Prompt:
        text = MULTIPLE_CHOICE_PROMPT.format(question=sample.input,
                                             **dict(zip("ABCD", sample.choices, strict=True)))
        return Prompt(messages=user_turn(text), gold=sample.target)

    task = dataclasses.replace(tiny_math(), prompt=old_style_prompt, grader=grade_choice)
    assert task.options == 0 and len(task.prompt_hash) == 16

    def broken(sample: Sample, repeat: int) -> Prompt:
        raise KeyError("subject_code")

    with pytest.raises(UsageError, match=r"set Task\.options"):
        _ = dataclasses.replace(task, prompt=broken).prompt_hash


def test_the_builtin_prompts_are_pinned() -> None:
    """What each built-in task sends, fingerprinted: a change here changes every new run's
    identity, so it comes with a new task version. The legacy hashes are what runs of older
    releases recorded (the template's hash); such folders still resume."""
    hashes = {name: (t.prompt_hash, t.legacy_prompt_hash)
              for name, t in available_tasks().items() if name in PINNED}
    assert hashes == PINNED


R1_MATH = ("f55d8b7e1698f138", "056d2a132126f009")
PINNED = {
    "aime24": R1_MATH, "math500": R1_MATH, "aime25": R1_MATH, "hmmt_feb25": R1_MATH,
    "amc23": R1_MATH,
    "gpqa_diamond": ("1005e49d6add4d5f", "9e7e2e67228607cf"),
    "mmlu": ("3a1e9e13615ec384", "9e7e2e67228607cf"),
    "mmlu_pro": ("f36b4021a5f85b86", "08e9e1e1f6d48f13"),
}
