"""The exact prompts of the DeepSeek-R1 protocol, shared by the tasks that use them.

Both are user turns with no system prompt, as the DeepSeek-R1 model card recommends.
"""

from __future__ import annotations

import hashlib

from r1eval.types import Prompt, Sample

# DeepSeek-R1 model card: math problems get this line after the problem.
MATH_PROMPT = "{problem}\nPlease reason step by step, and put your final answer within \\boxed{{}}."

# openai/simple-evals (gpqa_eval.py, mmlu_eval.py): QUERY_TEMPLATE_MULTICHOICE.
MULTIPLE_CHOICE_PROMPT = (
    "Answer the following multiple choice question. The last line of your response should be "
    "of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. "
    "Think step by step before answering.\n"
    "\n"
    "{question}\n"
    "\n"
    "A) {A}\n"
    "B) {B}\n"
    "C) {C}\n"
    "D) {D}"
)

LETTERS = "ABCD"


def user_turn(text: str) -> tuple[dict[str, str], ...]:
    """The messages of a single user turn."""
    return ({"role": "user", "content": text},)


def template_hash(template: str) -> str:
    """A short, stable fingerprint of a prompt template, recorded in each run."""
    return hashlib.sha256(template.encode("utf-8")).hexdigest()[:16]


def math_prompt(sample: Sample, repeat: int) -> Prompt:
    """The math prompt for ``sample`` (the same for every repeat)."""
    return Prompt(messages=user_turn(MATH_PROMPT.format(problem=sample.input)), gold=sample.target)
