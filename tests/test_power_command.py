"""``r1eval power``: samples per question for a paired regression test, by hand and from runs.

Hand values use (t_0.975 + t_0.8)^2 at 29 degrees of freedom (30 AIME questions) = 8.406646
(scipy.stats.t) and the default assumption (score 0.5, half of
its variance between questions, the two models' per-question rates correlated 0.9):
between = 2 (1 - 0.9) 0.125 = 0.025 and within = 2 * 0.125 = 0.25 for the difference.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from r1eval.cli import main
from r1eval.regress.pairing import pair_task
from r1eval.scoring.power import Design, detectable_difference, samples_needed
from r1eval.store.loading import load_run

from test_regress import build_run, right_below

T2 = 8.406646  # (t_{0.975,29} + t_{0.8,29})^2


def power(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["power", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def needed(out: str) -> int | None:
    match = re.search(r"needed \(in (?:each|the) run\): \*\*(\d+)\*\*", out)
    return int(match.group(1)) if match else None


def smallest_at(out: str) -> float:
    match = re.search(r"smallest detectable drop at K = \d+: \*\*([\d.]+) points", out)
    assert match, out
    return float(match.group(1))


def test_aime_under_the_stated_assumption_by_hand(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = power(capsys, "--task", "aime24", "--delta", "10", "--samples", "8")
    assert code == 0
    # 30 questions: budget = 30 * 0.1^2 / 8.406646 = 0.035686; K = 0.25 / (0.035686 - 0.025)
    assert needed(out) == math.ceil(0.25 / (30 * 0.01 / T2 - 0.025)) == 24
    # At K = 8: sqrt(8.406646 * (0.025 + 0.25/8) / 30) = 0.1255
    by_hand = 100 * math.sqrt(T2 * (0.025 + 0.25 / 8) / 30)
    assert smallest_at(out) == pytest.approx(by_hand, abs=0.05) == 12.55
    assert "30 questions" in out and "assumed: score 0.50" in out and "correlated 0.9" in out


def test_when_no_number_of_samples_suffices(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = power(capsys, "--task", "aime24", "--delta", "3")
    assert code == 0 and needed(out) is None and "none suffices" in out
    # The floor with unlimited samples: sqrt(8.406646 * 0.025 / 30) = 8.4 points
    assert f"{100 * math.sqrt(T2 * 0.025 / 30):.1f}" == "8.4" and "8.4 points or more" in out


def test_the_benchmark_size_comes_from_the_task(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = power(capsys, "--task", "mmlu", "--delta", "1")
    assert code == 0 and "14042 questions" in out
    design = Design.assumed(0.5).paired(0.9)
    assert needed(out) == samples_needed(design, 0.01, 14042)
    by_formula = 100 * detectable_difference(design, 14042, 1)
    assert smallest_at(out) == pytest.approx(by_formula, abs=0.05)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--task", "aime24", "--delta", "0"], "--delta"),
        (["--task", "aime24", "--delta", "5", "--samples", "0"], "--samples"),
        (["--task", "aime24", "--delta", "5", "--correlation", "1.5"], "--correlation"),
        (["--task", "aime24", "--delta", "5", "--alpha", "0"], "--alpha"),
        (["--task", "aime26", "--delta", "5"], "unknown task"),
        (["--task", "aime24", "--delta", "5", "--from", "/nonexistent"], "not a run folder"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    code, out = power(capsys, *args)
    assert code == 2 and fragment in out and len(out.strip().splitlines()) == 1


@pytest.mark.data
def test_from_one_run_uses_its_per_question_variance(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # K = 4; questions 0-9 always right, 10-19 right 2 of 4 times, 20-29 never.
    def correct(task: str, i: int, r: int) -> bool:
        return i < 10 or (i < 20 and r < 2)

    run = build_run(tmp_path / "run", data_dir, correct, samples=4)
    code, out = power(capsys, "--task", "aime24", "--delta", "10", "--from", str(run))
    assert code == 0 and "estimated from run (30 questions)" in out and "correlated 0.9" in out
    outcomes = [[i < 10 or (i < 20 and r < 2) for r in range(4)] for i in range(30)]
    design = Design.from_outcomes(outcomes).paired(0.9)
    assert needed(out) == samples_needed(design, 0.1, 30)
    # The run's K (4) is the default for the smallest detectable drop.
    assert "at K = 4" in out
    assert smallest_at(out) == pytest.approx(100 * detectable_difference(design, 30, 4), abs=0.05)


@pytest.mark.data
def test_from_a_run_with_one_sample_per_question_uses_only_its_score(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build_run(tmp_path / "run", data_dir, right_below(24))
    code, out = power(capsys, "--task", "aime24", "--delta", "10", "--from", str(run))
    assert code == 0 and "one sample per question" in out and "score 0.80" in out
    assert needed(out) == samples_needed(Design.assumed(0.8).paired(0.9), 0.1, 30)


@pytest.mark.data
def test_from_two_runs_uses_their_paired_differences(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = build_run(tmp_path / "base", data_dir, lambda t, i, r: i < 20 and r < 3, samples=4)
    tuned = build_run(tmp_path / "tuned", data_dir, lambda t, i, r: i < 18 and r < 2, samples=4,
                      model="tuned")
    code, out = power(capsys, "--task", "aime24", "--delta", "10",
                      "--from", str(base), "--from", str(tuned))
    assert code == 0 and "measured from the paired differences" in out
    pairing = pair_task(load_run(base), load_run(tuned), "aime24")
    design = Design.for_paired([q.outcomes for q in pairing.base],
                               [q.outcomes for q in pairing.candidate])
    assert needed(out) == samples_needed(design, 0.1, 30)


@pytest.mark.data
def test_a_run_without_the_task_is_bad_input(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build_run(tmp_path / "run", data_dir, right_below(10))
    code, out = power(capsys, "--task", "math500", "--delta", "5", "--from", str(run))
    assert code == 2 and "no graded sample of math500" in out
    code, out = power(capsys, "--task", "aime24", "--delta", "5",
                      "--from", str(run), "--from", str(run), "--from", str(run))
    assert code == 2 and "one run, or two" in out


def test_planning_a_reproduction_against_a_figure(capsys: pytest.CaptureFixture[str]) -> None:
    """compare's same-question test: only sampling within questions counts, the run's W / K and
    the figure's W / K_f. Assumed W = 0.125 (score 0.5, half between): budget at 30 questions
    and 5 points = 30 * 0.05^2 / 7.848879 (normal quantiles: the test rests on thousands of
    samples) = 0.009555; K = 0.125 / (0.009555 - 0.125 / 64) = 16.4 -> 17."""
    # the README's command: r1eval power --task aime24 --delta 5 --figure-samples 64
    code, out = power(capsys, "--task", "aime24", "--delta", "5", "--figure-samples", "64")
    assert code == 0 and "same questions as a figure measured with K=64" in out
    assert needed(out) == math.ceil(0.125 / (30 * 0.0025 / 7.848879 - 0.125 / 64)) == 17
    # a figure of one sample per question is itself too noisy for a 5-point verdict
    code, out = power(capsys, "--task", "aime24", "--delta", "5", "--figure-samples", "1")
    assert code == 0 and needed(out) is None and "the figure's own sampling" in out


def test_figure_samples_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = power(capsys, "--task", "aime24", "--delta", "5", "--figure-samples", "0")
    assert code == 2 and "--figure-samples must be at least 1" in out
