"""Completions that already exist, served as if a model were answering: ``r1eval grade``.

A JSONL file of externally generated responses, one JSON object a line::

    {"id": "60", "response": "... \\boxed{204}", "reasoning": "...", "finish_reason": "stop"}

- ``id`` (the task's question id, a string or an integer) or ``problem`` (the question text,
  matched exactly after trimming surrounding whitespace) or ``prompt`` (the whole prompt the
  response answered: the question is the one whose text it contains); multiple-choice tasks
  need ``id``:
  their prompt, and so the meaning of a letter, depends on the options' order, not only on the
  question;
- ``response`` (the text), optional ``reasoning`` (a separate reasoning trace, as DeepSeek's
  ``reasoning_content``), ``finish_reason`` ("length" marks a truncated response; default
  unknown), ``repeat`` (0, 1, ...; by default the order of the question's lines);
- ``option_order`` (multiple choice): the data-order index of the option shown as A, B, C, ...
  (GPQA's raw data lists the correct answer first: [2, 0, 3, 1] means it was shown as B).
  Without it, the order r1eval itself uses for that question and repeat is assumed.
- any other field is kept, unread, as metadata of the response (``prompt_metadata.fields``
  in the run's log).

Other harnesses' sample files are read too, their format detected from their content
(``r1eval.backends.harness_files``): lm-evaluation-harness ``--log_samples`` JSONL and
lighteval details (parquet).

``ReplayBackend`` then answers each request of the normal run path (plan, runner, grading,
scoring) with the file's responses for that prompt, so a file is graded and scored exactly like
a live run. A bad line is a one-line ``DataError`` naming it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from r1eval.errors import DataError, RequestFailed, validation_problems
from r1eval.task.data import LoadedTask
from r1eval.task.multiple_choice import ChoicePrompt, multiple_choice_prompt, simple_evals_text
from r1eval.types import Completion, Message, Prompt, Request, Sample

__all__ = [
    "ReplayBackend",
    "Replayed",
    "ResponseLine",
    "file_identity",
    "match_lines",
    "read_response_lines",
]

MessagesKey = tuple[tuple[tuple[str, str], ...], ...]


class ResponseLine(BaseModel):
    """One line of a completions file (see the module docstring)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str | None = Field(default=None, min_length=1)
    problem: str | None = Field(default=None, min_length=1)
    prompt: str | None = Field(default=None, min_length=1)
    response: str
    reasoning: str | None = None
    finish_reason: str | None = None
    repeat: int | None = Field(default=None, ge=0)
    option_order: list[int] | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _integer_id(cls, value: Any) -> Any:
        """The AIME data files themselves have integer ids."""
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @property
    def fields(self) -> dict[str, Any]:
        """The line's other fields, kept as metadata."""
        return dict(self.model_extra or {})

    @model_validator(mode="after")
    def _one_question(self) -> ResponseLine:
        if sum(given is not None for given in (self.id, self.problem, self.prompt)) != 1:
            raise ValueError("give exactly one of id, problem and prompt")
        order = self.option_order
        if order is not None and sorted(order) != list(range(len(order))):
            raise ValueError(f"option_order must be a permutation of 0..{len(order) - 1}")
        return self


@dataclass(frozen=True)
class Replayed:
    """A line matched to its question: the prompt it answered and the completion."""

    line: int
    sample: Sample
    repeat: int
    prompt: Prompt
    completion: Completion


#: How the endpoint identity of a run graded from a file begins (then the file's SHA-256).
FILE_URL = "file:"


def file_identity(path: Path, model: str) -> dict[str, str]:
    """The endpoint identity of a run graded from ``path``: the file's SHA-256, so that a
    changed file never mixes with a folder made from another."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"model": model, "base_url": f"{FILE_URL}{digest}"}


def is_replayed(base_url: object) -> bool:
    """Whether a ``base_url`` (of a run's identity or settings) names a file of responses
    (``file_identity``)."""
    return isinstance(base_url, str) and base_url.startswith(FILE_URL)


def read_response_lines(path: Path) -> list[tuple[int, ResponseLine]]:
    """The file's responses, validated, with their line (or row) numbers: r1eval's JSONL, or
    another harness's sample file (``harness_files.read_foreign``), detected."""
    from r1eval.backends.harness_files import read_foreign  # imports this module

    foreign = read_foreign(path)
    if foreign is not None:
        lines = [(number, validated(fields, f"{path}:{number}")) for number, fields in foreign]
    else:
        lines = [(number, validated(_json_line(raw, f"{path}:{number}"), f"{path}:{number}"))
                 for number, raw in enumerate(read_text(path).splitlines(), start=1)
                 if raw.strip()]
    if not lines:
        raise DataError(f"completions file {path} holds no responses")
    return lines


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"completions file {path}: cannot read it ({error})") from None


def _json_line(raw: str, where: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise DataError(f"{where}: not valid JSON ({error.msg})") from None


def validated(fields: Any, where: str) -> ResponseLine:
    """One response's fields as a ``ResponseLine``; a one-line ``DataError`` if invalid."""
    try:
        return ResponseLine.model_validate(fields)
    except ValidationError as error:
        problems = validation_problems(error.errors(), "line")
        raise DataError(f"{where}: {problems}") from None


def match_lines(
    lines: Iterable[tuple[int, ResponseLine]], loaded: LoadedTask, where: Path
) -> list[Replayed]:
    """Each line's question, repeat and prompt; every (question, repeat) at most once."""
    task = loaded.task
    by_id = {s.id: s for s in loaded.samples}
    by_problem: dict[str, Sample | None] = {}
    for sample in loaded.samples:  # None: two questions share the text, only ids tell apart
        text = sample.input.strip()
        by_problem[text] = None if text in by_problem else sample
    multiple_choice = any(s.choices for s in loaded.samples)
    next_repeat: dict[str, int] = defaultdict(int)
    seen: set[tuple[str, int]] = set()
    replayed = []
    for number, line in lines:
        at = f"{where}:{number}"
        sample = _sample_of(line, by_id, by_problem, multiple_choice, task.name, at)
        repeat = line.repeat if line.repeat is not None else next_repeat[sample.id]
        next_repeat[sample.id] = max(next_repeat[sample.id], repeat + 1)
        if (sample.id, repeat) in seen:
            raise DataError(f"{at}: a second response for question {sample.id!r} repeat "
                            f"{repeat}")
        seen.add((sample.id, repeat))
        prompt = _prompt(loaded, sample, repeat, line.option_order, at)
        if line.fields:
            prompt = dataclasses.replace(prompt, metadata={**prompt.metadata,
                                                            "fields": line.fields})
        completion = Completion(text=line.response, reasoning=line.reasoning,
                                finish_reason=line.finish_reason)
        replayed.append(Replayed(number, sample, repeat, prompt, completion))
    return replayed


def _sample_of(
    line: ResponseLine, by_id: dict[str, Sample], by_problem: dict[str, Sample | None],
    multiple_choice: bool, task: str, at: str,
) -> Sample:
    if line.id is not None:
        if line.id not in by_id:
            raise DataError(f"{at}: no question {line.id!r} in {task}")
        return by_id[line.id]
    if multiple_choice:
        raise DataError(f"{at}: {task} is multiple choice: give the question's id (its "
                        "prompt depends on the options' order, not only on its text)")
    if line.prompt is not None:
        return _sample_in_prompt(line.prompt, by_problem, task, at)
    problem = (line.problem or "").strip()
    if problem not in by_problem:
        raise DataError(f"{at}: no {task} question has exactly this problem text")
    sample = by_problem[problem]
    if sample is None:
        raise DataError(f"{at}: several {task} questions have this problem text: give the id")
    return sample


def _sample_in_prompt(
    prompt: str, by_problem: dict[str, Sample | None], task: str, at: str
) -> Sample:
    """The question whose text the prompt contains (the longest, if one text holds another)."""
    found = [text for text in by_problem if text and text in prompt]
    longest = max(found, key=len, default=None)
    if longest is None:
        raise DataError(f"{at}: the prompt contains the text of no {task} question")
    if any(text not in longest for text in found) or by_problem[longest] is None:
        raise DataError(f"{at}: the prompt contains the text of several {task} questions: "
                        "give the id")
    sample = by_problem[longest]
    assert sample is not None
    return sample


def _prompt(
    loaded: LoadedTask, sample: Sample, repeat: int, order: list[int] | None, at: str
) -> Prompt:
    """The task's own prompt, or the multiple-choice prompt in the file's option order."""
    prompt = loaded.task.prompt(sample, repeat)
    if order is None:
        return prompt
    if "option_order" not in prompt.metadata:
        raise DataError(f"{at}: option_order is given, but {loaded.task.name} does not "
                        "present options in an order")
    if len(order) != len(sample.choices):
        raise DataError(f"{at}: option_order has {len(order)} entries, but the question has "
                        f"{len(sample.choices)} options")
    shape = loaded.task.prompt
    return multiple_choice_prompt(sample, order, shape.text if isinstance(shape, ChoicePrompt)
                                  else simple_evals_text)


def messages_key(messages: Iterable[Message]) -> MessagesKey:
    return tuple(tuple(sorted(m.items())) for m in messages)


class ReplayBackend:
    """A ``Backend`` that answers each prompt with the next of the file's responses to it.

    ``served`` lists (prompt messages, completion) in the order of the run's plan; repeats
    that share a prompt come back in that order, as a live endpoint's choices would.
    """

    def __init__(self, identity: dict[str, str],
                 served: Iterable[tuple[tuple[Message, ...], Completion]]) -> None:
        self._identity = dict(identity)
        self._queues: dict[MessagesKey, deque[Completion]] = defaultdict(deque)
        for messages, completion in served:
            self._queues[messages_key(messages)].append(completion)

    def identity(self) -> dict[str, str]:
        return dict(self._identity)

    async def generate(self, request: Request) -> list[Completion]:
        queue = self._queues.get(messages_key(request.messages))
        if not queue:
            raise RequestFailed("the completions file has no response for this prompt",
                                transient=False)
        return [queue.popleft() for _ in range(min(request.n, len(queue)))]

    async def aclose(self) -> None:
        self._queues.clear()
