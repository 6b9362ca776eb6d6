"""Leaderboard CSVs from runs built in the tests."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import r1eval
from r1eval.cli import main
from r1eval.reports.leaderboard import LONG_COLUMNS
from r1eval.run.plan import WorkItem
from r1eval.types import Completion

from runs_for_tests import answer, build_run

pytestmark = pytest.mark.data


def right_on_even(item: WorkItem) -> Completion:
    """Right on even AIME ids, wrong otherwise."""
    gold = item.prompt.gold if int(item.sample.id) % 2 == 0 else "1000"
    return answer(f"</think>\\boxed{{{gold}}}")


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("results")
    # Two runs of model "a": an older complete one and a newer one stopped half-way.
    build_run(root / "a-old", data_dir, "aime24", right_on_even, model="a",
              created="2026-01-01T00:00:00+0000")
    build_run(root / "a-new", data_dir, "aime24", right_on_even, model="a", stop_after=10,
              created="2026-02-01T00:00:00+0000")
    # Model "b": a run in which requests for ids 60-64 failed.
    build_run(root / "b", data_dir, "aime24",
              lambda item: None if int(item.sample.id) < 65 else right_on_even(item), model="b")
    return root


def test_long_csv_columns_and_values(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "board.csv"
    assert main(["leaderboard", str(results), "-o", str(out)]) == 0
    columns, rows = read_csv(out)
    assert columns == LONG_COLUMNS
    by_model = {row["model"]: row for row in rows}
    assert set(by_model) == {"a", "b"}  # one row per model and task
    a = by_model["a"]
    assert a["run"] == "a-old"  # the newest COMPLETE run wins over the newer partial one
    assert float(a["score_pct"]) == pytest.approx(100 * 15 / 30)  # ids 60..89: 15 even
    assert a["complete"] == "True" and a["errors"] == "0"
    assert float(a["ci_low_pct"]) < 50 < float(a["ci_high_pct"])
    assert a["task_version"] == "1" and a["dataset"].startswith("sha256:af2b8bd2")
    assert a["prompt_hash"] and a["grader"].endswith("grade_math")
    assert a["math_verify_version"] and a["endpoint"] == "http://127.0.0.1:9/v1"
    b = by_model["b"]
    # 5 failed requests: not counted as wrong, counted as errors; 25 graded, 12 right (66..88)
    assert b["errors"] == "5" and b["questions"] == "25" and b["complete"] == "False"
    assert float(b["score_pct"]) == pytest.approx(100 * 12 / 25)
    assert int(b["completion_tokens"]) == 25 * 100


def test_all_keeps_every_run_and_wide_pivots(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.csv"
    assert main(["leaderboard", str(results), "-o", str(out), "--all"]) == 0
    _, rows = read_csv(out)
    assert sorted(row["run"] for row in rows) == ["a-new", "a-old", "b"]
    partial = next(row for row in rows if row["run"] == "a-new")
    assert partial["complete"] == "False" and partial["questions"] == "10"

    wide = tmp_path / "wide.csv"
    assert main(["leaderboard", str(results), "-o", str(wide), "--wide"]) == 0
    columns, rows = read_csv(wide)
    assert columns == ["model", "aime24", "aime24_ci_low", "aime24_ci_high", "aime24_questions",
                       "aime24_k", "aime24_run"]
    assert [row["model"] for row in rows] == ["a", "b"]
    # each cell says what it rests on: which run, how many questions, which K
    assert [(r["aime24_run"], r["aime24_questions"]) for r in rows] == [("a-old", "30"),
                                                                        ("b", "25")]


def test_no_runs_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["leaderboard", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("r1eval: error: no run folders found")


def test_with_reported_puts_published_figures_beside_measured_ones(
    tmp_path: Path, data_dir: Path
) -> None:
    results = tmp_path / "results"
    build_run(results / "r7b", data_dir, "aime24", right_on_even, model="deepseek-r1:7b")
    out = tmp_path / "board.csv"
    assert main(["leaderboard", str(results), "-o", str(out), "--with-reported"]) == 0
    columns, rows = read_csv(out)
    assert columns == LONG_COLUMNS
    measured = [r for r in rows if r["source"] == "measured by r1eval"]
    assert len(measured) == 1
    assert measured[0]["registry_model"] == "DeepSeek-R1-Distill-Qwen-7B"  # via the alias
    published = {(r["source"][:20], r["task"], r["metric"]): r["value"]
                 for r in rows if r["source"] != "measured by r1eval"}
    values = {key[1:]: float(v) for key, v in published.items()}
    # tests/published_tables.md: article 55.5 / 92.8, README cons@64 83.3 and GPQA 49.1,
    # open-r1 50.8 / 94.5 / 50.5
    assert values[("math500", "pass@1")] in (92.8, 94.5)
    assert ("aime24", "cons@64") in values and values[("aime24", "cons@64")] == 83.3
    aime = sorted(float(v) for k, v in published.items() if k[1:] == ("aime24", "pass@1"))
    assert aime == [50.8, 55.5]
    assert all(r["model"] == "deepseek-r1:7b" for r in rows)


def test_cost_column_when_the_run_knew_its_prices(tmp_path: Path, data_dir: Path) -> None:
    build_run(tmp_path / "r" / "api", data_dir, "aime24", right_on_even,
              model="deepseek-reasoner")
    out = tmp_path / "board.csv"
    assert main(["leaderboard", str(tmp_path / "r"), "-o", str(out)]) == 0
    _, rows = read_csv(out)
    # 30 samples x (50 prompt x 0.55 + 100 completion x 2.19) USD per 1M tokens
    assert float(rows[0]["cost_usd"]) == pytest.approx(30 * (50 * 0.55 + 100 * 2.19) / 1e6)


def test_the_leaderboard_never_reads_a_sample_log(
    results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scores and manifests are all it needs: a results folder of many large runs is listed
    without reading their logs (``load_runs(samples=False)``)."""
    full = r1eval.load_runs(results)

    def no_log_reading(*args: object) -> None:
        raise AssertionError("a sample log was read")

    monkeypatch.setattr("r1eval.store.loading.load_state", no_log_reading)
    light = r1eval.load_runs(results, samples=False)
    assert light.samples.empty and list(light.samples.columns) == list(full.samples.columns)
    assert light.scores.equals(full.scores)
    assert main(["leaderboard", str(results), "-o", str(tmp_path / "board.csv")]) == 0
