"""What a benchmark is to r1eval: the ``Task`` a plugin file defines, and its data sources."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1eval.prompts import template_hash
from r1eval.types import Grade, Prompt, Sample

Record = dict[str, Any]


@dataclass(frozen=True)
class HubSource:
    """A Hugging Face Hub dataset, pinned to one revision (a commit of the dataset repo)."""

    path: str
    split: str
    revision: str
    config: str | None = None

    def describe(self) -> str:
        config = f" ({self.config})" if self.config else ""
        return f"hf:{self.path}{config}@{self.revision[:12]}"


@dataclass(frozen=True)
class LocalSource:
    """Files under a local data folder, read into records shaped like the Hub's rows.

    ``reader`` gets the resolved path and returns the records in the dataset's own order.
    """

    path: str
    reader: Callable[[Path], list[Record]]


@dataclass(frozen=True)
class Task:
    """One benchmark. A plugin file builds one and exposes it as ``TASK``.

    - ``to_sample`` maps one record (Hub schema) to a Sample;
    - ``prompt`` renders a Sample for repeat ``r`` (most tasks ignore ``r``; GPQA shuffles
      its options per repeat);
    - ``grader`` is a module-level function ``(final_answer_text, gold) -> Grade``; it runs
      in grading worker processes, so it must be importable by reference.
    - ``breakdown`` names Sample metadata keys to report scores by (MMLU: subject, category);
    - ``private_text``: the authors ask that questions never appear in plain text (GPQA);
      reports leave them out unless told otherwise;
    - ``prepare`` sees all records (either source) before mapping, e.g. to number them.
    """

    name: str
    version: str
    description: str
    hub: HubSource
    local: LocalSource
    size: int
    prompt_template: str
    to_sample: Callable[[Record], Sample]
    prompt: Callable[[Sample, int], Prompt]
    grader: Callable[[str, str], Grade]
    r1_samples: int
    reference: str
    breakdown: tuple[str, ...] = ()
    private_text: bool = False
    prepare: Callable[[list[Record]], list[Record]] = list
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt_hash(self) -> str:
        return template_hash(self.prompt_template)
