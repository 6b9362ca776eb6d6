"""What a benchmark is to r1eval: the ``Task`` a plugin file defines, and its data sources."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1eval.errors import UsageError
from r1eval.task.prompts import CHOICE_LETTERS, rendered_prompt_hash, template_hash
from r1eval.types import Grader, Prompt, Sample

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

    ``reader`` gets the resolved path and returns the records in the dataset's own order;
    ``writer``, its inverse, stores the Hub's records at a path in this layout (for
    ``r1eval data download``; a task without one can only be read from the Hub or a folder).
    """

    path: str
    reader: Callable[[Path], list[Record]]
    writer: Callable[[list[Record], Path], None] | None = None


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
    - ``prepare`` sees all records (either source) before mapping, e.g. to number them;
    - ``options``: the most options a question has (0 for a free-form answer);
    - ``prompt_template`` documents the text ``prompt`` fills; ``prompt_hash`` fingerprints
      what ``prompt`` actually renders (for a probe question, repeats 0 and 1).
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
    grader: Grader
    r1_samples: int
    reference: str
    breakdown: tuple[str, ...] = ()
    private_text: bool = False
    prepare: Callable[[list[Record]], list[Record]] = list
    options: int = 0

    @property
    def prompt_hash(self) -> str:
        """The fingerprint of what is sent: changing a prompt function changes it.

        A task that does not say how many options it has (``options`` 0, e.g. written before
        the field existed) is probed without options, then with the four of GPQA and MMLU.
        """
        failure: Exception | None = None
        for options in (self.options,) if self.options else (0, 4):
            probe = prompt_probe(options)
            try:
                return rendered_prompt_hash([self.prompt(probe, repeat) for repeat in (0, 1)])
            except (KeyError, IndexError, ValueError, TypeError) as error:
                failure = error
        raise UsageError(
            f"task {self.name}: its prompt cannot render a placeholder question "
            f"({type(failure).__name__}: {failure}); set Task.options to its number of options"
        )

    @property
    def legacy_prompt_hash(self) -> str:
        """What runs recorded as the prompt hash before it covered the rendered prompt."""
        return template_hash(self.prompt_template)


def prompt_probe(options: int) -> Sample:
    """A placeholder question rendered to fingerprint a task's prompt (see ``prompt_hash``)."""
    return Sample(
        id="r1eval-prompt-probe",
        input="<question>",
        target="A" if options else "<answer>",
        choices=tuple(f"<option {letter}>" for letter in CHOICE_LETTERS[:options]),
        metadata=_PROBE_METADATA,
    )


class _AnyKey(dict[str, str]):
    """Metadata for the probe: any key a prompt reads (MMLU-Pro's category) gives <key>."""

    def __missing__(self, key: str) -> str:
        return f"<{key}>"


_PROBE_METADATA: dict[str, Any] = _AnyKey()
