"""The HTML report: self-contained, private text left out, and usable in a real browser."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from r1eval.cli import main
from r1eval.data import load_task
from r1eval.plan import WorkItem
from r1eval.registry import resolve
from r1eval.types import Completion

from runs_for_tests import answer, build_run

pytestmark = pytest.mark.data

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def scripted(item: WorkItem) -> Completion | None:
    """Right, wrong, truncated or failed, by the question's position."""
    n = hashlib.sha256(item.sample.id.encode()).digest()[0] % 4
    if n == 3 and item.task == "math500":
        return None
    if n == 2:
        return answer("<think>still thinking", finish_reason="length")
    gold = item.prompt.gold if n == 0 else ("A" if item.prompt.gold != "A" else "B")
    if item.task in ("gpqa_diamond", "mmlu"):
        return answer(f"</think>Answer: {gold}")
    return answer(f"</think>The answer is \\boxed{{{gold if n == 0 else '98765'}}}.")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    run = tmp_path_factory.mktemp("report") / "run"
    return build_run(run, data_dir, "math500,gpqa_diamond", scripted, limit=20)


def questions(task: str, data_dir: Path) -> list[str]:
    """The first 20 questions of ``task`` as they appear in the page's JSON data."""
    texts = [s.input for s in load_task(resolve([task])[0], data_dir, 20).samples]
    return [json.dumps(t, ensure_ascii=False)[1:-1].replace("</", "<\\/")[:60] for t in texts]


def test_report_is_self_contained_and_leaves_gpqa_text_out(
    small_run: Path, data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    assert main(["report", str(small_run), "-o", str(out)]) == 0
    page = out.read_text()
    assert "http://" not in page.replace("http://127.0.0.1:9/v1", "")
    assert "https://" not in page and "<link" not in page and "src=" not in page
    assert all(q in page for q in questions("math500", data_dir))
    assert not any(q in page for q in questions("gpqa_diamond", data_dir))  # never printed
    assert "left out at its authors' request" in page

    private = tmp_path / "private.html"
    assert main(["report", str(small_run), "-o", str(private), "--include-gpqa-text"]) == 0
    assert all(q in private.read_text() for q in questions("gpqa_diamond", data_dir))
    private.unlink()  # do not leave GPQA text on disk


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("R1EVAL_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium and chromedriver are required (apt-get install chromium "
                        "chromium-driver)")
        pytest.skip("no chromium/chromedriver")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def shown(driver: object, css: str) -> list[object]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, css))  # type: ignore[attr-defined]


def choose(driver: object, select_id: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, select_id)).select_by_value(value)  # type: ignore[attr-defined]


def range_text(driver: object) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, "range").text)  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.browser
def test_filters_work_in_a_real_browser(browser: object, small_run: Path, tmp_path: Path) -> None:
    import r1eval

    out = tmp_path / "report.html"
    assert main(["report", str(small_run), "-o", str(out)]) == 0
    samples = r1eval.load_run(small_run).samples
    browser.get(out.as_uri())  # type: ignore[attr-defined]
    assert range_text(browser) == f"1-{len(samples)} of {len(samples)}"
    for verdict in ("wrong", "truncated", "error"):
        choose(browser, "verdict", verdict)
        rows = shown(browser, "tr.sample")
        expected = int((samples["verdict"] == verdict).sum())
        assert expected > 0 and len(rows) == expected
        assert {r.get_attribute("data-verdict") for r in rows} == {verdict}  # type: ignore[attr-defined]
    choose(browser, "verdict", "")
    choose(browser, "task", "gpqa_diamond")
    assert range_text(browser) == f"1-{(samples['task'] == 'gpqa_diamond').sum()} of 20"


@pytest.mark.slow
@pytest.mark.browser
def test_a_14k_sample_mmlu_report_renders(
    browser: object, data_dir: Path, tmp_path: Path
) -> None:
    run = build_run(tmp_path / "mmlu", data_dir, "mmlu", scripted)
    out = tmp_path / "mmlu.html"
    assert main(["report", str(run), "-o", str(out)]) == 0
    browser.get(out.as_uri())  # type: ignore[attr-defined]
    assert range_text(browser) == "1-50 of 14042"
    assert len(shown(browser, "tr.sample")) == 50  # one page drawn, not 14,042 rows
    choose(browser, "verdict", "right")
    right = range_text(browser)
    assert right.startswith("1-50 of ") and 2000 < int(right.split()[-1]) < 6000
    target = os.environ.get("R1EVAL_SCREENSHOT")  # where to keep a screenshot, if anywhere
    if target:
        browser.save_screenshot(target)  # type: ignore[attr-defined]


def test_multiple_choice_questions_show_their_options_as_lettered(
    data_dir: Path, tmp_path: Path
) -> None:
    """MMLU-Pro: up to ten options, each lettered as the prompt showed it (A-J)."""
    def respond(item: WorkItem) -> Completion:
        return answer(f"</think>The answer is ({item.prompt.gold})")

    run = build_run(tmp_path / "run", data_dir, "mmlu_pro", respond, limit=3)
    out = tmp_path / "report.html"
    assert main(["report", str(run), "-o", str(out)]) == 0
    page = out.read_text()
    first = load_task(resolve(["mmlu_pro"])[0], data_dir, 1).samples[0]
    for letter, option in zip("ABCDEFGHIJ", first.choices, strict=False):
        assert json.dumps(f"\n{letter}) {option}", ensure_ascii=False)[1:-1] in page
