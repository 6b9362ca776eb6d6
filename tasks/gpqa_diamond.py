"""GPQA Diamond: 198 graduate-level biology, chemistry and physics questions.

Paper: Rein et al. 2023, "GPQA: A Graduate-Level Google-Proof Q&A Benchmark" (arXiv:2311.12022).
Data: Idavidrein/gpqa (gated) config gpqa_diamond on the Hub; locally the authors' password-
protected ``gpqa/dataset.zip``, read in memory (the authors ask that questions never appear in
plain text online: r1eval never writes them to disk; ``r1eval data download`` stores the Hub's
rows in a zip protected the same way). Prompt: openai/simple-evals gpqa_eval.py.
The correct answer is always listed first in the data: the four options are put in a seeded
random order per question and per repeat, and the order is recorded with each sample.
"""

from __future__ import annotations

from pathlib import Path

from r1eval.task import HubSource, LocalSource, Record
from r1eval.task.data import csv_text, read_csv_rows, read_zip_member
from r1eval.task.factory import choice_task
from r1eval.task.prompts import MULTIPLE_CHOICE_PROMPT
from r1eval.task.zipcrypto import write_encrypted_zip
from r1eval.types import Sample

ZIP_MEMBER = "dataset/gpqa_diamond.csv"
ZIP_PASSWORD = b"deserted-untie-orchid"  # published by the authors in their README


def read_gpqa_zip(path: Path) -> list[Record]:
    text = read_zip_member(path, ZIP_MEMBER, ZIP_PASSWORD)
    where = f"{path}:{ZIP_MEMBER}"
    header = read_csv_rows(text.split("\n", 1)[0], where)[0]
    rows = read_csv_rows(text, where, columns=len(header))
    return [dict(zip(header, row, strict=True)) for row in rows[1:]]


def write_gpqa_zip(records: list[Record], path: Path) -> None:
    """The inverse of ``read_gpqa_zip``: the CSV, made in memory, goes straight into a zip
    protected like the authors' own (same member, same password); it never touches the disk
    in plain text."""
    header = list(records[0]) if records else []
    rows = [header, *([_field(record.get(column)) for column in header] for record in records)]
    write_encrypted_zip(path, ZIP_MEMBER, csv_text(rows).encode("utf-8"), ZIP_PASSWORD)


def _field(value: object) -> str:
    return "" if value is None else str(value)


def to_sample(record: Record) -> Sample:
    options = (
        record["Correct Answer"],
        record["Incorrect Answer 1"],
        record["Incorrect Answer 2"],
        record["Incorrect Answer 3"],
    )
    return Sample(
        id=str(record["Record ID"]),
        input=str(record["Question"]),
        target="A",  # the correct answer comes first in the data's own order
        choices=tuple(str(option) for option in options),
        metadata={"domain": record.get("High-level domain"), "subdomain": record.get("Subdomain")},
    )


TASK = choice_task(
    name="gpqa_diamond",
    version="1",
    description="GPQA Diamond, 198 four-option science questions, options shuffled per repeat",
    hub=HubSource(
        path="Idavidrein/gpqa",
        config="gpqa_diamond",
        split="train",
        revision="633f5ee89ab8ad4522a9f850766b73f62147ffdd",
    ),
    local=LocalSource(path="gpqa/dataset.zip", reader=read_gpqa_zip, writer=write_gpqa_zip),
    size=198,
    prompt_template=MULTIPLE_CHOICE_PROMPT,
    to_sample=to_sample,
    shuffle=True,
    r1_samples=8,
    reference="Rein et al. 2023 (arXiv:2311.12022); prompt from openai/simple-evals",
    breakdown=("domain",),
    private_text=True,
)
