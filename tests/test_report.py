"""The HTML report: self-contained, private text left out, and usable in a real browser."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from r1eval.cli import main
from r1eval.reports.mathjax import mathjax_script
from r1eval.run.plan import WorkItem
from r1eval.task.data import load_task
from r1eval.task.registry import resolve
from r1eval.types import Completion

from conftest import CHROMEDRIVER, CHROMIUM, require_browser
from runs_for_tests import answer, build_run, varied_math

pytestmark = pytest.mark.data



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
    return [json.dumps(t, ensure_ascii=False)[1:-1].replace("<", "\\u003c")[:60] for t in texts]


def test_report_is_self_contained_and_leaves_gpqa_text_out(
    small_run: Path, data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    assert main(["report", str(small_run), "-o", str(out)]) == 0
    page = out.read_text()
    mathjax = mathjax_script()
    assert mathjax is not None and page.count(mathjax) == 1  # inlined, from its package
    own = page.replace(mathjax, "")  # MathJax's code names URLs it never fetches here (see
    # test_math_is_typeset_and_the_toggle_shows_its_source: the page requests nothing)
    assert "http://" not in own.replace("http://127.0.0.1:9/v1", "").replace(
        "http://www.w3.org/2000/svg", "")
    assert "https://" not in own and "<link" not in own and "src=" not in own
    assert all(q in page for q in questions("math500", data_dir))
    assert not any(q in page for q in questions("gpqa_diamond", data_dir))  # never printed
    assert "left out at its authors' request" in page

    private = tmp_path / "private.html"
    assert main(["report", str(small_run), "-o", str(private), "--include-gpqa-text"]) == 0
    assert all(q in private.read_text() for q in questions("gpqa_diamond", data_dir))
    private.unlink()  # do not leave GPQA text on disk


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    require_browser()
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
    driver.set_window_size(1280, 1000)
    yield driver
    driver.quit()


def shown(driver: object, css: str) -> list[object]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, css))  # type: ignore[attr-defined]


def choose(driver: object, select_id: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, select_id)).select_by_value(value)  # type: ignore[attr-defined]


def click(driver: object, element_id: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, element_id).click()  # type: ignore[attr-defined]


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
    click(browser, "tab-samples")
    choose(browser, "task-pick", "math500")
    math = samples[samples["task"] == "math500"]
    assert range_text(browser) == f"1-{len(math)} of {len(math)}"
    for verdict in ("wrong", "truncated", "error"):
        choose(browser, "verdict", verdict)
        rows = shown(browser, "tr.sample")
        expected = int((math["verdict"] == verdict).sum())
        assert expected > 0 and len(rows) == expected
        assert {r.get_attribute("data-verdict") for r in rows} == {verdict}  # type: ignore[attr-defined]
    choose(browser, "verdict", "")
    choose(browser, "task-pick", "gpqa_diamond")
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
    click(browser, "tab-samples")
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
        shown = json.dumps(f"\n{letter}) {option}", ensure_ascii=False)[1:-1]
        assert shown.replace("<", "\\u003c") in page  # as the page's data escapes "<"


# ------------------------------------------------------------------ the views, in a browser

MODEL = "deepseek-r1-distill-qwen-7b"  # a model with reported figures in the registry


def lost_some(item: WorkItem) -> Completion | None:
    """A candidate that answers every question wrong whose id hashes even."""
    if hashlib.sha256(item.sample.id.encode()).digest()[1] % 2:
        return varied_math(item)
    return answer("<think>hm</think>So $\\boxed{12345}$.", tokens=900)


@pytest.fixture(scope="module")
def k4_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    run = tmp_path_factory.mktemp("k4") / "run"
    return build_run(run, data_dir, "aime24,math500", varied_math, model=MODEL, limit=40,
                     samples=4, max_tokens=4000)


@pytest.fixture(scope="module")
def k4_samples(k4_run: Path) -> pd.DataFrame:
    import r1eval

    return r1eval.load_run(k4_run).samples


@pytest.fixture(scope="module")
def k4_page(k4_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("k4page") / "report.html"
    assert main(["report", str(k4_run), "-o", str(out)]) == 0
    return out


def typeset_done(driver: object) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30).until(  # type: ignore[arg-type]
        lambda d: d.execute_script("return (document.body.dataset.typesetting || '0') === '0'"))


def script(driver: object, code: str) -> object:
    return driver.execute_script(code)  # type: ignore[attr-defined]


def open_page(driver: object, page: Path, width: int = 1280) -> None:
    driver.set_window_size(width, 1000)  # type: ignore[attr-defined]
    driver.get(page.as_uri())  # type: ignore[attr-defined]
    assert script(driver, "return document.body.dataset.ready") == "1"


@pytest.mark.slow
@pytest.mark.browser
def test_overview_shows_each_tasks_scores_curve_and_reported_verdicts(
    browser: object, k4_run: Path, k4_page: Path
) -> None:
    import r1eval

    scores = r1eval.load_run(k4_run, samples=False).scores.set_index("task")
    open_page(browser, k4_page)
    cards = shown(browser, "#view-overview .card")
    assert [c.get_attribute("data-task") for c in cards] == ["aime24", "math500"]  # type: ignore[attr-defined]
    for card in cards:
        task = card.get_attribute("data-task")  # type: ignore[attr-defined]
        text = card.text  # type: ignore[attr-defined]
        assert f"cons@4 (majority vote) {100 * scores.loc[task, 'cons@k']:.1f} %" in text
        assert f"pass@4 {100 * scores.loc[task, 'pass@k']:.1f} %" in text
        truncated = 100 * scores.loc[task, "truncated_rate"]
        assert f"truncated (hit the token limit) {truncated:.1f} %" in text
        assert "95% interval, over questions" in text and "p90" in text
        assert "95% interval, same questions" in text
        assert len(card.find_elements("css selector", "svg.curve circle")) == 4  # type: ignore[attr-defined]
    points = shown(browser, "#view-overview svg.reported .point")
    assert points, "the registry's figures for the model are drawn"
    points[0].click()  # type: ignore[attr-defined]
    detail = shown(browser, "#view-overview .reported-detail")[0].text  # type: ignore[attr-defined]
    assert f"verdict: {points[0].get_attribute('data-verdict')}" in detail  # type: ignore[attr-defined]
    assert "measured" in detail and "95% interval" in detail


@pytest.mark.slow
@pytest.mark.browser
def test_question_grid_sorts_filters_and_opens_all_k_samples(
    browser: object, k4_samples: pd.DataFrame, k4_page: Path
) -> None:
    samples = k4_samples
    open_page(browser, k4_page)
    click(browser, "tab-questions")
    assert len(shown(browser, ".qcell")) == 30  # aime24 first
    choose(browser, "task-pick", "math500")  # switch tasks
    assert len(shown(browser, ".qcell")) == 40
    math = samples[samples["task"] == "math500"]
    levels = {str(m["level"]) for m in math["metadata"]}
    choose(browser, "group-by", "level")
    assert len(shown(browser, "#grid h3")) == len(levels)
    choose(browser, "group-by", "")
    choose(browser, "sort-by", "pass")
    rates = [float(c.get_attribute("data-pass")) for c in shown(browser, ".qcell")]  # type: ignore[attr-defined]
    assert rates == sorted(rates) and rates[0] < rates[-1]
    choose(browser, "pass-filter", "none")
    never = shown(browser, ".qcell")
    assert never and {c.get_attribute("data-pass") for c in never} == {"0"}  # type: ignore[attr-defined]
    choose(browser, "pass-filter", "")
    cell = shown(browser, ".qcell")[-1]
    qid = cell.get_attribute("data-id")  # type: ignore[attr-defined]
    cell.click()  # type: ignore[attr-defined]
    rows = shown(browser, "#question-panel tr.qsample")
    expected = math[math["sample_id"] == qid]
    assert len(rows) == len(expected) == 4
    assert [r.get_attribute("data-verdict") for r in rows] == list(expected["verdict"])  # type: ignore[attr-defined]
    panel = shown(browser, "#question-panel")[0].text  # type: ignore[attr-defined]
    assert "majority answer" in panel and "gold answer" in panel
    reasoning = shown(browser, "#question-panel details:not([open]) summary")
    assert reasoning and all(s.text.startswith("reasoning") for s in reasoning)  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.browser
def test_math_is_typeset_and_the_toggle_shows_its_source(
    browser: object, k4_page: Path, data_dir: Path
) -> None:
    from selenium.webdriver.common.by import By

    texts = {s.id: s.input for s in load_task(resolve(["math500"])[0], data_dir, 40).samples}
    qid = next(q for q, text in texts.items() if "\\frac" in text)
    open_page(browser, k4_page)
    click(browser, "tab-questions")
    choose(browser, "task-pick", "math500")
    next(c for c in shown(browser, ".qcell") if c.get_attribute("data-id") == qid).click()  # type: ignore[attr-defined]
    typeset_done(browser)
    panel = browser.find_element(By.ID, "question-panel")  # type: ignore[attr-defined]
    question = panel.find_element(By.CSS_SELECTOR, ".question")
    assert question.find_elements(By.CSS_SELECTOR, "mjx-container svg")  # typeset
    assert "\\frac" not in panel.text  # no raw LaTeX visible in rendered mode
    assert panel.find_elements(By.CSS_SELECTOR, ".gold mjx-container")
    click(browser, "math-source")
    panel = browser.find_element(By.ID, "question-panel")  # type: ignore[attr-defined]
    assert not panel.find_elements(By.CSS_SELECTOR, "mjx-container")
    assert "\\frac" in panel.find_element(By.CSS_SELECTOR, ".question").text
    click(browser, "math-source")
    typeset_done(browser)
    assert browser.find_elements(By.CSS_SELECTOR, "#question-panel .question mjx-container")  # type: ignore[attr-defined]
    assert script(browser, "return performance.getEntriesByType('resource').length") == 0


@pytest.mark.slow
@pytest.mark.browser
def test_lengths_view_draws_the_distribution_and_the_cut_share(
    browser: object, k4_samples: pd.DataFrame, k4_page: Path
) -> None:
    samples = k4_samples
    aime = samples[(samples["task"] == "aime24") & (samples["verdict"] != "error")]
    open_page(browser, k4_page)
    click(browser, "tab-lengths")
    summary = shown(browser, "#view-lengths .summary")[0].text  # type: ignore[attr-defined]
    truncated = 100 * (aime["verdict"] == "truncated").mean()
    assert f"token limit 4,000: {truncated:.1f} % were cut by it" in summary
    bars = shown(browser, "#view-lengths svg.histogram rect.bar")
    assert len(bars) >= 4
    assert shown(browser, "#view-lengths svg.cut polyline")
    assert shown(browser, "#view-lengths svg.histogram polyline.accuracy")


@pytest.mark.slow
@pytest.mark.browser
def test_reasoning_is_searchable(browser: object, k4_samples: pd.DataFrame, k4_page: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait


    samples = k4_samples
    open_page(browser, k4_page)
    click(browser, "tab-samples")
    shown(browser, "#text-search")[0].send_keys("still thinking")  # type: ignore[attr-defined]
    expected = int(((samples["task"] == "aime24") & (samples["verdict"] == "truncated")).sum())
    WebDriverWait(browser, 10).until(  # type: ignore[arg-type]
        lambda d: range_text(d) == f"1-{expected} of {expected}")
    assert {r.get_attribute("data-verdict") for r in shown(browser, "tr.sample")} == {"truncated"}  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.browser
def test_a_900_px_window_needs_no_horizontal_scrollbar(browser: object, k4_page: Path) -> None:
    open_page(browser, k4_page, width=900)
    wide = "return document.documentElement.scrollWidth > document.documentElement.clientWidth"
    for view in ("overview", "questions", "lengths", "samples"):
        click(browser, f"tab-{view}")
        if view == "questions":
            choose(browser, "task-pick", "math500")
            shown(browser, ".qcell")[0].click()  # type: ignore[attr-defined]
        if view == "samples":
            for box in shown(browser, "#samples details")[:12]:
                box.click()  # type: ignore[attr-defined]
        typeset_done(browser)
        assert script(browser, "return document.documentElement.clientWidth") <= 900
        assert not script(browser, wide), view


@pytest.mark.slow
@pytest.mark.browser
def test_two_runs_side_by_side_put_the_gate_and_the_flips_first(
    browser: object, k4_run: Path, data_dir: Path, tmp_path: Path
) -> None:
    candidate = build_run(tmp_path / "candidate", data_dir, "aime24,math500", lost_some,
                          model=MODEL, limit=40, samples=4, max_tokens=4000)
    assert main(["report", str(k4_run), str(candidate)]) == 0
    page = candidate / f"report-vs-{k4_run.name}.html"
    open_page(browser, page)
    assert "active" in shown(browser, "#tab-regression")[0].get_attribute("class")  # type: ignore[attr-defined]
    assert shown(browser, "#gate")[0].text.startswith("Gate: FAILED")  # type: ignore[attr-defined]
    flips = [r.get_attribute("data-flip") for r in shown(browser, "tr.rq")]  # type: ignore[attr-defined]
    assert flips[0] == "lost" and "" in flips
    assert flips == sorted(flips, key=lambda f: {"lost": 0, "gained": 1, "": 2}[f])
    assert len(flips) == 30  # aime24: every question, flipped or not




def test_report_from_another_folder_finds_the_question_text(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The run read ``--data-dir data`` relative to where it started; the report is made
    from elsewhere and still shows the questions (the run recorded the path resolved)."""
    (tmp_path / "data").symlink_to(data_dir)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    run = build_run(tmp_path / "run", Path("data"), "math500", scripted, limit=5)
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["report", str(run), "-o", "report.html"]) == 0
    page = (tmp_path / "elsewhere" / "report.html").read_text()
    assert all(q in page for q in questions("math500", data_dir)[:5])
    assert "questions not shown" not in capsys.readouterr().err


def test_report_says_on_the_terminal_when_question_text_is_missing(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "data" / "math500"
    copy.mkdir(parents=True)
    (copy / "test.jsonl").write_bytes((data_dir / "math500" / "test.jsonl").read_bytes())
    run = build_run(tmp_path / "run", tmp_path / "data", "math500", scripted, limit=5)
    (copy / "test.jsonl").unlink()  # the data moved since the run
    assert main(["report", str(run)]) == 0
    err = capsys.readouterr().err
    assert "math500: questions not shown" in err and "--data-dir" in err
    assert (run / "report.html").exists()
