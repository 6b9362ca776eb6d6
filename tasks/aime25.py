"""AIME 2025: the 30 problems of the 2025 AIME I and II.

Reported by DeepSeek-R1-0528, Qwen3 and the open reproductions as pass@1 (R1-0528: 16 samples,
temperature 0.6, top-p 0.95, 64K tokens); r1eval's default K is 64, as for AIME 2024.
Prompt: the DeepSeek-R1 model card's math instruction. Answers are integers 0-999.

Data: MathArena/aime_2025 on the Hub (split ``train``; no revision of it could be pinned from
here, so ``main`` is named and the run records the dataset's fingerprint). Locally
``aime25/test.jsonl``: MathArena's own files (eth-sri/matharena@81f103e, ``data/aime/``)
assembled as MathArena's Hub upload script does, plus ``id`` ("2025-I-1"...) and
``competition`` ("aime_2025_I"/"aime_2025_II"); answers agree 30/30 with NeMo-Skills,
evalchemy and AReaL. The Hub copy has neither field: there ``problem_idx`` is taken to run
1-30 over AIME I then II, as MathArena numbers the merged set (not verifiable from here).
Scores are broken down by paper (AIME I, AIME II).
"""

from __future__ import annotations

from r1eval.task import HubSource, LocalSource, Record
from r1eval.task.data import read_jsonl, write_jsonl
from r1eval.task.factory import integer_answer, math_task

PAPERS = {"aime_2025_I": "AIME I", "aime_2025_II": "AIME II"}


def with_ids(records: list[Record]) -> list[Record]:
    """Hub rows (no ``id``/``competition``): derive both from ``problem_idx`` 1-30."""
    named = []
    for record in records:
        if "id" not in record:
            number = int(record["problem_idx"])
            if not 1 <= number <= 30:
                raise ValueError(f"problem_idx {number} is not 1-30")
            paper, within = ("I", number) if number <= 15 else ("II", number - 15)
            record = {**record, "id": f"2025-{paper}-{within}", "competition": f"aime_2025_{paper}"}
        named.append(record)
    return named


def metadata(record: Record) -> dict[str, object]:
    return {"paper": PAPERS[record["competition"]]}


TASK = math_task(
    name="aime25",
    version="1",
    description="AIME 2025 (I and II), 30 integer-answer problems",
    hub=HubSource(path="MathArena/aime_2025", split="train", revision="main"),
    local=LocalSource(path="aime25/test.jsonl", reader=read_jsonl, writer=write_jsonl),
    size=30,
    answer=integer_answer,
    metadata=metadata,
    r1_samples=64,
    reference="MAA AIME 2025 I/II (MathArena copy); prompt from the DeepSeek-R1 model card",
    breakdown=("paper",),
    prepare=with_ids,
)
