"""HMMT February 2025: the 30 problems of the Harvard-MIT Mathematics Tournament's February
2025 individual rounds, with answers that are LaTeX expressions (fractions, radicals, pi).

Reported by DeepSeek-R1-0528 and Qwen3 as pass@1 (R1-0528: 16 samples, temperature 0.6, top-p
0.95, 64K tokens); r1eval's default K is 64, as for AIME. Prompt: the DeepSeek-R1 model card's
math instruction. Answers are verified symbolically with math-verify, like MATH-500; problem
10's gold is a pair of values, and an answer must give both.

Data: MathArena/hmmt_feb_2025 on the Hub (split ``train``; no revision of it could be pinned
from here, so ``main`` is named and the run records the dataset's fingerprint). Locally
``hmmt_feb25/test.jsonl``: MathArena's own files (eth-sri/matharena@81f103e,
``data/hmmt/hmmt_feb_2025/``), the upstream of the Hub copy, assembled as MathArena's upload
script does, plus ``id`` ("hmmt_feb_2025-N"), which Hub rows get from ``problem_idx``.
"""

from __future__ import annotations

from r1eval.task import HubSource, LocalSource, Record
from r1eval.task.data import read_jsonl, write_jsonl
from r1eval.task.factory import math_task


def with_ids(records: list[Record]) -> list[Record]:
    """Hub rows (no ``id``): ``hmmt_feb_2025-<problem_idx>``, as in the local copy."""
    return [r if "id" in r else {**r, "id": f"hmmt_feb_2025-{int(r['problem_idx'])}"}
            for r in records]


TASK = math_task(
    name="hmmt_feb25",
    version="1",
    description="HMMT February 2025, 30 problems with LaTeX-expression answers",
    hub=HubSource(path="MathArena/hmmt_feb_2025", split="train", revision="main"),
    local=LocalSource(path="hmmt_feb25/test.jsonl", reader=read_jsonl, writer=write_jsonl),
    size=30,
    r1_samples=64,
    reference="HMMT February 2025 (MathArena copy); prompt from the DeepSeek-R1 model card",
    prepare=with_ids,
)
