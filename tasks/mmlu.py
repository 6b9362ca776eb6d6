"""MMLU: 14,042 test questions in 57 subjects (Hendrycks et al. 2021), asked zero-shot.

Paper: "Measuring Massive Multitask Language Understanding" (arXiv:2009.03300).
Data: cais/mmlu config "all" on the Hub; locally the original ``mmlu/test/<subject>_test.csv``
files (no header: question, A, B, C, D, answer letter), subjects in alphabetical order, rows in
file order. Prompt: openai/simple-evals mmlu_eval.py (the same multiple-choice template as GPQA),
options in the data's order. Scores overall (micro average), by subject and by the four
categories of the original repository's categories.py.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from r1eval.errors import DataError
from r1eval.task import HubSource, LocalSource, Record
from r1eval.task.data import csv_text, read_csv_rows
from r1eval.task.factory import choice_task
from r1eval.task.prompts import LETTERS, MULTIPLE_CHOICE_PROMPT
from r1eval.types import Sample

_CATEGORY_SUBJECTS = {
    "STEM": (
        "abstract_algebra astronomy college_biology college_chemistry college_computer_science "
        "college_mathematics college_physics computer_security conceptual_physics "
        "electrical_engineering elementary_mathematics high_school_biology "
        "high_school_chemistry high_school_computer_science high_school_mathematics "
        "high_school_physics high_school_statistics machine_learning"
    ),
    "humanities": (
        "formal_logic high_school_european_history high_school_us_history "
        "high_school_world_history international_law jurisprudence logical_fallacies "
        "moral_disputes moral_scenarios philosophy prehistory professional_law world_religions"
    ),
    "social sciences": (
        "econometrics high_school_geography high_school_government_and_politics "
        "high_school_macroeconomics high_school_microeconomics high_school_psychology "
        "human_sexuality professional_psychology public_relations security_studies sociology "
        "us_foreign_policy"
    ),
    "other": (
        "anatomy business_ethics clinical_knowledge college_medicine global_facts human_aging "
        "management marketing medical_genetics miscellaneous nutrition professional_accounting "
        "professional_medicine virology"
    ),
}
CATEGORY = {s: c for c, names in _CATEGORY_SUBJECTS.items() for s in names.split()}


def read_mmlu_folder(path: Path) -> list[Record]:
    records = []
    for csv_path in sorted(path.glob("*_test.csv")):
        subject = csv_path.name.removesuffix("_test.csv")
        rows = read_csv_rows(csv_path.read_text(encoding="utf-8"), str(csv_path), columns=6)
        for number, (question, *options, answer) in enumerate(rows, start=1):
            if answer.strip() not in LETTERS:
                raise DataError(f"{csv_path}: row {number}: answer {answer!r} is not A-D")
            records.append({
                "question": question,
                "subject": subject,
                "choices": options,
                "answer": LETTERS.index(answer.strip()),
            })
    return records


def write_mmlu_folder(records: list[Record], path: Path) -> None:
    """The inverse of ``read_mmlu_folder``: one ``<subject>_test.csv`` per subject, rows in
    the records' order."""
    by_subject: dict[str, list[list[str]]] = {}
    for record in records:
        by_subject.setdefault(str(record["subject"]), []).append(
            [record["question"], *record["choices"], LETTERS[int(record["answer"])]])
    path.mkdir(parents=True, exist_ok=True)
    for subject, rows in by_subject.items():
        (path / f"{subject}_test.csv").write_text(csv_text(rows), encoding="utf-8")


def number_within_subject(records: list[Record]) -> list[Record]:
    """Give each record its row number within its subject: a stable question id."""
    seen: Counter[str] = Counter()
    numbered = []
    for record in records:
        numbered.append({**record, "row": seen[record["subject"]]})
        seen[record["subject"]] += 1
    return numbered


def to_sample(record: Record) -> Sample:
    subject = str(record["subject"])
    choices = tuple(str(c) for c in record["choices"])
    if len(choices) != 4:
        raise ValueError(f"expected 4 choices, got {len(choices)}")
    return Sample(
        id=f"{subject}/{record['row']}",
        input=str(record["question"]),
        target=LETTERS[int(record["answer"])],
        choices=choices,
        metadata={"subject": subject, "category": CATEGORY[subject]},
    )


TASK = choice_task(
    name="mmlu",
    version="1",
    description="MMLU, 14,042 questions in 57 subjects, zero-shot",
    hub=HubSource(
        path="cais/mmlu",
        config="all",
        split="test",
        revision="c30699e8356da336a370243923dbaf21066bb9fe",
    ),
    local=LocalSource(path="mmlu/test", reader=read_mmlu_folder, writer=write_mmlu_folder),
    size=14042,
    prompt_template=MULTIPLE_CHOICE_PROMPT,
    to_sample=to_sample,
    r1_samples=1,
    reference="Hendrycks et al. 2021 (arXiv:2009.03300); prompt from openai/simple-evals",
    breakdown=("category", "subject"),
    prepare=number_within_subject,
)
