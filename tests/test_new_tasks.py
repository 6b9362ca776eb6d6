"""The four newer benchmarks on their real files: AIME 2025, HMMT February 2025, AMC 2023 and
MMLU-Pro. Counts, ids, checksums (as each folder's PROVENANCE.md publishes them), prompts,
breakdowns, and every gold graded right against itself and wrong against a perturbed value.

HMMT's answers are expressions: ``HMMT_FORMS`` lists, for every problem, the gold as the data
holds it, an equivalent form checked by hand that the grader must accept, and a near miss it
must reject. The golds are read from the data folder and checked against the table.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from r1eval.grading.pool import call_grader
from r1eval.task.data import LoadedTask, load_task
from r1eval.task.prompts import CHOICE_LETTERS
from r1eval.task.registry import resolve

pytestmark = pytest.mark.data

MATH_SUFFIX = "\nPlease reason step by step, and put your final answer within \\boxed{}."
NEW_TASKS = {"aime25": 30, "hmmt_feb25": 30, "amc23": 40, "mmlu_pro": 12032}
SHA256 = {  # published in each folder's PROVENANCE.md
    "aime25": "b6c916b7cb0c5d4d059f0aac5ea4cc74dae321890f683c7ee8aa9525d7344231",
    "hmmt_feb25": "12800130100333c762613bf9918070778991c48e23cfd6966bb2729e0c899344",
    "amc23": "43707e1ca784602d8479de24ee8ce36609dbebc46dd152b0b12a46611aa898a4",
    "mmlu_pro": "32c67294bd848fbc30e57ae1c500e99919252ecd385600e57e250fb37868dde9",
}

# problem number: (gold as in the data, an equivalent form to accept, a near miss to reject)
HMMT_FORMS = {
    1: ("103", r"\frac{206}{2}", "102"),
    2: ("3375", "15^3", "3374"),
    3: (r"\frac{1}{576}", "1/576", r"\frac{1}{575}"),
    4: ("-984", "-(984)", "984"),
    5: ("890", "890.0", "809"),
    6: (r"\frac{1311}{2017}", r"\dfrac{1311}{2017}", r"\frac{1311}{2016}"),
    7: (r"\frac{9 \sqrt{23}}{23}", r"\frac{9}{\sqrt{23}}", r"\frac{9\sqrt{23}}{22}"),
    8: (r"1-\frac{2}{\pi}", r"\frac{\pi-2}{\pi}", r"1-\frac{1}{\pi}"),
    9: ("1037", "1037.0", "1036"),
    10: (r"\frac{-1+\sqrt{17}}{2}, \frac{-1-\sqrt{17}}{2}",
         r"\frac{-1-\sqrt{17}}{2}, \frac{-1+\sqrt{17}}{2}", r"\frac{-1+\sqrt{17}}{2}"),
    11: ("56", r"7 \cdot 8", "57"),
    12: ("29", r"\frac{58}{2}", "28"),
    13: ("105", r"\binom{15}{2}", "106"),
    14: ("2304", "48^2", "2303"),
    15: ("200", r"2 \times 10^2", "201"),
    16: ("6300", "6300.0", "6301"),
    17: (r"2^{25} \cdot 26!", r"26! \cdot 2^{25}", r"2^{24} \cdot 26!"),
    18: (r"\frac{2025}{101}", "2025/101", r"\frac{2025}{100}"),
    19: (r"\frac{4}{9}", r"\frac{8}{18}", r"\frac{5}{9}"),
    20: (r"\frac{448}{3}", r"\frac{896}{6}", r"\frac{448}{9}"),
    21: ("26", r"\sqrt{676}", "25"),
    22: ("63", "2^6-1", "64"),
    23: (r"8\sqrt{10}", r"\sqrt{640}", r"8\sqrt{11}"),
    24: ("20", r"4 \cdot 5", "21"),
    25: (r"\sqrt{23}-2 \sqrt{3}", r"\sqrt{23}-\sqrt{12}", r"\sqrt{23}-\sqrt{3}"),
    26: (r"9\sqrt{15}", r"\sqrt{1215}", r"9\sqrt{14}"),
    27: (r"\frac{7}{18}", r"\frac{14}{36}", r"\frac{7}{19}"),
    28: (r"\sqrt{6}", "6^{1/2}", r"\sqrt{5}"),
    29: (r"14+4\sqrt{37}", r"2(7+2\sqrt{37})", r"14+4\sqrt{35}"),
    30: (r"\sqrt{\frac{95}{24}}", r"\frac{\sqrt{570}}{12}", r"\sqrt{\frac{95}{23}}"),
}


def load(name: str, data_dir: Path, limit: int | None = None) -> LoadedTask:
    return load_task(resolve([name])[0], data_dir, limit)


def raw(data_dir: Path, name: str) -> list[dict[str, Any]]:
    path = data_dir / name / "test.jsonl"
    lines = path.read_text(encoding="utf-8").split("\n")  # not splitlines(): U+2028 in text
    return [json.loads(line) for line in lines if line]


def boxed(answer: str) -> str:
    return f"So the final answer is $\\boxed{{{answer}}}$."


@pytest.mark.parametrize(("name", "size"), NEW_TASKS.items())
def test_counts_ids_and_checksums(name: str, size: int, data_dir: Path) -> None:
    loaded = load(name, data_dir)
    assert len(loaded.samples) == size == loaded.task.size == len(raw(data_dir, name))
    assert len({s.id for s in loaded.samples}) == size
    assert loaded.source == {"kind": "local", "sha256": SHA256[name],
                             "location": str(data_dir / name / "test.jsonl")}


@pytest.mark.parametrize("name", ["aime25", "hmmt_feb25", "amc23"])
def test_math_prompt_is_the_r1_model_card_prompt(name: str, data_dir: Path) -> None:
    loaded = load(name, data_dir)
    for sample in loaded.samples:
        prompt = loaded.task.prompt(sample, 0)
        assert prompt.messages == ({"role": "user", "content": sample.input + MATH_SUFFIX},)
        assert prompt.gold == sample.target and loaded.task.prompt(sample, 3) == prompt


@pytest.mark.parametrize("name", ["aime25", "amc23"])
def test_every_integer_gold_grades_right_and_its_neighbour_wrong(name: str, data_dir: Path) -> None:
    loaded = load(name, data_dir)
    answers = [row["answer"] for row in raw(data_dir, name)]
    assert [s.target for s in loaded.samples] == [str(int(a)) for a in answers]
    grader = loaded.task.grader
    right = [call_grader(grader, boxed(s.target), s.target).correct for s in loaded.samples]
    wrong = [call_grader(grader, boxed(str(int(s.target) + 1)), s.target).correct
             for s in loaded.samples]
    assert all(right) and not any(wrong)


def test_aime25_ids_answers_and_papers(data_dir: Path) -> None:
    loaded = load("aime25", data_dir)
    assert [s.id for s in loaded.samples[:2]] == ["2025-I-1", "2025-I-2"]
    assert loaded.samples[-1].id == "2025-II-15"
    assert all(isinstance(row["answer"], int) for row in raw(data_dir, "aime25"))
    assert Counter(s.metadata["paper"] for s in loaded.samples) == {"AIME I": 15, "AIME II": 15}
    assert loaded.task.breakdown == ("paper",) and loaded.task.r1_samples == 64


def test_aime25_hub_rows_get_the_same_ids(data_dir: Path) -> None:
    """Hub rows have neither ``id`` nor ``competition``: the ids derived from problem_idx
    1-30 are the local copy's."""
    task = resolve(["aime25"])[0]
    local = raw(data_dir, "aime25")
    hub_like = [{"problem_idx": number, "problem": row["problem"], "answer": row["answer"]}
                for number, row in enumerate(local, start=1)]
    derived = [task.to_sample(record) for record in task.prepare(hub_like)]
    assert derived == [task.to_sample(record) for record in local]


def test_amc23_answers_are_whole_floats_and_contests(data_dir: Path) -> None:
    rows = raw(data_dir, "amc23")
    assert all(isinstance(r["answer"], float) and r["answer"].is_integer() for r in rows)
    loaded = load("amc23", data_dir)
    assert loaded.samples[0].target == "27"  # 27.0 in the file
    assert Counter(s.metadata["contest"] for s in loaded.samples) == {"AMC 12A": 22,
                                                                       "AMC 12B": 18}
    ids = sorted(int(s.id) for s in loaded.samples)
    assert set(range(50)) - set(ids) == {6, 9, 24, 31, 34, 35, 37, 38, 39, 42}


def test_amc23_keeps_only_2023_rows_from_the_hub_dataset(data_dir: Path) -> None:
    task = resolve(["amc23"])[0]
    rows = raw(data_dir, "amc23")
    of_2022 = {**rows[0], "id": 99, "url": rows[0]["url"].replace("2023_AMC", "2022_AMC")}
    assert task.prepare([of_2022, *rows]) == rows


def test_hmmt_table_covers_every_gold_in_the_data(data_dir: Path) -> None:
    golds = {row["problem_idx"]: row["answer"] for row in raw(data_dir, "hmmt_feb25")}
    assert {number: gold for number, (gold, _, _) in HMMT_FORMS.items()} == golds


@pytest.mark.parametrize("number", sorted(HMMT_FORMS))
def test_hmmt_gold_equivalent_form_and_near_miss(number: int, data_dir: Path) -> None:
    loaded = load("hmmt_feb25", data_dir)
    sample = next(s for s in loaded.samples if s.id == f"hmmt_feb_2025-{number}")
    gold, equivalent, near_miss = HMMT_FORMS[number]
    assert sample.target == gold
    grader = loaded.task.grader
    assert call_grader(grader, boxed(gold), gold).correct
    assert call_grader(grader, boxed(equivalent), gold).correct, equivalent
    assert not call_grader(grader, boxed(near_miss), gold).correct, near_miss


def test_mmlu_pro_categories_options_and_sources(data_dir: Path) -> None:
    loaded = load("mmlu_pro", data_dir)
    samples = loaded.samples
    assert Counter(s.metadata["category"] for s in samples) == {
        "math": 1351, "physics": 1299, "chemistry": 1132, "law": 1101, "engineering": 969,
        "other": 924, "economics": 844, "health": 818, "psychology": 798, "business": 789,
        "biology": 717, "philosophy": 499, "computer science": 410, "history": 381}
    assert Counter(len(s.choices) for s in samples) == {
        10: 9982, 9: 801, 8: 320, 7: 158, 6: 92, 5: 52, 4: 607, 3: 20}
    assert Counter(s.metadata["source"] for s in samples) == {
        "ori_mmlu": 6810, "stemez": 4083, "theoremQA": 598, "scibench": 541}
    assert Counter(s.target for s in samples) == {
        "A": 1405, "B": 1350, "C": 1316, "D": 1342, "E": 1142, "F": 1125, "G": 1179,
        "H": 1120, "I": 1107, "J": 946}
    assert loaded.task.breakdown == ("category", "source") and loaded.task.r1_samples == 1


def test_mmlu_pro_gold_is_the_answer_letter_as_the_authors_score(data_dir: Path) -> None:
    rows = {str(r["question_id"]): r for r in raw(data_dir, "mmlu_pro")}
    loaded = load("mmlu_pro", data_dir)
    disagreeing = [s.id for s in loaded.samples
                   if CHOICE_LETTERS[rows[s.id]["answer_index"]] != s.target]
    assert disagreeing == ["3983"] and rows["3983"]["answer"] == "C"
    assert all(s.target == rows[s.id]["answer"] for s in loaded.samples)


def test_mmlu_pro_every_gold_grades_right_and_another_letter_wrong(data_dir: Path) -> None:
    loaded = load("mmlu_pro", data_dir)
    grader = loaded.task.grader
    failures = []
    for sample in loaded.samples:
        prompt = loaded.task.prompt(sample, 0)
        letters = CHOICE_LETTERS[: len(sample.choices)]
        other = letters[(letters.index(prompt.gold) + 1) % len(letters)]
        right = call_grader(grader, f"The answer is ({prompt.gold})", prompt.gold)
        wrong = call_grader(grader, f"Answer: {other}", prompt.gold)
        if not right.correct or wrong.correct or wrong.extracted != other:
            failures.append(sample.id)
    assert failures == []


def test_mmlu_pro_prompt_is_the_authors_zero_shot_cot_prompt(data_dir: Path) -> None:
    rows = {str(r["question_id"]): r for r in raw(data_dir, "mmlu_pro")}
    loaded = load("mmlu_pro", data_dir)
    spaced = next(s for s in loaded.samples if any(c.startswith(" ") for c in s.choices))
    for sample in (loaded.samples[0], spaced):
        prompt = loaded.task.prompt(sample, 0)
        row = rows[sample.id]
        options = "".join(f"{CHOICE_LETTERS[i]}. {o}\n" for i, o in enumerate(row["options"]))
        assert prompt.messages == ({"role": "user", "content": (
            f"The following are multiple choice questions (with answers) about {row['category']}."
            " Think step by step and then output the answer in the format of \"The answer is "
            f"(X)\" at the end.\n\nQuestion: {row['question']}\nOptions: {options}"
            "Answer: Let's think step by step.\n\n")},)
        assert prompt.gold == row["answer"]  # options in the data's order: no shuffling
        assert prompt.metadata["option_order"] == list(range(len(row["options"])))
        assert loaded.task.prompt(sample, 1) == prompt
    assert ".  " in loaded.task.prompt(spaced, 0).messages[0]["content"]  # the space is kept


def test_hmmt_hub_rows_get_the_same_ids(data_dir: Path) -> None:
    task = resolve(["hmmt_feb25"])[0]
    local = raw(data_dir, "hmmt_feb25")
    hub_like = [{k: v for k, v in row.items() if k != "id"} for row in local]
    assert [task.to_sample(r) for r in task.prepare(hub_like)] == [
        task.to_sample(r) for r in local]


def test_mmlu_pro_drops_na_padding_as_the_authors_scripts_do(data_dir: Path) -> None:
    task = resolve(["mmlu_pro"])[0]
    row = next(r for r in raw(data_dir, "mmlu_pro") if len(r["options"]) == 4)
    padded = {**row, "options": [*row["options"], *["N/A"] * 6]}
    assert task.to_sample(padded) == task.to_sample(row)
    assert len(task.to_sample(padded).choices) == 4
    with pytest.raises(ValueError, match="not one of the 4 options"):
        task.to_sample({**row, "answer": "E"})
