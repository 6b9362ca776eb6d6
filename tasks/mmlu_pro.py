"""MMLU-Pro: 12,032 test questions in 14 categories, with up to ten options (A-J).

Paper: Wang et al. 2024, "MMLU-Pro: A More Robust and Challenging Multi-Task Language
Understanding Benchmark" (arXiv:2406.01574). Prompt: the authors' chain-of-thought prompt
(TIGER-AI-Lab/MMLU-Pro ``evaluate_from_api.py``) made zero-shot, as the DeepSeek-R1 paper
describes for MMLU-Pro: the category in the header, "X. option" lines in the data's own order
(the reference harness does not shuffle, so neither does r1eval), options exactly as stored
(leading spaces kept), and "The answer is (X)" asked for. The letter is read with r1eval's
A-J rules (the last "Answer: X" or "the answer is (X)"...). The reference harness scores an
unparsed response by a seeded random guess; r1eval scores it as no answer (wrong). The gold is
the ``answer`` letter, which the authors score against (``question_id`` 3983's ``answer_index``
disagrees with it, in every revision since July 2024). K = 1, as reported (EM).

Data: TIGER-Lab/MMLU-Pro on the Hub, pinned to b189ec765aa7 (``main`` in August 2026). Locally
``mmlu_pro/test.jsonl``: the October 2024 revision of the test split, from the authors' own
repository (``eval_results/model_outputs_jamba-1.5-large_5shots.zip``, model outputs dropped,
rows sorted by ``question_id``). It differs from the early-2025 Hub data in one question (6047)
and may differ more from later revisions (the dataset card logs a January 2026 fix of leading
spaces in options): the run records which source and checksum it read. Options that are
exactly "N/A" (padding) are dropped, as the authors' scripts do.
Scores are broken down by category and by source (ori_mmlu, stemez, theoremQA, scibench).
"""

from __future__ import annotations

from r1eval.task import HubSource, LocalSource, Record
from r1eval.task.data import read_jsonl, write_jsonl
from r1eval.task.factory import choice_task
from r1eval.task.multiple_choice import mmlu_pro_text
from r1eval.task.prompts import CHOICE_LETTERS, MMLU_PRO_PROMPT
from r1eval.types import Sample


def to_sample(record: Record) -> Sample:
    options = tuple(str(option) for option in record["options"] if option != "N/A")
    answer = str(record["answer"])
    if answer not in CHOICE_LETTERS[: len(options)]:
        raise ValueError(f"answer {answer!r} is not one of the {len(options)} options")
    return Sample(
        id=str(record["question_id"]),
        input=str(record["question"]),
        target=answer,
        choices=options,
        metadata={"category": str(record["category"]), "source": str(record["src"]).split("-")[0]},
    )


TASK = choice_task(
    name="mmlu_pro",
    version="1",
    description="MMLU-Pro, 12,032 questions in 14 categories, up to ten options, zero-shot CoT",
    hub=HubSource(
        path="TIGER-Lab/MMLU-Pro",
        split="test",
        revision="b189ec765aa7ed75c8acfea42df31fdae71f97be",
    ),
    local=LocalSource(path="mmlu_pro/test.jsonl", reader=read_jsonl, writer=write_jsonl),
    size=12032,
    to_sample=to_sample,
    prompt_template=MMLU_PRO_PROMPT,
    options=len(CHOICE_LETTERS),
    text=mmlu_pro_text,
    r1_samples=1,
    reference="Wang et al. 2024 (arXiv:2406.01574); prompt from TIGER-AI-Lab/MMLU-Pro, zero-shot",
    breakdown=("category", "source"),
)
