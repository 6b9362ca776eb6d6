"""The README's screenshots of the report, one per view, regenerated from scratch.

    python bench/report_screenshots.py             # writes docs/report/*.png
    python bench/report_screenshots.py --out DIR

No benchmark data appears in them: the run is of ``demo_algebra``, a task of 40 arithmetic
questions this script writes itself (with its own task file, data file and reported figures),
answered by a scripted model whose accuracy falls and whose responses grow with the level.
Two runs are made (a base and a candidate that got worse on the hardest questions) for the
side-by-side view. Chromium (Debian's ``chromium`` and ``chromium-driver``) takes the pictures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from fractions import Fraction
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from r1eval.cli import main as r1eval_main
from r1eval.run.plan import WorkItem
from r1eval.types import Completion

from common import REPO

sys.path.insert(0, str(REPO / "tests"))  # the test suite's run builder: plan, grade, score
from runs_for_tests import answer, build_run

MODEL = "demo-model"
TASK_FILE = '''"""demo_algebra: arithmetic questions written by bench/report_screenshots.py."""
from r1eval.task.data import read_jsonl
from r1eval.grading.math_answers import grade_math
from r1eval.task.prompts import MATH_PROMPT, math_prompt
from r1eval.task.definition import HubSource, LocalSource, Task
from r1eval.types import Sample


def to_sample(record):
    return Sample(id=record["id"], input=record["problem"], target=record["answer"],
                  metadata={"topic": record["topic"], "level": record["level"]})


TASK = Task(
    name="demo_algebra", version="1", description="40 arithmetic questions for screenshots",
    hub=HubSource(path="r1eval/demo-algebra", split="test", revision="0" * 40),
    local=LocalSource(path="demo_algebra/test.jsonl", reader=read_jsonl), size=40,
    prompt_template=MATH_PROMPT, to_sample=to_sample, prompt=math_prompt, grader=grade_math,
    r1_samples=8, reference="written for r1eval's README", breakdown=("topic", "level"),
)
'''
CLAIMS = f'''[source]
id = "demo-paper"
title = "A made-up paper reporting {MODEL} (for the screenshots only)"

[[figures]]
model = "{MODEL}"
benchmark = "demo_algebra"
metric = "pass@1"
value = 58.0
where = "Table 1"

[[figures]]
model = "{MODEL}"
benchmark = "demo_algebra"
metric = "cons@8"
value = 71.0
where = "Table 1"
'''


def question(i: int) -> dict[str, Any]:
    level, a, b = 1 + i % 5, 2 + i % 7, 3 + i % 5
    if i % 3 == 0:
        total = Fraction(1, a) + Fraction(b, a + b)
        problem = f"Compute $\\frac{{1}}{{{a}}} + \\frac{{{b}}}{{{a + b}}}$ in lowest terms."
        value, topic = f"\\frac{{{total.numerator}}}{{{total.denominator}}}", "fractions"
        if total.denominator == 1:
            value = str(total.numerator)
    elif i % 3 == 1:
        problem = f"Evaluate $2^{{{a}}} \\cdot 2^{{{b}}}$."
        value, topic = str(2 ** (a + b)), "powers"
    else:
        problem = f"Find $x > 0$ such that $\\sqrt{{x}} = {a + b}$."
        value, topic = str((a + b) ** 2), "roots"
    return {"id": f"q{i:02d}", "problem": problem, "answer": value, "topic": topic,
            "level": level}


def responder(worse: bool) -> Any:
    def respond(item: WorkItem) -> Completion | None:
        level = int(item.sample.metadata["level"])
        roll = hashlib.sha256(f"{item.sample.id}#{item.repeat}".encode()).digest()[0] / 255
        tokens = 600 + 900 * level + int(1500 * roll)
        if roll > 0.97 - 0.05 * level:
            return answer("<think>Let me expand this carefully, term by term: $x^2 + ...",
                          finish_reason="length", tokens=8192, reasoning=None)
        right = roll < (0.95 - 0.17 * level - (0.3 if worse and level >= 4 else 0))
        value = item.prompt.gold if right else f"\\frac{{{7 + item.repeat % 3}}}{{3}}"
        text = (f"<think>We need {item.sample.input.split('$')[1]}. Working it out step by "
                f"step gives ${value}$.</think>The answer is $\\boxed{{{value}}}$.")
        return answer(text, tokens=tokens)

    return respond


def screenshot(driver: Any, page: Path, view: str, target: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.set_window_size(1100, 1500 if view == "overview" else 860)
    driver.get(page.as_uri())
    driver.find_element(By.ID, f"tab-{view}").click()
    if view == "questions":
        from selenium.webdriver.support.ui import Select

        Select(driver.find_element(By.ID, "group-by")).select_by_value("topic")
        driver.find_elements(By.CSS_SELECTOR, ".qcell")[7].click()
    time.sleep(0.3)
    while driver.execute_script("return (document.body.dataset.typesetting || '0') !== '0'"):
        time.sleep(0.1)
    driver.save_screenshot(str(target))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "report")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "tasks").mkdir()
        (root / "tasks" / "demo_algebra.py").write_text(TASK_FILE)
        (root / "data" / "demo_algebra").mkdir(parents=True)
        (root / "data" / "demo_algebra" / "test.jsonl").write_text(
            "".join(json.dumps(question(i)) + "\n" for i in range(40)))
        (root / "claims.toml").write_text(CLAIMS)
        runs = {}
        for name, worse in (("base", False), ("candidate", True)):
            runs[name] = build_run(root / name, root / "data", "demo_algebra",
                                   responder(worse), model=MODEL, samples=8, max_tokens=8192,
                                   task_dir=root / "tasks")
        options = ["--task-dir", str(root / "tasks"), "--claims", str(root / "claims.toml")]
        single, double = root / "single.html", root / "double.html"
        for argv in ([str(runs["candidate"]), "-o", str(single)],
                     [str(runs["base"]), str(runs["candidate"]), "-o", str(double)]):
            if r1eval_main(["report", *argv, *options]) != 0:
                sys.exit("r1eval report failed")
        sys.path.insert(0, str(REPO / "bench"))
        from report_page import browser

        driver = browser()
        try:
            for view in ("overview", "questions", "lengths", "samples"):
                screenshot(driver, single, view, args.out / f"{view}.png")
            screenshot(driver, double, "regression", args.out / "regression.png")
        finally:
            driver.quit()
    for png in sorted(args.out.glob("*.png")):
        print(f"{png.relative_to(REPO) if png.is_relative_to(REPO) else png}: "
              f"{png.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
