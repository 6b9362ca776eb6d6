"""The pairing of two runs' questions: each run's graded samples per question, aligned by id.

A question is compared only when both runs have a graded sample of it; the others are counted
by why they were left out (``Pairing.left_out``). The statistics on the pairs are
``r1eval.regress.paired``'s.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from r1eval.scoring import stats
from r1eval.store.loading import Run
from r1eval.store.outcomes import (
    STATUS_COLUMN,
    graded_rows,
    logged_samples_per_question,
    question_outcomes,
)
from r1eval.task.multiple_choice import unshuffled_letter
from r1eval.task.prompts import CHOICE_LETTERS

__all__ = ["Pairing", "QuestionRecord", "pair_task", "question_metadata", "question_records"]

@dataclass(frozen=True)
class QuestionRecord:
    """One run's graded samples of one question, and its most common answer."""

    outcomes: tuple[bool, ...]
    answer: str | None

    @property
    def pass1(self) -> float:
        return sum(self.outcomes) / len(self.outcomes)


@dataclass(frozen=True)
class Pairing:
    """The questions of one task with a graded sample in both runs (aligned by id), how many
    were left out, by reason, and each run's K (``samples``: base, candidate)."""

    task: str
    ids: list[str]
    base: list[QuestionRecord]
    candidate: list[QuestionRecord]
    left_out: dict[str, int]
    samples: tuple[int, int]



def _display_answer(extracted: object, order: object) -> str | None:
    """The extracted answer; a multiple-choice letter in the data's own option order (GPQA
    shuffles options per repeat, so a bare letter would name different options)."""
    if not isinstance(extracted, str):
        return None
    if isinstance(order, list) and len(extracted) == 1 and extracted in CHOICE_LETTERS:
        return unshuffled_letter(extracted, order)
    return extracted


def question_records(run: Run, task: str) -> tuple[set[str], dict[str, QuestionRecord]]:
    """Every question id of ``task`` in ``run``, and the questions with a graded sample."""
    graded = graded_rows(run.samples, task)
    statuses: dict[str, list[str]] = {}
    answers: dict[str, list[str | None]] = {}
    for qid, status, extracted, order in zip(
        graded["sample_id"], graded[STATUS_COLUMN], graded["extracted"], graded["option_order"],
        strict=True,
    ):
        statuses.setdefault(str(qid), []).append(status)
        answers.setdefault(str(qid), []).append(_display_answer(extracted, order))
    records = {
        qid: QuestionRecord(question_outcomes(found), stats.majority_vote(answers[qid]))
        for qid, found in statuses.items()
    }
    present = run.samples.loc[run.samples["task"] == task, "sample_id"]
    return {str(q) for q in present}, records


def _left_out_reason(qid: str, present: tuple[set[str], set[str]],
                     graded: tuple[set[str], set[str]]) -> str:
    if qid not in present[1]:
        return "in the base run only"
    if qid not in present[0]:
        return "in the candidate run only"
    missing = [run for run, ids in zip(("base", "candidate"), graded, strict=True)
               if qid not in ids]
    return "no graded sample in either run" if len(missing) == 2 else \
        f"no graded sample in the {missing[0]} run"


def pair_task(base: Run, candidate: Run, task: str) -> Pairing:
    """The questions of ``task`` that both runs graded, aligned by id (sorted)."""
    present_base, graded_base = question_records(base, task)
    present_cand, graded_cand = question_records(candidate, task)
    shared = sorted(set(graded_base) & set(graded_cand))
    reasons = Counter(
        _left_out_reason(q, (present_base, present_cand), (set(graded_base), set(graded_cand)))
        for q in (present_base | present_cand) - set(shared)
    )
    return Pairing(
        task=task,
        ids=shared,
        base=[graded_base[q] for q in shared],
        candidate=[graded_cand[q] for q in shared],
        left_out=dict(sorted(reasons.items())),
        samples=(logged_samples_per_question(base.samples, task),
                 logged_samples_per_question(candidate.samples, task)),
    )


def question_metadata(run: Run, task: str) -> dict[str, dict[str, Any]]:
    """Each question's metadata (subject, category, level...) as the run logged it."""
    rows = run.samples[run.samples["task"] == task]
    return {str(q): m for q, m in zip(rows["sample_id"], rows["metadata"], strict=True)}
