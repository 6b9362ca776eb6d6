"""Constructors for the common task shapes, so that a new benchmark is a few lines.

- ``math_task``: a problem, a gold answer graded by math-verify, the DeepSeek-R1 math prompt.
  ``answer=integer_answer`` for integer-answer contests (AIME, AMC), ``latex_answer`` (the
  default) for LaTeX expressions (MATH-500, HMMT).
- ``choice_task``: N-option multiple choice (up to ten, A-J), options rendered by a
  ``ChoiceFormat`` and optionally shuffled per question and repeat (the order is recorded).

The record mappers are small frozen dataclasses rather than closures, so that tasks stay
picklable and their behaviour is visible in their ``repr``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict, Unpack

from r1eval.grading.choice_answers import grade_choice, grade_choice_up_to_ten
from r1eval.grading.math_answers import grade_math
from r1eval.task.definition import HubSource, LocalSource, Record, Task
from r1eval.task.multiple_choice import ChoiceFormat, ChoicePrompt, simple_evals_text
from r1eval.task.prompts import CHOICE_LETTERS, LETTERS, MATH_PROMPT, math_prompt
from r1eval.types import Sample

__all__ = [
    "MathRecord",
    "TaskBasics",
    "choice_task",
    "integer_answer",
    "latex_answer",
    "math_task",
    "no_metadata",
]

Metadata = Callable[[Record], dict[str, Any]]


def integer_answer(value: object) -> str:
    """An integer gold as canonical text: ``"025"`` -> ``"25"``, ``70`` -> ``"70"``,
    ``27.0`` -> ``"27"``; a float that is not whole, or anything else, is an error."""
    if isinstance(value, bool):
        raise ValueError(f"answer {value!r} is not an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"answer {value!r} is not a whole number")
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return str(int(value.strip()))
    raise TypeError(f"answer {value!r} is not an integer")


def latex_answer(value: object) -> str:
    """A LaTeX gold, as the data has it."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"answer {value!r} is not a LaTeX string")
    return value


def no_metadata(record: Record) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class MathRecord:
    """Maps a record to a math Sample: which fields hold the id, problem and answer."""

    id_field: str
    problem_field: str = "problem"
    answer_field: str = "answer"
    answer: Callable[[object], str] = latex_answer
    metadata: Metadata = no_metadata

    def __call__(self, record: Record) -> Sample:
        return Sample(
            id=str(record[self.id_field]),
            input=str(record[self.problem_field]),
            target=self.answer(record[self.answer_field]),
            metadata=self.metadata(record),
        )


class TaskBasics(TypedDict):
    """What every task states, whatever its shape (see ``Task``)."""

    name: str
    version: str
    description: str
    hub: HubSource
    local: LocalSource
    size: int
    r1_samples: int
    reference: str
    breakdown: NotRequired[tuple[str, ...]]
    prepare: NotRequired[Callable[[list[Record]], list[Record]]]


def math_task(
    *,
    id_field: str = "id",
    answer: Callable[[object], str] = latex_answer,
    metadata: Metadata = no_metadata,
    **basics: Unpack[TaskBasics],
) -> Task:
    """A math benchmark with the DeepSeek-R1 prompt, graded by math-verify."""
    return Task(
        **basics,
        prompt_template=MATH_PROMPT,
        to_sample=MathRecord(id_field=id_field, answer=answer, metadata=metadata),
        prompt=math_prompt,
        grader=grade_math,
    )


def choice_task(
    *,
    to_sample: Callable[[Record], Sample],
    prompt_template: str,
    options: int = len(LETTERS),
    text: ChoiceFormat = simple_evals_text,
    shuffle: bool = False,
    private_text: bool = False,
    **basics: Unpack[TaskBasics],
) -> Task:
    """A multiple-choice benchmark of up to ``options`` options (at most ten, A-J); letters
    A-D are graded for four-option tasks, A-J for anything larger."""
    if not 2 <= options <= len(CHOICE_LETTERS):
        raise ValueError(f"options must be 2-{len(CHOICE_LETTERS)}, got {options}")
    return Task(
        **basics,
        prompt_template=prompt_template,
        to_sample=to_sample,
        prompt=ChoicePrompt(task=basics["name"], text=text, shuffle=shuffle),
        grader=grade_choice if options <= len(LETTERS) else grade_choice_up_to_ten,
        private_text=private_text,
        options=options,
    )
