"""Verdicts against hand-computed intervals, protocol flags, and the compare command."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path
from statistics import NormalDist

import pytest

from r1eval.claims.check import (
    ABOVE,
    BELOW,
    INCONCLUSIVE,
    NO_FIGURE,
    NOT_COMPARABLE,
    NOT_RUN,
    REPRODUCED,
    Row,
    TaskView,
    compare_views,
    decide,
)
from r1eval.claims.published import Reported, load_reported
from r1eval.claims.render import render_markdown
from r1eval.cli import main
from r1eval.run.plan import WorkItem
from r1eval.scoring import stats
from r1eval.store.contracts import Sampling, TaskScore
from r1eval.types import Completion

TESTS = Path(__file__).resolve().parent
TASK_DIR, DATA_DIR = TESTS / "task_files", TESTS / "task_data"
Z2 = NormalDist().inv_cdf(0.975) ** 2  # 3.841459
R1 = {"temperature": 0.6, "top_p": 0.95, "max_tokens": 32768}

CLAIMS = """
[source]
id = "paper"
title = "A paper"
same_questions = {same}

[aliases]
"test-endpoint" = "Test-Model"

[[figures]]
model = "Test-Model"
benchmark = "aime24"
metric = "pass@1"
value = {pass1}
where = "Table 1"
protocol = {{ {samples}temperature = 0.6, top_p = 0.95, max_tokens = 32768, prompt = "r1" }}

[[figures]]
model = "Test-Model"
benchmark = "aime24"
metric = "cons@64"
value = 80.0
where = "Table 1"

[[figures]]
model = "Test-Model"
benchmark = "codeforces"
metric = "elo"
value = 1500
where = "Table 1"
"""


@pytest.mark.parametrize(("reported", "low", "high", "margin", "verdict"), [
    # inside, and the interval within reported ± margin (bounds inclusive)
    (0.50, 0.47, 0.53, 0.05, REPRODUCED),
    (0.50, 0.45, 0.55, 0.05, REPRODUCED),
    (0.50, 0.50, 0.53, 0.05, REPRODUCED),    # the reported value on the lower bound
    (0.50, 0.47, 0.50, 0.05, REPRODUCED),    # ... and on the upper bound
    # inside, but the interval reaches past the margin on one side or both
    (0.50, 0.44, 0.53, 0.05, INCONCLUSIVE),
    (0.50, 0.47, 0.5625, 0.05, INCONCLUSIVE),
    (0.50, 0.25, 0.75, 0.05, INCONCLUSIVE),
    (0.50, 0.25, 0.75, 0.25, REPRODUCED),    # the same interval with a wide margin
    # outside: significant, whatever the margin
    (0.50, 0.5001, 0.60, 0.05, ABOVE),       # the run scored higher than reported
    (0.50, 0.40, 0.4999, 0.05, BELOW),       # the run scored lower than reported
    (0.50, 0.10, 0.30, 0.50, BELOW),
])
def test_verdict_rule_at_its_boundaries(
    reported: float, low: float, high: float, margin: float, verdict: str
) -> None:
    assert decide(reported, low, high, margin) == verdict


def test_margin_must_be_positive() -> None:
    with pytest.raises(ValueError, match="margin"):
        decide(0.5, 0.4, 0.6, 0.0)


def test_hand_computed_interval_all_right() -> None:
    # 30/30 right, K = 1: the bootstrap collapses to [1, 1]; the Wilson interval at the
    # effective n with two pseudo-questions (31 of 32 right: n_eff = 30 * 31/32 = 29.0625)
    # has lower bound n / (n + z²) = 0.88325.
    interval = stats.score_interval([[True]] * 30)
    n_eff = 30 * 31 / 32
    assert interval.low == pytest.approx(n_eff / (n_eff + Z2)) == pytest.approx(0.88325, abs=1e-5)
    assert interval.high == 1.0
    assert decide(0.85, interval.low, interval.high, 0.05) == ABOVE
    assert decide(0.90, interval.low, interval.high, 0.05) == INCONCLUSIVE  # 1.0 > 0.95
    assert decide(0.90, interval.low, interval.high, 0.12) == REPRODUCED   # 0.78 .. 1.02


def wilson(p: float, n: float) -> tuple[float, float]:
    """The Wilson interval written out by hand."""
    denominator = 1 + Z2 / n
    centre = (p + Z2 / (2 * n)) / denominator
    half = math.sqrt(Z2 * (p * (1 - p) / n + Z2 / (4 * n * n))) / denominator
    return centre - half, centre + half


def view(
    outcomes: list[list[bool]], *, sampling: dict[str, float | None] | None = None,
    prompt: str = "r1", questions_in_task: int | None = None, truncated: float = 0.0,
    cons: float | None = None, from_file: bool = False, limit: int | None = None,
) -> TaskView:
    """One task of a run, without a run folder: scores computed as scoring.py does."""
    interval = stats.score_interval(outcomes)
    k = max(len(o) for o in outcomes)
    score = TaskScore.model_validate({
        "pass@1": float(stats.per_question_pass1(outcomes).mean()),
        "ci_low": interval.low, "ci_high": interval.high, "n_questions": len(outcomes),
        "samples_per_question": k, "truncated_rate": truncated, "n_errors": 0,
        f"cons@{k}": cons,
    })
    return TaskView(run="run", model="test-endpoint", task="aime24", score=score,
                    outcomes={f"q{i:02d}": o for i, o in enumerate(outcomes)},
                    sampling=Sampling.model_validate(R1 if sampling is None else sampling),
                    prompt=prompt,
                    questions_in_task=questions_in_task or len(outcomes), from_file=from_file,
                    limit=limit)


def claims(tmp_path: Path, pass1: float, same: bool = False, samples: int | None = 64
           ) -> Reported:
    """The test registry: one source, its pass@1 figure ``pass1`` measured with ``samples``
    per question, on the same question set or (``same`` False) another one."""
    path = tmp_path / "claims.toml"
    path.write_text(CLAIMS.format(pass1=pass1, same=str(same).lower(),
                                  samples="" if samples is None else f"samples = {samples}, "),
                    encoding="utf-8")
    return load_reported([path])


@pytest.fixture()
def reported(tmp_path: Path) -> Reported:
    """A figure measured on another question set: the verdict over questions."""
    return claims(tmp_path, 60.0)


def rows_of(reported: Reported, task: TaskView, margin: float = 0.05,
            name: str = "test-endpoint") -> dict[str, Row]:
    rows = compare_views([task], reported, {"aime24"}, margin, name)
    return {row.metric or "": row for row in rows}


def test_half_right_at_k1_hand_computed_interval_and_questions_needed(
    reported: Reported,
) -> None:
    # 15/30 right: with the pseudo-questions 16 of 32, variance 0.25 * 32/31, n_eff 29.0625;
    # Wilson at 0.5 gives [0.32916, 0.67084], wider than the bootstrap's [1/3, 2/3].
    outcomes = [[True]] * 15 + [[False]] * 15
    low, high = wilson(0.5, 30 * 31 / 32)
    assert (low, high) == pytest.approx((0.32916, 0.67084), abs=1e-5)
    row = rows_of(reported, view(outcomes, sampling=R1))["pass@1"]
    assert (row.ci_low_pct, row.ci_high_pct) == pytest.approx((100 * low, 100 * high))
    assert row.verdict == INCONCLUSIVE and row.difference_pts == pytest.approx(-10.0)
    # Observed difference 0.10 > margin - 0.10: delta 0.10. K = 1: all variance between
    # questions, 0.25 * 30/29; the smallest n with (t_{.975,n-1} + t_{.8,n-1})^2 * 0.258621
    # / 0.01 <= n is 205 (scipy.stats.t; normal quantiles gave 203).
    assert row.questions_needed == 205
    assert any("~205 questions" in n and "run K>=2" in n for n in row.notes)
    assert any("fewer samples (K=1 vs 64)" in n for n in row.notes)


def test_reported_value_outside_the_hand_computed_interval_is_below(tmp_path: Path) -> None:
    # 67.2 is above 0.67084
    row = rows_of(claims(tmp_path, 67.2), view([[True]] * 15 + [[False]] * 15))["pass@1"]
    assert row.verdict == BELOW and row.questions_needed is None


def test_a_large_benchmark_reproduces_and_calls_small_gaps_significant(tmp_path: Path) -> None:
    # 2,000 questions, 60% right: the interval is about ±2.2 points.
    outcomes = [[True]] * 1200 + [[False]] * 800
    assert rows_of(claims(tmp_path, 61.0), view(outcomes))["pass@1"].verdict == REPRODUCED
    row = rows_of(claims(tmp_path, 63.0), view(outcomes))["pass@1"]
    assert row.verdict == BELOW and "within ±5 points" in row.notes[0]


def test_samples_needed_when_questions_do_not_differ(reported: Reported) -> None:
    # Every question right in one of its 2 samples: no spread between questions, within
    # variance 0.5 * 0.5 * 2/1 = 0.5 per sample. delta 0.10; budget per question
    # 30 * 0.01 / 8.406646 = 0.035686 (t quantiles, 29 degrees of freedom);
    # K = ceil(0.5 / 0.035686) = 15.
    row = rows_of(reported, view([[True, False]] * 30))["pass@1"]
    assert row.verdict == INCONCLUSIVE
    assert row.samples_needed == 15
    assert any("or K=15 with these 30" in n for n in row.notes)


def test_protocol_mismatches_are_flagged(reported: Reported) -> None:
    greedy = {"temperature": 0.0, "top_p": None, "max_tokens": 8192}
    task = view([[True, False]] * 30, sampling=greedy, prompt="custom", truncated=0.2,
                questions_in_task=40)
    notes = rows_of(reported, task)["pass@1"].notes
    for flag in ("fewer samples (K=2 vs 64)", "greedy vs sampled",
                 "top-p not set (server default) vs 0.95", "smaller token limit (8192 vs 32768)",
                 "prompt custom vs r1", "high truncation rate (20%)", "subset: 30 of 40"):
        assert any(flag in n for n in notes), (flag, notes)
    unset = view([[True, False]] * 30, sampling={}, from_file=True)
    notes = rows_of(reported, unset)["pass@1"].notes
    assert any("temperature not recorded vs 0.6" in n for n in notes)
    assert any("token limit not recorded vs 32768" in n for n in notes)


def test_the_same_protocol_raises_no_flag(reported: Reported) -> None:
    task = view([[True] * 64] * 20 + [[False] * 64] * 10)
    notes = rows_of(reported, task)["pass@1"].notes
    assert not any("vs" in n or "subset" in n or "truncation" in n for n in notes), notes


def test_cons_is_compared_only_at_the_same_k(reported: Reported) -> None:
    at_8 = rows_of(reported, view([[True] * 8] * 30, cons=1.0))["cons@64"]
    assert at_8.verdict == NOT_COMPARABLE and "this run has K=8" in at_8.notes[0]
    # K = 64, 24 of 30 votes right: the interval of 24 single outcomes over 30 questions.
    outcomes = [[True] * 64] * 24 + [[False] * 64] * 6
    at_64 = rows_of(reported, view(outcomes, cons=0.8))["cons@64"]
    interval = stats.score_interval([[True]] * 24 + [[False]] * 6)
    assert at_64.measured_pct == pytest.approx(80.0)
    assert (at_64.ci_low_pct, at_64.ci_high_pct) == pytest.approx(
        (100 * interval.low, 100 * interval.high))
    assert at_64.verdict == INCONCLUSIVE
    assert not any("or K=" in n for n in at_64.notes)  # more samples make no more votes


def test_unknown_models_say_how_to_name_them(reported: Reported) -> None:
    rows = compare_views([view([[True]] * 30)], reported, {"aime24"}, 0.05, "my-fine-tune")
    assert [r.verdict for r in rows] == [NO_FIGURE]
    assert rows[0].notes == ("no reported figures for my-fine-tune; use --as NAME",)
    named = compare_views([view([[True]] * 30)], reported, {"aime24"}, 0.05, "test-model")
    assert {r.metric: r.verdict for r in named} == {
        "pass@1": ABOVE, "cons@64": NOT_COMPARABLE, "elo": NOT_RUN}


def test_registry_figures_for_an_ollama_name() -> None:
    runnable = {"aime24", "math500", "gpqa_diamond", "mmlu"}
    rows = compare_views([view([[True]] * 30)], load_reported(), runnable, 0.05,
                         "deepseek-r1:7b")
    assert all(r.compared_as == "DeepSeek-R1-Distill-Qwen-7B" for r in rows)
    assert {(r.source, r.metric, r.verdict) for r in rows} == {
        ("deepseek-r1-article", "pass@1", ABOVE),        # 55.5 < 88.3 (lower bound)
        ("open-r1", "pass@1", ABOVE),                    # 50.8
        ("deepseek-r1-readme", "cons@64", NOT_COMPARABLE),  # K = 1, not 64
    }
    assert all(any("quantized" in n for n in r.notes) for r in rows)


# The command, on a run folder made by `r1eval grade` from a small file.

RESPONSES = [
    ("q1", "</think> \\boxed{5}"), ("q1", "</think> \\boxed{5}"),
    ("q2", "</think> \\boxed{\\frac12}"), ("q2", "</think> \\boxed{3}"),
    ("q3", "</think> \\boxed{12}"), ("q3", "</think> \\boxed{12}"),
    ("q4", "</think> \\boxed{3\\sqrt2}"), ("q4", "</think> \\boxed{9}"),
]
USER_CLAIMS = """
[source]
id = "tiny-paper"
title = "Tiny paper"

[aliases]
"tiny-model" = "Tiny-Model"

[[figures]]
model = "Tiny-Model"
benchmark = "tiny_math"
metric = "pass@1"
value = 70.0
where = "Table 1"

[[figures]]
model = "Tiny-Model"
benchmark = "swe_bench_verified"
metric = "pass@1"
value = 20.0
where = "Table 2"
"""


@pytest.fixture()
def tiny_run(tmp_path: Path) -> Path:
    completions = tmp_path / "responses.jsonl"
    completions.write_text("".join(json.dumps({"id": q, "response": r}) + "\n"
                                   for q, r in RESPONSES), encoding="utf-8")
    assert main(["grade", "--task", "tiny_math", "--completions", str(completions),
                 "--model", "tiny-model", "--task-dir", str(TASK_DIR), "--data-dir",
                 str(DATA_DIR), "--run-dir", str(tmp_path / "run"), "--grader-workers", "0",
                 "--protocol", "r1"]) == 0
    (tmp_path / "claims.toml").write_text(USER_CLAIMS, encoding="utf-8")
    return tmp_path / "run"


def compare_args(run: Path, *extra: str) -> list[str]:
    return ["compare", str(run), "--claims", str(run.parent / "claims.toml"),
            "--task-dir", str(TASK_DIR), *extra]


def test_compare_command_markdown(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(compare_args(tiny_run)) == 0
    out = capsys.readouterr().out
    assert "- run: model tiny-model, compared as Tiny-Model" in out
    line = next(x for x in out.splitlines() if "| tiny_math" in x)
    assert "| 70.0 " in line and "| 75.0 " in line and "inconclusive" in line
    assert "subset: 4 of 8 questions" in line
    swe = next(x for x in out.splitlines() if "SWE-bench Verified" in x)
    assert "not run by r1eval" in swe


def test_compare_command_json_and_csv(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(compare_args(tiny_run, "--format", "json", "--margin", "40")) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["margin_points"] == 40.0
    row = payload["rows"][0]
    assert row["verdict"] == REPRODUCED and row["measured_pct"] == pytest.approx(75.0)
    assert row["reported"] == 70.0 and row["difference_pts"] == pytest.approx(5.0)
    assert main(compare_args(tiny_run, "--format", "csv")) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["verdict"] for r in rows] == [INCONCLUSIVE, NOT_RUN]
    assert rows[0]["questions_needed"].isdigit()


def test_compare_command_unknown_model_and_as(
    tiny_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["compare", str(tiny_run), "--task-dir", str(TASK_DIR)]) == 0
    assert "no reported figures for tiny-model; use --as NAME" in capsys.readouterr().out
    assert main(compare_args(tiny_run, "--as", "deepseek-r1:7b")) == 0
    assert "compared as DeepSeek-R1-Distill-Qwen-7B" in capsys.readouterr().out
    assert main(compare_args(tiny_run, "--as", "a", "--as", "b")) == 2
    assert "give --as once, or once per run" in capsys.readouterr().err


def test_compare_command_figure(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    figure = tiny_run.parent / "compare.png"
    assert main(compare_args(tiny_run, "--figure", str(figure))) == 0
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["compare", str(tiny_run), "--task-dir", str(TASK_DIR), "--figure",
                 str(figure)]) == 2  # nothing to draw: no reported figure for this model
    assert "no measured score to draw" in capsys.readouterr().err


def test_compare_figure_without_matplotlib_fails_before_any_output(
    tiny_run: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a plain ``pip install .`` (no figure extra): the fix, before a table is printed."""
    figure = tiny_run.parent / "compare.png"
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert main(compare_args(tiny_run, "--figure", str(figure))) == 2
    out, err = capsys.readouterr()
    assert out == "" and not figure.exists()
    assert err.count("\n") == 1 and "pip install 'r1eval[figure]'" in err


def test_compare_figure_into_a_missing_folder_fails_before_any_output(
    tiny_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    figure = tiny_run.parent / "no-such-folder" / "compare.png"
    assert main(compare_args(tiny_run, "--figure", str(figure))) == 2
    out, err = capsys.readouterr()
    assert out == "" and "--figure" in err and "does not exist" in err


def test_compare_command_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare"]) == 2
    assert "name at least one run folder" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "nowhere")]) == 2
    assert main(["compare", str(tmp_path)]) == 2
    assert "no run folder at or below" in capsys.readouterr().err
    assert main(["compare", str(tmp_path), "--margin", "0"]) == 2


@pytest.mark.data
def test_the_newer_benchmarks_are_compared_with_their_reported_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import official_data_dir
    from runs_for_tests import answer, build_run

    def respond(item: WorkItem) -> Completion:
        if item.task == "mmlu_pro":
            return answer(f"</think>The answer is ({item.prompt.gold})")
        return answer(f"</think>\\boxed{{{item.prompt.gold}}}")

    run = build_run(tmp_path / "r", official_data_dir(), "aime25,hmmt_feb25,amc23,mmlu_pro",
                    respond, model="deepseek-ai/DeepSeek-R1-0528", limit=30, samples=2)
    assert main(["compare", str(run), "--format", "json"]) == 0
    rows = {row["benchmark"]: row for row in json.loads(capsys.readouterr().out)["rows"]}
    assert set(rows) == {"AIME 2025", "HMMT February 2025", "AMC 2023", "MMLU-Pro"}
    assert rows["AIME 2025"]["reported"] == 87.5
    assert rows["HMMT February 2025"]["reported"] == 79.4
    assert rows["MMLU-Pro"]["reported"] == 85.0 and rows["AMC 2023"]["verdict"] == NO_FIGURE
    assert "fewer samples (K=2 vs 16)" in rows["AIME 2025"]["notes"]


# The same-question verdict: the figure was measured on the very questions the run asked.

def aime_like(k: int, shift: int = 0) -> list[list[bool]]:
    """30 questions of varied difficulty, ``k`` samples each: question i right in about
    (i + 0.5) / 30 of its samples (plus ``shift`` samples, clipped)."""
    return [[j < min(k, max(0, round(k * (i + 0.5) / 30) + shift)) for j in range(k)]
            for i in range(30)]


def score_pct(outcomes: list[list[bool]]) -> float:
    return 100 * float(stats.per_question_pass1(outcomes).mean())


def test_aime_k64_reproduces_a_figure_equal_to_its_score(tmp_path: Path) -> None:
    """The issue's case: 30 questions, K = 64, the figure equal to the score on those
    questions. Over questions the interval is ~13 points wide and the verdict was always
    inconclusive; on the same questions the difference is known to ~±3 points."""
    outcomes = aime_like(64)
    row = rows_of(claims(tmp_path, score_pct(outcomes), same=True), view(outcomes))["pass@1"]
    assert row.verdict == REPRODUCED and row.basis == "same questions"
    assert row.ci_high_pct - row.ci_low_pct > 10  # the interval over questions, kept
    assert row.same_high_pct - row.same_low_pct < 5
    assert row.figure_samples == 64 and not row.figure_samples_assumed
    assert any("same questions (figure's K=64)" in n for n in row.notes), row.notes


def test_aime_k64_an_eight_point_gap_is_below_on_the_same_questions(tmp_path: Path) -> None:
    outcomes = aime_like(64)
    reported = claims(tmp_path, score_pct(outcomes) + 8, same=True)
    row = rows_of(reported, view(outcomes))["pass@1"]
    assert row.verdict == BELOW and row.p_value is not None and row.p_value < 0.001
    # over questions, the same figure is inside the interval: the population view cannot tell
    assert row.ci_low_pct <= row.reported <= row.ci_high_pct


def test_inconclusive_says_which_k_would_decide(tmp_path: Path) -> None:
    outcomes = aime_like(4)
    reported = claims(tmp_path, score_pct(outcomes) + 0.8, same=True)
    row = rows_of(reported, view(outcomes))["pass@1"]
    assert row.verdict == INCONCLUSIVE
    # -0.8 is told from the ±5 margin (not "a gap of 4.2 points"), by more samples
    need = next(n for n in row.notes if n.startswith("to tell"))
    assert need.startswith("to tell -0.8 points from ±5 at 80% power: K=")
    assert row.samples_needed is not None and row.samples_needed > 4
    assert f"K={row.samples_needed} per question on these 30 questions" in need
    # more samples do decide: at that K the same data (rates) give a verdict
    assert row.questions_needed is None


def test_figure_k_unknown_is_assumed_and_said(tmp_path: Path) -> None:
    outcomes = aime_like(64)
    reported = claims(tmp_path, score_pct(outcomes) + 1, same=True, samples=None)
    row = rows_of(reported, view(outcomes))["pass@1"]
    assert row.figure_samples == 1 and row.figure_samples_assumed
    assert any("figure's K not stated, 1 assumed" in n for n in row.notes)
    # one sample per question on the figure's side: too noisy to show a 5-point equivalence,
    # and no K of the run can fix that
    assert row.verdict == INCONCLUSIVE
    assert row.samples_needed is None
    assert any("no K suffices" in n for n in row.notes)


def test_a_limit_subset_gets_only_the_view_over_questions(tmp_path: Path) -> None:
    """The issue's case: a --limit run was compared with a full-set figure without a note."""
    outcomes = aime_like(64)[:20]
    reported = claims(tmp_path, score_pct(outcomes), same=True)
    row = rows_of(reported, view(outcomes, limit=20, questions_in_task=20))["pass@1"]
    assert row.basis == "over questions" and row.same_low_pct is None
    assert any("over questions only: a subset (20 questions)" in n for n in row.notes)


def test_both_intervals_in_the_markdown_table(tmp_path: Path) -> None:
    outcomes = aime_like(64)
    rows = compare_views([view(outcomes)], claims(tmp_path, score_pct(outcomes), same=True),
                         {"aime24"}, 0.05, "test-endpoint")
    text = render_markdown(rows, 0.05)
    assert "95% CI same questions" in text and "95% CI over questions" in text
    row = next(r for r in rows if r.metric == "pass@1")
    assert f"{row.same_low_pct:.1f}-{row.same_high_pct:.1f}" in text
    assert f"{row.ci_low_pct:.1f}-{row.ci_high_pct:.1f}" in text
