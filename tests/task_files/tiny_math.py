"""A tiny math task for tests that need a task without the official data: eight questions in
``tests/task_data/tiny_math/test.jsonl``, the R1 math prompt, graded by math-verify."""

from __future__ import annotations

from r1eval.grading.math_answers import grade_math
from r1eval.task import HubSource, LocalSource, Record, Task
from r1eval.task.data import read_jsonl
from r1eval.task.prompts import MATH_PROMPT, math_prompt
from r1eval.types import Sample


def to_sample(record: Record) -> Sample:
    return Sample(id=str(record["id"]), input=str(record["problem"]), target=str(record["answer"]))


TASK = Task(
    name="tiny_math",
    version="1",
    description="eight small math questions (tests only)",
    hub=HubSource(path="r1eval-tests/tiny_math", split="test", revision="0" * 40),
    local=LocalSource(path="tiny_math/test.jsonl", reader=read_jsonl),
    size=8,
    prompt_template=MATH_PROMPT,
    to_sample=to_sample,
    prompt=math_prompt,
    grader=grade_math,
    r1_samples=4,
    reference="r1eval tests",
)
