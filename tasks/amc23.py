"""AMC 2023: 40 problems of the AMC 12A and 12B 2023, reworded to have integer answers.

The set used by the Qwen2.5-Math, SimpleRL, LIMO, DeepScaleR and SkyThought evaluations.
K = 16 by default: DeepScaleR reports AMC 2023 as pass@1 averaged over 16 samples per problem
(it is also what the DeepSeek-R1-0528 card uses for every sampled benchmark). Prompt: the
DeepSeek-R1 model card's math instruction. Scores are broken down by contest (12A, 12B).

Data: AI-MO/aimo-validation-amc on the Hub, revision 69d78a4a2c84 (split ``train``, 83 problems
of AMC 12 2022 and 2023); r1eval keeps its 2023 problems, the rows whose ``url`` names 2023,
as SkyThought does. Locally ``amc23/test.jsonl``: a byte copy of QwenLM/Qwen2.5-Math
``evaluation/data/amc23/test.jsonl``, those same 40 rows (ids 0-49 with gaps). Answers are
stored as floats (27.0) and read as integers.
"""

from __future__ import annotations

from r1eval.task import HubSource, LocalSource, Record
from r1eval.task.data import read_jsonl, write_jsonl
from r1eval.task.factory import integer_answer, math_task


def of_2023(records: list[Record]) -> list[Record]:
    """The 2023 problems (the Hub dataset also holds 2022's)."""
    return [r for r in records if "/2023_AMC_12" in str(r["url"])]


def metadata(record: Record) -> dict[str, object]:
    contest = "AMC 12A" if "/2023_AMC_12A_" in str(record["url"]) else "AMC 12B"
    return {"contest": contest, "url": record["url"]}


TASK = math_task(
    name="amc23",
    version="1",
    description="AMC 12 2023 (A and B), 40 problems reworded to integer answers",
    hub=HubSource(
        path="AI-MO/aimo-validation-amc",
        split="train",
        revision="69d78a4a2c840e82d69af6bc742bda09005f6316",
    ),
    local=LocalSource(path="amc23/test.jsonl", reader=read_jsonl, writer=write_jsonl),
    size=40,
    answer=integer_answer,
    metadata=metadata,
    r1_samples=16,
    reference="MAA AMC 12A/12B 2023 (AI-MO/aimo-validation-amc); DeepSeek-R1 model card prompt",
    breakdown=("contest",),
    prepare=of_2023,
)
