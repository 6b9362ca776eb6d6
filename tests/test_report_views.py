"""What the report's views compute (``r1eval.reports.views``), checked against the run it reads."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import r1eval
from r1eval.claims.check import check_reproduction
from r1eval.claims.published import load_reported
from r1eval.claims.reproduction import outcome_counts, same_questions
from r1eval.cli import main
from r1eval.regress.paired import Settings, paired_regression
from r1eval.reports.mathjax import mathjax_script
from r1eval.reports.views import (
    lengths,
    overview,
    pass_at_k_curve,
    question_table,
    regression,
    score_intervals,
    token_summary,
)
from r1eval.run.plan import WorkItem
from r1eval.task.registry import available_tasks
from r1eval.types import Completion

from runs_for_tests import answer, build_run, varied_math

MODEL = "deepseek-r1-distill-qwen-7b"  # a model with reported figures in the registry


def worse(item: WorkItem) -> Completion | None:
    """The candidate of a regression: wrong where ``varied_math`` was right on questions
    whose id hashes even, so it loses questions and never gains one."""
    base = varied_math(item)
    right = base is not None and base.finish_reason == "stop" and "9}{8}" not in base.text
    if not right or hashlib.sha256(item.sample.id.encode()).digest()[1] % 2:
        return base
    return answer("<think>hm</think>So $\\boxed{12345}$.", tokens=900)


@pytest.fixture(scope="module")
def math_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> r1eval.Run:
    folder = tmp_path_factory.mktemp("views") / "run"
    build_run(folder, data_dir, "aime24,math500", varied_math, model=MODEL, limit=40, samples=4,
              max_tokens=4000)
    return r1eval.load_run(folder, with_text=True)


def test_score_intervals_name_what_each_is_over() -> None:
    over = {"label": "over questions", "low": 0.2, "high": 0.4,
            "about": "how the score would vary on other questions like these"}
    assert score_intervals({"ci_low": 0.2, "ci_high": 0.4}) == [over]
    assert score_intervals({"ci_low": float("nan"), "ci_high": None}) == []
    outcomes = [[True, False, True, True], [False] * 4, [True] * 4]
    intervals = score_intervals({"ci_low": 0.2, "ci_high": 0.4}, outcomes)
    assert [i["label"] for i in intervals] == ["over questions", "same questions"]
    correct, samples = outcome_counts(outcomes)
    expected = same_questions(correct, samples, 0.5, None).score_interval()
    assert (intervals[1]["low"], intervals[1]["high"]) == expected  # the run's own side only
    assert intervals[1]["low"] < 7 / 12 < intervals[1]["high"]


def test_pass_at_k_curve_is_the_unbiased_estimator_per_k() -> None:
    outcomes = [[True, False, False, True], [False] * 4, [True] * 4, [True, False]]
    curve = pass_at_k_curve(outcomes, 4)
    for k, value in enumerate(curve, start=1):
        # a question with n < k samples counts with its pass@n (as scores.json's pass@K)
        expected = np.mean([1 - math.comb(len(o) - sum(o), min(k, len(o)))
                            / math.comb(len(o), min(k, len(o))) for o in outcomes])
        assert value == pytest.approx(expected)
    assert curve == sorted(curve) and len(curve) == 4
    assert pass_at_k_curve(outcomes, 0) == [] and pass_at_k_curve([[]], 2) == []


def test_token_summary_matches_numpy() -> None:
    values = pd.Series([100.0, None, 300.0, 2000.0, 50.0])
    known = np.array([100.0, 300.0, 2000.0, 50.0])
    assert token_summary(values) == {"mean": known.mean(), "p50": np.percentile(known, 50),
                                     "p90": np.percentile(known, 90), "max": 2000.0, "n": 4}
    assert token_summary(pd.Series([None, None], dtype=float)) is None


def test_overview_has_cons_pass_at_k_rates_tokens_and_verdicts(math_run: r1eval.Run) -> None:
    rows = check_reproduction([math_run], load_reported(), available_tasks(), 0.05)
    entries = {e["task"]: e for e in overview(math_run, rows)}
    scores = math_run.scores.set_index("task")
    for task in ("aime24", "math500"):
        e, s = entries[task], scores.loc[task]
        assert e["pass1"] == s["pass@1"] and e["cons"] == s["cons@k"] and e["k"] == 4
        assert e["curve"][0] == pytest.approx(e["pass1"])
        assert e["curve"][-1] == pytest.approx(s["pass@k"])
        assert e["truncated"] == s["truncated_rate"] and e["noAnswer"] == s["no_answer_rate"]
        graded = math_run.samples[(math_run.samples["task"] == task)
                                  & (math_run.samples["verdict"] != "error")]
        assert e["tokens"]["max"] == 4000 and e["tokens"]["n"] == len(graded)
        assert e["tokens"]["p50"] == np.percentile(graded["completion_tokens"], 50)
        over, same = e["intervals"]
        assert (over["label"], same["label"]) == ("over questions", "same questions")
        assert same["low"] <= e["pass1"] <= same["high"]
        assert same["high"] - same["low"] < over["high"] - over["low"]  # K = 4: narrower
        assert e["reported"], "the registry has figures for this model"
        for r in e["reported"]:
            row = next(x for x in rows if x.task == task and x.source == r["source"]
                       and x.metric == r["metric"])
            assert r["verdict"] == row.verdict and r["low"] == row.ci_low_pct
            assert (r["basis"], r["sameLow"], r["sameHigh"]) == (
                row.basis, row.same_low_pct, row.same_high_pct)


def test_question_table_points_at_each_questions_samples(math_run: r1eval.Run) -> None:
    breakdown = {name: t.breakdown for name, t in available_tasks().items()}
    table = question_table(math_run, breakdown)
    samples = math_run.samples
    assert len(table) == 70
    for q in table:
        rows = samples.iloc[q["first"]:q["first"] + q["count"]]
        assert set(rows["task"]) == {q["task"]} and set(rows["sample_id"]) == {q["id"]}
        assert q["count"] == len(samples[(samples["task"] == q["task"])
                                         & (samples["sample_id"] == q["id"])])
        graded = rows[rows["verdict"] != "error"]
        assert q["pass"] == pytest.approx((graded["verdict"] == "right").mean())
        assert q["graded"] == len(graded)
        if q["task"] == "math500":
            assert set(q["groups"]) == {"subject", "level"}


def test_lengths_bin_every_graded_response_up_to_the_limit(math_run: r1eval.Run) -> None:
    d = lengths(math_run, "math500", 4000)
    assert d is not None
    graded = math_run.samples[(math_run.samples["task"] == "math500")
                              & (math_run.samples["verdict"] != "error")]
    assert d["edges"][0] == 0 and d["edges"][-1] == 4000
    assert sum(sum(b["counts"].values()) for b in d["bins"]) == len(graded) == d["n"]
    truncated = (graded["verdict"] == "truncated").mean()
    assert d["cutShare"][-1] == pytest.approx(truncated)  # at the limit: the truncation rate
    assert d["cutShare"] == sorted(d["cutShare"], reverse=True)
    assert d["bins"][-1]["counts"]["truncated"] == (graded["verdict"] == "truncated").sum()
    right_bins = [b for b in d["bins"] if b["counts"]["right"]]
    assert all(b["accuracy"] == 1.0 for b in right_bins)  # right answers are 700 tokens
    assert d["parts"]["n"] == len(graded)
    assert sum(d["parts"]["reasoning"]) == sum(d["parts"]["answer"]) == len(graded)


def test_regression_lists_flipped_questions_first(
    math_run: r1eval.Run, tmp_path: Path, data_dir: Path
) -> None:
    build_run(tmp_path / "cand", data_dir, "aime24,math500", worse, model=MODEL, limit=40,
              samples=4, max_tokens=4000)
    candidate = r1eval.load_run(tmp_path / "cand")
    comparison = paired_regression(math_run, candidate, Settings())
    view = regression(comparison)
    assert view["failed"] == comparison.failed
    for task, t in zip(view["tasks"], comparison.tasks, strict=True):
        flips = [q["flip"] for q in task["questions"]]
        assert flips.count("lost") == len(t.lost) > 0 and flips.count("gained") == len(t.gained)
        assert flips == sorted(flips, key=lambda f: {"lost": 0, "gained": 1, "": 2}[f])
        assert task["gate"] in ("FAIL", "pass") and task["summary"].startswith(t.task)


def test_report_page_carries_mathjax_and_data_that_cannot_break_out(
    tmp_path: Path, data_dir: Path
) -> None:
    def hostile(item: WorkItem) -> Completion:
        return answer("</think>--><!--<script>alert(1)</script> {{DATA}} \\boxed{1}")

    run = build_run(tmp_path / "run", data_dir, "aime24", hostile, limit=2)
    out = tmp_path / "r.html"
    assert main(["report", str(run), "-o", str(out)]) == 0
    page = out.read_text()
    script = mathjax_script()
    assert script is not None and script in page
    data = re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S)
    assert data is not None and "<" not in data.group(1)
    payload = json.loads(data.group(1))
    assert "<script>alert(1)</script> {{DATA}}" in payload["samples"][0][-2]
    assert page.count("<script") == 4  # data, MathJax's settings, MathJax, the page's own


def test_two_runs_need_at_most_two_folders(
    math_run: r1eval.Run, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(math_run.path)
    assert main(["report", path, path, path]) == 2
    assert "RUN: give one run folder, or two" in capsys.readouterr().err


def test_an_unwritable_output_is_a_usage_error(
    math_run: r1eval.Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing-folder" / "report.html"
    assert main(["report", str(math_run.path), "-o", str(target)]) == 2
    assert "-o/--output: cannot write" in capsys.readouterr().err
    assert not any(tmp_path.rglob("*.tmp"))
