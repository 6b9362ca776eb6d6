"""The exact prompts of the reference protocols, shared by the tasks that use them.

All are user turns with no system prompt, as the DeepSeek-R1 model card recommends.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

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

# TIGER-AI-Lab/MMLU-Pro evaluate_from_api.py, made zero-shot (no worked examples) as the
# DeepSeek-R1 paper describes: the header names the category, each option is "X. text" on its
# own line (options kept exactly as the data has them, leading spaces included), and the
# question ends with "Answer: Let's think step by step." followed by a blank line.
MMLU_PRO_PROMPT = (
    "The following are multiple choice questions (with answers) about {category}. Think step by"
    " step and then output the answer in the format of \"The answer is (X)\" at the end.\n"
    "\n"
    "Question: {question}\n"
    "Options: {options}"
    "Answer: Let's think step by step.\n"
    "\n"
)

#: The letters of up to ten options (MMLU-Pro); four-option tasks use the first four.
CHOICE_LETTERS = "ABCDEFGHIJ"


def user_turn(text: str) -> tuple[dict[str, str], ...]:
    """The messages of a single user turn."""
    return ({"role": "user", "content": text},)


def template_hash(template: str) -> str:
    """A short, stable fingerprint of a prompt template (what runs recorded before r1eval
    hashed the rendered prompt; see ``Task.legacy_prompt_hash``)."""
    return hashlib.sha256(template.encode("utf-8")).hexdigest()[:16]


def rendered_prompt_hash(prompts: Sequence[Prompt]) -> str:
    """A short, stable fingerprint of rendered prompts: their messages, golds and metadata."""
    rendered = [[list(p.messages), p.gold, p.metadata] for p in prompts]
    text = json.dumps(rendered, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def math_prompt(sample: Sample, repeat: int) -> Prompt:
    """The math prompt for ``sample`` (the same for every repeat)."""
    return Prompt(messages=user_turn(MATH_PROMPT.format(problem=sample.input)), gold=sample.target)
