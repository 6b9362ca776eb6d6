"""Four-option multiple-choice prompts (GPQA Diamond, MMLU), with optional seeded shuffling."""

from __future__ import annotations

import hashlib
import random

from r1eval.prompts import LETTERS, MULTIPLE_CHOICE_PROMPT, user_turn
from r1eval.types import Prompt, Sample


def option_order(seed_key: str) -> list[int]:
    """A permutation of the four options, drawn from a seed derived from ``seed_key``.

    Uses SHA-256 rather than ``hash()`` so the order is the same on every machine and run.
    """
    seed = int.from_bytes(hashlib.sha256(seed_key.encode("utf-8")).digest()[:8], "big")
    order = list(range(len(LETTERS)))
    random.Random(seed).shuffle(order)
    return order


def unshuffled_letter(letter: str, order: list[int]) -> str:
    """The letter, in the data's own order, of the option shown at ``letter`` under ``order``.

    Majority votes across repeats must compare options, not letters: GPQA shuffles the
    options per repeat, so "B" in two repeats may name two different options.
    """
    return LETTERS[order[LETTERS.index(letter)]]


def multiple_choice_prompt(sample: Sample, order: list[int] | None = None) -> Prompt:
    """The simple-evals prompt for ``sample``, options presented in ``order``.

    ``sample.target`` is the letter of the correct option in the data's own order; the gold
    is the letter at which that option ends up. The order used is recorded in the metadata.
    """
    order = order if order is not None else list(range(len(sample.choices)))
    options = [sample.choices[i] for i in order]
    text = MULTIPLE_CHOICE_PROMPT.format(
        question=sample.input, **{letter: opt for letter, opt in zip(LETTERS, options, strict=True)}
    )
    gold = LETTERS[order.index(LETTERS.index(sample.target))]
    return Prompt(messages=user_turn(text), gold=gold, metadata={"option_order": order})
