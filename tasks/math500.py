"""MATH-500: the 500-problem MATH test subset of OpenAI's PRM800K ("Let's Verify Step by Step").

Paper: DeepSeek-R1 (DeepSeek-AI, 2025): pass@1, 4 samples in the open-r1 reproduction.
Data: HuggingFaceH4/MATH-500 on the Hub; locally ``math500/test.jsonl`` (byte-identical to
openai/prm800k ``math_splits/test.jsonl``). Prompt: the DeepSeek-R1 model card's math line.
The gold is the ``answer`` field (LaTeX), verified symbolically with math-verify.
"""

from __future__ import annotations

from r1eval.task import HubSource, LocalSource, Record
from r1eval.task.data import read_jsonl, write_jsonl
from r1eval.task.factory import math_task


def metadata(record: Record) -> dict[str, object]:
    return {"subject": record["subject"], "level": int(record["level"])}


TASK = math_task(
    name="math500",
    version="1",
    description="MATH-500, 500 competition math problems with LaTeX answers",
    hub=HubSource(
        path="HuggingFaceH4/MATH-500",
        split="test",
        revision="6e4ed1a2a79af7d8630a6b768ec859cb5af4d3be",
    ),
    local=LocalSource(path="math500/test.jsonl", reader=read_jsonl,
                      writer=write_jsonl),
    size=500,
    id_field="unique_id",
    metadata=metadata,
    r1_samples=4,
    reference="Lightman et al. 2023 (arXiv:2305.20050); DeepSeek-R1 model card prompt",
    breakdown=("subject", "level"),
)
