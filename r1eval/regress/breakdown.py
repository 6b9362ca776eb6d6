"""Where a paired difference comes from: the questions lost and gained between two runs, and
the difference per group of questions (a metadata key's values: MMLU's subjects, categories).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from r1eval.regress.pairing import Pairing
from r1eval.regress.permutation import inverted_interval, paired_test
from r1eval.scoring import stats

__all__ = ["Flip", "GroupDifference", "flipped", "flips", "group_differences"]


@dataclass(frozen=True)
class Flip:
    """A question right in one run and wrong in the other (see ``flipped``)."""

    id: str
    base_answer: str | None
    candidate_answer: str | None
    base_pass1: float
    candidate_pass1: float


@dataclass(frozen=True)
class GroupDifference:
    """The paired difference over the questions of one subject, category, level..."""

    key: str
    value: str
    n_questions: int
    base_pass1: float
    candidate_pass1: float
    interval: stats.Interval
    lost: int
    gained: int

    @property
    def difference(self) -> float:
        return self.candidate_pass1 - self.base_pass1


def flipped(base: float, candidate: float) -> int:
    """-1 lost (right in base, wrong in candidate), +1 gained, 0 neither; right means more
    than half of the samples correct, wrong fewer than half (exactly half is neither)."""
    if base > 0.5 > candidate:
        return -1
    return 1 if candidate > 0.5 > base else 0


def flips(pairing: Pairing) -> tuple[list[Flip], list[Flip]]:
    """Questions lost and gained, biggest change first."""
    every = [
        Flip(q, b.answer, c.answer, b.pass1, c.pass1)
        for q, b, c in zip(pairing.ids, pairing.base, pairing.candidate, strict=True)
    ]
    lost = [f for f in every if flipped(f.base_pass1, f.candidate_pass1) < 0]
    gained = [f for f in every if flipped(f.base_pass1, f.candidate_pass1) > 0]
    lost.sort(key=lambda f: (f.candidate_pass1 - f.base_pass1, f.id))
    gained.sort(key=lambda f: (f.base_pass1 - f.candidate_pass1, f.id))
    return lost, gained


def group_differences(
    pairing: Pairing, keys: Sequence[str], metadata: Mapping[str, Mapping[str, Any]],
    alpha: float,
) -> list[GroupDifference]:
    """The paired difference per value of each metadata key (e.g. MMLU category, subject)."""
    found = []
    for key in keys:
        members: dict[str, list[int]] = {}
        for i, qid in enumerate(pairing.ids):
            members.setdefault(str(metadata.get(qid, {}).get(key)), []).append(i)
        for value, index in sorted(members.items()):
            base = np.array([pairing.base[i].pass1 for i in index])
            cand = np.array([pairing.candidate[i].pass1 for i in index])
            changes = [flipped(b, c) for b, c in zip(base, cand, strict=True)]
            found.append(GroupDifference(
                key, value, len(index), float(base.mean()), float(cand.mean()),
                inverted_interval(paired_test(pairing, index, alpha)[1]),
                changes.count(-1), changes.count(1),
            ))
    return found
