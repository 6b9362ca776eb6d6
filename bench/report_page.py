"""How fast the HTML report opens and responds in headless Chromium, on a 100,000-sample run.

    python bench/report_page.py            # 12,000 MMLU questions x 8 + 500 MATH-500 x 8
    python bench/report_page.py --smoke    # a tiny run for the test suite

The run is written through r1eval's own plan, records, grading and scoring (no HTTP), with
responses of ``--reasoning-chars`` characters of reasoning each, right, wrong or truncated by
the question. ``r1eval report`` writes the page; Chromium (Debian's ``chromium`` and
``chromium-driver``, through Selenium) opens it, and the page itself says when it was ready:
``performance.now()`` at the end of its script, i.e. from the start of navigation through
reading the file, parsing the data and MathJax, to the first view drawn. Then each view is
timed from the click to the end of the work it started (math typeset included).
Printed: the page size and each time beside the 3-second budget of issue 19.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from common import REPO, data_dir, print_report

sys.path.insert(0, str(REPO / "tests"))  # the test suite's run builder: plan, grade, score
from runs_for_tests import answer, build_run

from r1eval.cli import main as r1eval_main
from r1eval.run.plan import WorkItem
from r1eval.types import Completion

BUDGET_S = 3.0
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def responder(reasoning_chars: int) -> Any:
    filler = ("Let $x$ be the unknown; then $\\frac{x}{2} + 1 = 3$ gives $x = 4$. "
              * (reasoning_chars // 60 + 1))[:reasoning_chars]

    def respond(item: WorkItem) -> Completion:
        n = hashlib.sha256(f"{item.sample.id}#{item.repeat}".encode()).digest()[0] % 4
        if n == 2:
            return answer(f"<think>{filler}", finish_reason="length", tokens=32768)
        gold = item.prompt.gold if n == 0 else ("A" if item.prompt.gold != "A" else "B")
        if item.task == "mmlu":
            return answer(f"<think>{filler}</think>Answer: {gold}", tokens=900 + 700 * n)
        value = gold if n == 0 else "\\frac{9}{8}"
        return answer(f"<think>{filler}</think>So $\\boxed{{{value}}}$.", tokens=2500 + 900 * n)

    return respond


def browser() -> Any:
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--no-first-run", "--window-size=1280,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(300)
    return driver


def timed_click(driver: Any, css: str, value: str | None = None) -> float:
    """Seconds from a click (or choosing ``value`` in a select) to the end of what it
    started (drawing, then typesetting)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    target = driver.find_element(By.CSS_SELECTOR, css)  # one element: not 12,000 cells' handles
    start = time.perf_counter()
    if value is None:
        target.click()
    else:
        Select(target).select_by_value(value)
    WebDriverWait(driver, 120, poll_frequency=0.02).until(lambda d: d.execute_script(
        "return (document.body.dataset.typesetting || '0') === '0'"))
    return time.perf_counter() - start


def measure(page: Path) -> list[tuple[str, float]]:
    driver = browser()
    try:
        start = time.perf_counter()
        driver.get(page.as_uri())
        loaded = time.perf_counter() - start
        ready = float(driver.execute_script("return document.body.dataset.readyMs")) / 1000
        times = [("open: page ready (in-page clock)", ready),
                 ("open: driver.get returned", loaded)]
        times.append(("Questions tab (MATH-500)", timed_click(driver, "#tab-questions")))
        times.append(("switch to MMLU's questions", timed_click(driver, "#task-pick", "mmlu")))
        times.append(("open a question (all its samples, typeset)", timed_click(driver, ".qcell")))
        times.append(("Lengths tab", timed_click(driver, "#tab-lengths")))
        times.append(("Samples tab (first page, typeset)", timed_click(driver, "#tab-samples")))
        search = ("const box = document.getElementById('text-search'), t = performance.now();"
                  "box.value = 'then'; applyFilters(); return (performance.now() - t) / 1000;")
        times.append(("search the reasoning of the task's samples", driver.execute_script(search)))
        times.append(("next page of samples", timed_click(driver, "#next")))
        return times
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="a tiny run for the test suite")
    parser.add_argument("--questions", type=int, default=12_000,
                        help="MMLU questions (MATH-500 adds its 500), default 12,000")
    parser.add_argument("--samples", type=int, default=8, help="samples per question (8)")
    parser.add_argument("--reasoning-chars", type=int, default=400,
                        help="characters of reasoning per response (400)")
    args = parser.parse_args()
    if args.smoke:
        args.questions, args.samples, args.reasoning_chars = 10, 2, 200
    data = data_dir(args.data_dir)
    with TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        start = time.perf_counter()
        build_run(run, data, "math500,mmlu", responder(args.reasoning_chars),
                  limit=args.questions, samples=args.samples, max_tokens=32768)
        built = time.perf_counter() - start
        page = Path(tmp) / "report.html"
        start = time.perf_counter()
        if r1eval_main(["report", str(run), "-o", str(page)]) != 0:
            sys.exit("r1eval report failed")
        written = time.perf_counter() - start
        samples = (min(args.questions, 500) + args.questions) * args.samples
        times = measure(page)
        size_mb = page.stat().st_size / 1e6
    rows = [[what, f"{seconds:.2f}", f"{seconds / BUDGET_S:.2f}"] for what, seconds in times]
    print_report(
        f"The report page of a {samples:,}-sample run in headless Chromium",
        ["step", "seconds", "/ 3 s budget"], rows,
        [f"Page: {size_mb:.1f} MB ({args.reasoning_chars} characters of reasoning a response). "
         f"Run written in {built:.0f} s; `r1eval report` took {written:.1f} s."],
    )


if __name__ == "__main__":
    main()
