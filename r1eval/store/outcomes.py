"""What each logged sample came to, and which of those are outcomes: the one definition.

A sample's **status** is read from its log records (the completion and its latest grade):

- ``right``, ``wrong``, ``no_answer``, ``truncated``: graded. These are **outcomes**: each
  counts in the scores, right (correct) or not.
- ``error`` (the request failed: no completion) and ``ungraded`` (a completion not yet graded)
  are not outcomes: a failure of the infrastructure is never a wrong answer.

``truncated`` is a response not right and cut off at the length limit; ``wrong`` one whose
final answer does not match; ``no_answer`` any other that is not right (no final answer found,
or the grader gave up on it: a grader timeout or error). A question's outcomes are the
correctness of its graded samples; its K (samples per question) is what the plan asked for,
the highest repeat + 1.

Scoring (``scores.tally``), the run loader (the samples frame's ``verdict`` column holds the
status), the reproduction check, the paired regression, ``power``, ``regrade`` and the report
all read outcomes through this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:  # the frame helpers do not import pandas: regrade and scoring never need it
    import pandas as pd

__all__ = [
    "NOT_OUTCOMES",
    "OUTCOMES",
    "STATUSES",
    "STATUS_COLUMN",
    "SampleStatus",
    "graded_rows",
    "is_outcome",
    "logged_samples_per_question",
    "outcomes_by_question",
    "question_outcomes",
    "sample_status",
    "samples_per_question",
]

SampleStatus = Literal["right", "wrong", "no_answer", "truncated", "error", "ungraded"]

#: The statuses that are outcomes (graded: right or not).
OUTCOMES: tuple[SampleStatus, ...] = ("right", "wrong", "no_answer", "truncated")
#: The statuses that are not: a failed request, a response not yet graded.
NOT_OUTCOMES: tuple[SampleStatus, ...] = ("error", "ungraded")
STATUSES: tuple[SampleStatus, ...] = OUTCOMES + NOT_OUTCOMES

#: The samples frame's column that holds each sample's status (``r1eval.store.loading``).
STATUS_COLUMN = "verdict"


class Judged(Protocol):
    """What a sample's status reads of its grade: a logged one (``LoggedGrade``) or a new one
    (``r1eval.types.Grade``)."""

    @property
    def correct(self) -> bool: ...

    @property
    def failure(self) -> str | None: ...


class Ended(Protocol):
    """What a sample's status reads of its completion (``LoggedCompletion``)."""

    @property
    def finish_reason(self) -> str | None: ...


def sample_status(grade: Judged | None, completion: Ended | None) -> SampleStatus:
    """The status of one sample from its log records (None: no such record)."""
    if completion is None:
        return "error"
    if grade is None:
        return "ungraded"
    if grade.correct:
        return "right"
    if completion.finish_reason == "length":
        return "truncated"
    return "wrong" if grade.failure == "wrong" else "no_answer"


def is_outcome(status: str) -> bool:
    """Whether a sample of this status counts in the scores (it was graded)."""
    return status in OUTCOMES


def question_outcomes(statuses: Iterable[str]) -> tuple[bool, ...]:
    """One question's outcomes: for each graded sample (in order), whether it was right."""
    return tuple(status == "right" for status in statuses if status in OUTCOMES)


def graded_rows(samples: pd.DataFrame, task: str | None = None) -> pd.DataFrame:
    """The rows of a samples frame (``Run.samples``) that are outcomes, of ``task`` if given."""
    graded = samples[STATUS_COLUMN].isin(OUTCOMES)
    if task is not None:
        graded &= samples["task"] == task
    return samples[graded]


def outcomes_by_question(samples: pd.DataFrame, task: str) -> dict[str, tuple[bool, ...]]:
    """Each question of ``task`` with a graded sample (sorted by id), and its outcomes."""
    return {
        str(question): question_outcomes(group[STATUS_COLUMN])
        for question, group in graded_rows(samples, task).groupby("sample_id", sort=True)
    }


def samples_per_question(repeats: Iterable[int]) -> int:
    """K, the samples per question a plan asks for: its highest repeat index + 1 (0 for an
    empty plan). A run records it per task in run.json (``samples_per_question``)."""
    return max(repeats, default=-1) + 1


def logged_samples_per_question(samples: pd.DataFrame, task: str) -> int:
    """K of ``task`` as a run's samples frame shows it: ``samples_per_question`` of the repeats
    it logged, failed requests included (so a failure does not lower it)."""
    return samples_per_question(int(r) for r in samples.loc[samples["task"] == task, "repeat"])
