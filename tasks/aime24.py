"""AIME 2024: the 30 problems of the 2024 AIME I and II.

Paper: DeepSeek-R1 (DeepSeek-AI, 2025), Table 4/5: pass@1 over 64 samples, cons@64.
Data: HuggingFaceH4/aime_2024 on the Hub; locally ``aime24/test.jsonl`` (the QwenLM/Qwen2.5-Math
evaluation copy). Prompt: the DeepSeek-R1 model card's math instruction.
Answers are integers 0-999; the data stores some zero-padded ("025" is 25).
"""

from __future__ import annotations

from r1eval.task import HubSource, LocalSource, Record
from r1eval.task.data import read_jsonl, write_jsonl
from r1eval.task.factory import integer_answer, math_task


def metadata(record: Record) -> dict[str, object]:
    return {"url": record.get("url")}


TASK = math_task(
    name="aime24",
    version="1",
    description="AIME 2024 (I and II), 30 integer-answer problems",
    hub=HubSource(
        path="HuggingFaceH4/aime_2024",
        split="train",
        revision="2fe88a2f1091d5048c0f36abc874fb997b3dd99a",
    ),
    local=LocalSource(path="aime24/test.jsonl", reader=read_jsonl,
                      writer=write_jsonl),
    size=30,
    answer=integer_answer,
    metadata=metadata,
    r1_samples=64,
    reference="DeepSeek-R1 (arXiv:2501.12948); prompt from the DeepSeek-R1 model card",
)
