"""Multiple-choice prompts with up to ten options (A-J), with optional seeded shuffling.

A question's options are rendered by a ``ChoiceFormat``: ``simple_evals_text`` (GPQA, MMLU:
exactly four options, "A) text") or ``mmlu_pro_text`` (MMLU-Pro: three to ten, "A. text").
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

from r1eval.task.prompts import (
    CHOICE_LETTERS,
    LETTERS,
    MMLU_PRO_PROMPT,
    MULTIPLE_CHOICE_PROMPT,
    user_turn,
)
from r1eval.types import Prompt, Sample

#: ``(sample, options in the order shown) -> the user turn's text``.
ChoiceFormat = Callable[[Sample, list[str]], str]


def option_order(seed_key: str, count: int = len(LETTERS)) -> list[int]:
    """A permutation of ``count`` options, drawn from a seed derived from ``seed_key``.

    Uses SHA-256 rather than ``hash()`` so the order is the same on every machine and run.
    """
    seed = int.from_bytes(hashlib.sha256(seed_key.encode("utf-8")).digest()[:8], "big")
    order = list(range(count))
    random.Random(seed).shuffle(order)
    return order


def unshuffled_letter(letter: str, order: list[int]) -> str:
    """The letter, in the data's own order, of the option shown at ``letter`` under ``order``.

    Majority votes across repeats must compare options, not letters: GPQA shuffles the
    options per repeat, so "B" in two repeats may name two different options. A letter past
    the options shown (an "E" to a four-option MMLU-Pro question) names none: it is kept.
    """
    shown = CHOICE_LETTERS.index(letter)
    return CHOICE_LETTERS[order[shown]] if shown < len(order) else letter


def simple_evals_text(sample: Sample, options: list[str]) -> str:
    """openai/simple-evals' four-option prompt."""
    if len(options) != len(LETTERS):
        raise ValueError(f"the simple-evals prompt has 4 options, got {len(options)}")
    return MULTIPLE_CHOICE_PROMPT.format(
        question=sample.input, **dict(zip(LETTERS, options, strict=True))
    )


def mmlu_pro_text(sample: Sample, options: list[str]) -> str:
    """MMLU-Pro's own chain-of-thought prompt, zero-shot; the header names the category."""
    if not 1 <= len(options) <= len(CHOICE_LETTERS):
        raise ValueError(f"MMLU-Pro questions have 1-10 options, got {len(options)}")
    lines = "".join(f"{CHOICE_LETTERS[at]}. {option}\n" for at, option in enumerate(options))
    return MMLU_PRO_PROMPT.format(
        category=sample.metadata["category"], question=sample.input, options=lines
    )


def question_as_shown(sample: Sample, order: list[int] | None = None) -> str:
    """The question with its options lettered as one repeat showed them (for reading)."""
    if not sample.choices:
        return sample.input
    shown = order if order is not None else range(len(sample.choices))
    lines = [f"{CHOICE_LETTERS[at]}) {sample.choices[i]}" for at, i in enumerate(shown)]
    return sample.input + "\n\n" + "\n".join(lines)


def multiple_choice_prompt(
    sample: Sample, order: list[int] | None = None, text: ChoiceFormat = simple_evals_text
) -> Prompt:
    """The prompt for ``sample``, options presented in ``order`` and rendered by ``text``.

    ``sample.target`` is the letter of the correct option in the data's own order; the gold
    is the letter at which that option ends up. The order used is recorded in the metadata.
    """
    order = order if order is not None else list(range(len(sample.choices)))
    options = [sample.choices[i] for i in order]
    gold = CHOICE_LETTERS[order.index(CHOICE_LETTERS.index(sample.target))]
    return Prompt(messages=user_turn(text(sample, options)), gold=gold,
                  metadata={"option_order": order})


@dataclass(frozen=True)
class ChoicePrompt:
    """Renders a multiple-choice Sample for one repeat; ``shuffle`` seeds the option order
    from the task name, the question id and the repeat (the order is recorded)."""

    task: str
    text: ChoiceFormat = simple_evals_text
    shuffle: bool = False

    def __call__(self, sample: Sample, repeat: int) -> Prompt:
        order = None
        if self.shuffle:
            order = option_order(f"{self.task}:{sample.id}:{repeat}", len(sample.choices))
        return multiple_choice_prompt(sample, order, self.text)
