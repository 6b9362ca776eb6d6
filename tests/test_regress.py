"""``r1eval regress``: paired statistics against hand-computed values, and planted outcomes in
runs built here (real benchmark data, scripted verdicts; one pair through the HTTP path).

Run folders are written directly with ``RunFolder`` and the log's record builders: a
``correct(task, question index, repeat)`` function decides each sample's verdict, so every test
knows exactly which questions were lost or gained.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from junitparser import Failure, JUnitXml, Skipped

from r1eval.cli import main
from r1eval.regress.paired import (
    NO_CHANGE,
    REGRESSION,
    Pairing,
    QuestionRecord,
    Settings,
    compare_task,
    paired_regression,
    protocol_differences,
)
from r1eval.regress.permutation import within_question_permutation
from r1eval.run.config import RunConfig
from r1eval.run.evaluate import compute_scores, prepare
from r1eval.scoring import stats
from r1eval.scoring.stats import mcnemar_exact, paired_interval, unpaired_interval
from r1eval.store.contracts import Manifest
from r1eval.store.folder import RunFolder
from r1eval.store.loading import load_run
from r1eval.store.records import completion_record, error_record, grade_record
from r1eval.task.data import load_task
from r1eval.task.prompts import MATH_PROMPT, template_hash
from r1eval.task.registry import resolve
from r1eval.types import Completion, Grade

from openai_server import OpenAIServer, last_user_text

Correct = Callable[[str, int, int], bool]
T29, T58 = 2.045230, 2.001717  # 97.5% quantiles of Student's t with 29 and 58 df


# ------------------------------------------------------------------------ pure statistics


@pytest.mark.parametrize(
    ("lost", "gained", "expected"),
    [
        (0, 0, 1.0),  # no discordant question: nothing to test
        (5, 0, 2 / 2**5),  # 2 * C(5,0)/32 = 0.0625
        (6, 0, 2 / 2**6),  # 0.03125
        (1, 6, 2 * (1 + 7) / 2**7),  # 2 * (C(7,0) + C(7,1))/128 = 0.125
        (1, 9, 2 * (1 + 10) / 2**10),  # 0.021484375
        (2, 10, 2 * (1 + 12 + 66) / 2**12),  # 0.0385742...
        (10, 2, 2 * (1 + 12 + 66) / 2**12),  # symmetric in lost and gained
        (10, 0, 2 / 2**10),  # 0.001953125: the planted AIME regression below
        (3, 2, 1.0),  # 2 * (1 + 5 + 10)/32 = 1.0: the planted no-change below
        (3, 3, 1.0),  # 2 * 42/64 > 1, capped
    ],
)
def test_mcnemar_exact_hand_values(lost: int, gained: int, expected: float) -> None:
    assert mcnemar_exact(lost, gained) == pytest.approx(expected, abs=1e-15)


def test_mcnemar_exact_with_many_discordant_questions_stays_exact() -> None:
    # 2 P(X <= 450), X ~ Bin(1000, 1/2): 2^1000 overflows a float; the integers do not.
    tail = sum(math.comb(1000, i) for i in range(451))
    assert mcnemar_exact(450, 550) == pytest.approx(2 * tail / 2**1000, rel=1e-12)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


def permutation(base: list[tuple[int, int]], cand: list[tuple[int, int]], alpha: float = 0.05):
    """The within-question permutation test of (correct, samples) pairs per question."""
    return within_question_permutation([c for c, _ in base], [k for _, k in base],
                                       [c for c, _ in cand], [k for _, k in cand], alpha)


@pytest.mark.parametrize(("lost", "gained"), [(2, 10), (0, 6), (4, 4), (12, 30), (5, 0)])
def test_permutation_is_mcnemar_for_one_sample_per_question(lost: int, gained: int) -> None:
    base = [(1, 1)] * lost + [(0, 1)] * gained + [(1, 1)] * 10 + [(0, 1)] * 10
    cand = [(0, 1)] * lost + [(1, 1)] * gained + [(1, 1)] * 10 + [(0, 1)] * 10
    result = permutation(base, cand)
    expected = mcnemar_exact(lost, gained)
    if lost + gained <= 16:  # enumerated exactly
        assert result.exact and result.p_value == pytest.approx(expected)
    else:  # drawn 20,000 times: within 4 standard errors
        assert abs(result.p_value - expected) < 4 * math.sqrt(expected / 20_000) + 1e-4


def test_permutation_exact_hand_values_with_k2() -> None:
    # One question: base 2 of 2 right, candidate 0 of 2. Pooled 2 right of 4; the candidate's
    # 2 get 0, 1 or 2 of them with probabilities 1/6, 4/6, 1/6: differences -1, 0, +1.
    result = permutation([(2, 2)], [(0, 2)])
    assert result.exact and result.difference == -1.0
    assert result.p_value == pytest.approx(2 / 6)
    # One question with K 1 vs 2: base wrong, candidate 2 of 2 right. Pooled 2 right of 3:
    # the base's sample is wrong with probability 1/3 (difference +1), else -0.5.
    result = permutation([(0, 1)], [(2, 2)])
    assert result.p_value == pytest.approx(1 / 3)


def test_the_issue_minimal_case_k1_against_k64_is_no_false_alarm() -> None:
    """Base 30 x (True,), candidate 58/64 on each of 30 questions: the sign-flip test gave
    p = 5e-5 and failed the gate. Re-dealt within questions: the base's one sample is the
    wrong one with probability 6/65, so 0 such questions (what was seen) has probability
    (59/65)^30 = 0.055, and the p-value is about 0.1."""
    result = permutation([(1, 1)] * 30, [(58, 64)] * 30)
    assert not result.significant and result.p_value > 0.05
    assert result.p_value > (59 / 65) ** 30
    assert result.low < 0 < result.high


def test_the_gate_does_not_fail_identical_rates_at_k1_against_k64() -> None:
    """The issue's minimal case through compare_task: the sign-flip test failed the gate."""
    pairing = Pairing(
        task="aime24", ids=[f"q{i}" for i in range(30)],
        base=[QuestionRecord((True,), "1")] * 30,
        candidate=[QuestionRecord((True,) * 58 + (False,) * 6, "1")] * 30, left_out={},
        samples=(1, 64),
    )
    task = compare_task(pairing, Settings())
    assert not task.gate_failed and task.verdict == NO_CHANGE
    assert task.interval.low <= 0 <= task.interval.high
    assert task.test == "within-question permutation (20,000 draws)"


def test_a_large_benchmark_with_many_samples_is_drawn_without_overflow() -> None:
    """500 questions at K = 16: 17^500 joint outcomes overflowed a float product (a warning,
    an error under the test settings)."""
    rng = np.random.default_rng(2)
    rates = rng.uniform(0.2, 0.8, 500)
    result = within_question_permutation(rng.binomial(16, rates), np.full(500, 16),
                                         rng.binomial(16, rates), np.full(500, 16),
                                         n_resamples=500)
    assert not result.exact and 0 < result.p_value <= 1


def test_p_value_and_interval_never_disagree() -> None:
    """The issue's table: "-16.7 points, 95% CI -30.2 to -1.0, p 0.0625". Lost 5, gained 0:
    p = 0.0625 and the inverted interval reaches 0."""
    result = permutation([(1, 1)] * 5 + [(0, 1)] * 25, [(0, 1)] * 30)
    assert result.p_value == pytest.approx(0.0625)
    assert result.low <= 0 <= result.high + 1e-9 and not result.significant
    rng = np.random.default_rng(4)
    for _ in range(200):
        n = int(rng.integers(3, 40))
        kb, kc = int(rng.choice([1, 2, 4, 64])), int(rng.choice([1, 4, 16, 64]))
        rates = rng.uniform(0, 1, n)
        base = [(int(c), kb) for c in rng.binomial(kb, rates)]
        cand = [(int(c), kc) for c in rng.binomial(kc, np.clip(rates - 0.15, 0, 1))]
        for alpha in (0.05, 0.2):
            result = permutation(base, cand, alpha)
            assert result.significant == (not result.low <= 0 <= result.high), (base, cand)


def test_permutation_type_one_error_with_k1_against_k64() -> None:
    """Identical models, 30 questions, base K = 1, candidate K = 64: the gate failed 10.2% of
    the time with the sign-flip test; the permutation test keeps 5% (seeded, 300 runs, few
    draws each: bench/verdicts.py runs the full setting)."""
    rng = np.random.default_rng(9)
    rejected = 0
    for seed in range(300):
        rates = rng.beta(0.7, 0.7, 30)
        base, cand = rng.binomial(1, rates), rng.binomial(64, rates)
        result = within_question_permutation(base, np.ones(30), cand, np.full(30, 64),
                                             n_resamples=2_000, seed=seed)
        rejected += result.significant
    assert rejected / 300 <= 0.08  # 5% plus about two standard errors of 300 runs


@pytest.mark.parametrize(
    ("df", "expected"),
    # Student t table, two-sided 95%; 1 and 2 are exact, the rest Cornish-Fisher
    [(1, 12.7062), (2, 4.3027), (3, 3.1824), (5, 2.5706), (10, 2.2281), (29, 2.0452),
     (58, 2.0017), (1000, 1.9623)],
)
def test_t_quantile_against_the_table(df: int, expected: float) -> None:
    assert stats.t_quantile(0.95, df) == pytest.approx(expected, abs=0.004 if df < 10 else 1e-4)


def test_paired_interval_never_collapses_to_zero_width() -> None:
    # 30 questions, no difference on any: the bootstrap says [0, 0]. Two pseudo-questions
    # with sum of squares 1/K: n' = 32, var' = 1/(32K); half-width t_29 sqrt(1/(32K)/32).
    interval = paired_interval([0.0] * 30)
    assert interval.low == pytest.approx(-T29 / 32) and interval.high == pytest.approx(T29 / 32)
    # With 64 samples per question the same agreement is 8 times as informative.
    sharper = paired_interval([0.0] * 30, samples_per_question=64)
    assert sharper.high == pytest.approx(T29 / 32 / 8)


def test_paired_interval_agresti_min_hand_value() -> None:
    # lost 2, gained 8 of 30: n' = 32, mean' = 6/32, var' = 11/32 - (6/32)^2 = 0.30859375;
    # low = 0.1875 - t_29 sqrt(0.30859375/32) = -0.013353 (the bootstrap's low is >= 0 here).
    differences = [-1.0] * 2 + [1.0] * 8 + [0.0] * 20
    interval = paired_interval(differences)
    assert interval.low == pytest.approx(0.1875 - T29 * math.sqrt(0.30859375 / 32), abs=1e-6)
    assert interval.high >= 0.1875 + T29 * math.sqrt(0.30859375 / 32) - 1e-6


def test_a_single_question_says_nothing() -> None:
    assert (paired_interval([0.5]).low, paired_interval([0.5]).high) == (-1.0, 1.0)


def test_unpaired_interval_agresti_caffo_hand_value() -> None:
    # Both runs all right on 30 questions: each gets p' = 31/32 with variance
    # (31/32)(1/32)/32; half-width t_58 sqrt(2 * 31/32768) = 0.087069.
    interval = unpaired_interval([1.0] * 30, [1.0] * 30)
    half = T58 * math.sqrt(2 * 31 / 32768)
    assert interval.low == pytest.approx(-half, abs=1e-6)
    assert interval.high == pytest.approx(half, abs=1e-6)


@pytest.mark.parametrize("k", [1, 64])
def test_paired_interval_covers_where_the_bootstrap_alone_does_not(k: int) -> None:
    # 30 questions, scores near 0.9, the two models' per-question rates correlated 0.9.
    # Measured on these 1,000 seeded benchmarks: this rule covers 96.6% (K = 1) and 94.1%
    # (K = 64); the bootstrap alone 93.4% and 91.5%.
    rng = np.random.default_rng(k)

    def rates(size: int) -> tuple[np.ndarray, np.ndarray]:
        z, e = rng.standard_normal(size), rng.standard_normal(size)
        return (1 / (1 + np.exp(-(2.5 + 1.5 * z))),
                1 / (1 + np.exp(-(2.0 + 1.5 * (0.9 * z + math.sqrt(0.19) * e)))))

    population_base, population_cand = rates(200_000)
    true = float(np.mean(population_cand - population_base))
    covered = bootstrap_covered = 0
    for _ in range(1000):
        base, cand = rates(30)
        d = rng.binomial(k, cand) / k - rng.binomial(k, base) / k
        seed = int(rng.integers(1 << 30))
        interval = paired_interval(d, k, n_resamples=500, seed=seed)
        low, high = stats.bootstrap_interval(d, n_resamples=500, seed=seed)
        covered += interval.low <= true <= interval.high
        bootstrap_covered += low <= true <= high
    assert covered >= 930 and covered > bootstrap_covered


# ------------------------------------------------------------------------- building runs


def build_run(
    path: Path,
    data_dir: Path,
    correct: Correct,
    *,
    tasks: tuple[str, ...] = ("aime24",),
    limit: int = 30,
    samples: int = 1,
    model: str = "base-model",
    temperature: float = 0.6,
    failed: frozenset[int] = frozenset(),
) -> Path:
    """A finished run folder whose sample ``repeat`` of question ``index`` (dataset order) of
    ``task`` is right when ``correct(task, index, repeat)``; questions in ``failed`` only ever
    got failed requests. The manifest is the real one ``r1eval run`` would write."""
    config = RunConfig(
        model=model, base_url="http://127.0.0.1:9/v1", tasks=list(tasks), limit=limit,
        samples=samples, temperature=temperature, top_p=0.95, max_tokens=4096,
        data_dir=data_dir, run_dir=path, grader_workers=0,
    )
    prepared = prepare(config, {}, key_explicit=False)
    index = {(t.task.name, s.id): i for t in prepared.loaded for i, s in enumerate(t.samples)}
    with RunFolder(path) as folder:
        folder.write_manifest(
            prepared.manifest.model_copy(update={"created": "2025-01-01T00:00:00"}))
        for item in prepared.items:
            number = index[item.task, item.sample.id]
            if number in failed:
                folder.append(error_record(item, "HTTP 503", transient=True, status=503))
                continue
            right = correct(item.task, number, item.repeat)
            answer = item.prompt.gold if right else wrong_answer(item.prompt.gold)
            folder.append(completion_record(item, Completion(f"Answer: {answer}", None, "stop")))
            folder.append(grade_record(item, Grade(
                correct=right, extracted=answer, canonical=answer, method="boxed",
                failure=None if right else "wrong",
            )))
        folder.write_scores(compute_scores(prepared, folder))
    return path


def wrong_answer(gold: str) -> str:
    letters = "ABCDEFGHIJ"
    return letters[(letters.index(gold) + 1) % 3] if gold in letters else "98765"


def right_below(n: int) -> Correct:
    """Right on the first ``n`` questions, wrong on the rest, every repeat."""
    return lambda task, index, repeat: index < n


def regress(*args: str) -> int:
    return main(["regress", *args])


@pytest.fixture()
def planted(data_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """AIME, K = 1: base right on 25 questions; the candidate loses 10 of them, gains none."""
    base = build_run(tmp_path / "base", data_dir, right_below(25))
    candidate = build_run(tmp_path / "cand", data_dir, right_below(15), model="fine-tune")
    return base, candidate


# ------------------------------------------------------------------------------ verdicts


@pytest.mark.data
def test_a_planted_regression_is_found_and_fails_the_gate(
    planted: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, candidate = planted
    assert regress("--base", str(base), "--candidate", str(candidate)) == 1
    out = capsys.readouterr().out
    comparison = paired_regression(load_run(base), load_run(candidate), Settings())
    (aime,) = comparison.tasks
    assert aime.n_questions == 30 and aime.samples == (1, 1)
    assert aime.difference == pytest.approx(-10 / 30)
    assert aime.test == "McNemar exact" and aime.p_value == pytest.approx(2 / 2**10)
    assert aime.verdict == REGRESSION and aime.gate_failed
    assert aime.interval.high < 0 < aime.unpaired.high - aime.unpaired.low
    assert "| aime24 |" in out and "-33.3" in out and "0.00195" in out and "FAIL" in out
    assert "**Gate: FAILED**" in out and "10 lost" in out and "0 gained" in out


@pytest.mark.data
def test_a_planted_no_change_passes(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Base right on questions 0-19; the candidate loses 0-2 and gains 20-21: lost 3, gained 2.
    base = build_run(tmp_path / "base", data_dir, right_below(20))
    candidate = build_run(tmp_path / "cand", data_dir,
                          lambda task, i, r: 3 <= i < 22, model="fine-tune")
    assert regress("--base", str(base), "--candidate", str(candidate)) == 0
    (aime,) = paired_regression(load_run(base), load_run(candidate), Settings()).tasks
    assert (len(aime.lost), len(aime.gained)) == (3, 2)
    assert aime.p_value == pytest.approx(1.0) and aime.verdict == NO_CHANGE
    assert not aime.gate_failed
    assert "**Gate: passed**" in capsys.readouterr().out


@pytest.mark.data
@pytest.mark.parametrize(
    ("max_drop", "code", "gate"),
    [("0", 1, "FAIL"), ("30", 1, "FAIL"), ("33.4", 0, "pass (within 33.4)"), ("50", 0, "pass")],
)
def test_the_gate_fails_only_beyond_the_tolerance(
    planted: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
    max_drop: str, code: int, gate: str,
) -> None:
    # The drop is 33.3 points and significant (p = 0.00195): the verdict stays "regression";
    # the gate fails when the estimated drop is larger than --max-drop.
    base, candidate = planted
    assert regress("--base", str(base), "--candidate", str(candidate),
                   "--max-drop", max_drop) == code
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| aime"))
    assert "regression" in row and gate in row


@pytest.mark.data
def test_a_drop_that_is_not_significant_never_fails_the_gate(
    data_dir: Path, tmp_path: Path
) -> None:
    # Lost 4, gained 0: -13.3 points, but McNemar p = 2/16 = 0.125.
    base = build_run(tmp_path / "base", data_dir, right_below(20))
    candidate = build_run(tmp_path / "cand", data_dir, right_below(16), model="fine-tune")
    assert regress("--base", str(base), "--candidate", str(candidate)) == 0
    (aime,) = paired_regression(load_run(base), load_run(candidate), Settings()).tasks
    assert aime.p_value == pytest.approx(0.125) and aime.verdict == NO_CHANGE
    assert paired_regression(load_run(base), load_run(candidate),
                        Settings(alpha=0.2)).tasks[0].gate_failed


@pytest.mark.data
def test_k_samples_use_the_permutation_test_and_question_pass_rates(
    data_dir: Path, tmp_path: Path
) -> None:
    # K = 4. Base: 4 of 4 right on questions 0-19; candidate: 2 of 4 on questions 0-9 and
    # 4 of 4 on 10-19. Ten questions with 6 of 8 pooled samples right: the candidate's 4 get
    # 2 (as seen), 3 or 4 of them with probabilities 15/70, 40/70, 15/70 (differences -0.5,
    # 0, +0.5); as extreme as seen, all ten at -0.5 or all at +0.5: p = 2 (3/14)^10
    # (enumerated exactly, 3^10 outcomes).
    base = build_run(tmp_path / "base", data_dir, right_below(20), samples=4)
    candidate = build_run(tmp_path / "cand", data_dir,
                          lambda t, i, r: i < 20 and (i >= 10 or r < 2), samples=4,
                          model="fine-tune")
    (aime,) = paired_regression(load_run(base), load_run(candidate), Settings()).tasks
    assert aime.samples == (4, 4) and aime.test == "within-question permutation (exact)"
    assert aime.difference == pytest.approx(-5 / 30)
    assert aime.p_value == pytest.approx(2 * (3 / 14) ** 10) and aime.verdict == REGRESSION
    # 0.5 is neither right nor wrong: nothing flipped, though the score dropped.
    assert aime.lost == [] and aime.gained == []


# ---------------------------------------------------------------------- paired vs unpaired


def counts_pattern(shift: int = 0) -> list[int]:
    """Correct samples out of 4 per question: varied difficulty, 30 questions."""
    cycle = [4, 4, 3, 2, 1, 0]
    return [cycle[(i + shift) % len(cycle)] for i in range(30)]


@pytest.mark.data
def test_the_paired_interval_is_sharper_on_the_same_data_when_questions_correlate(
    data_dir: Path, tmp_path: Path
) -> None:
    base_counts = counts_pattern()
    # Correlated: the candidate is the base, one sample worse on the first 10 questions it gets
    # right at all. Uncorrelated: the same scores, but on unrelated questions.
    losers = [i for i, c in enumerate(base_counts) if c > 0][:10]
    correlated = [c - (i in losers) for i, c in enumerate(base_counts)]
    unrelated = counts_pattern(shift=3)
    base = build_run(tmp_path / "base", data_dir, lambda t, i, r: r < base_counts[i], samples=4)
    widths = {}
    for name, counts in (("correlated", correlated), ("unrelated", unrelated)):
        run = build_run(tmp_path / name, data_dir, lambda t, i, r, c=counts: r < c[i],
                        samples=4, model=name)
        (task,) = paired_regression(load_run(base), load_run(run), Settings()).tasks
        assert task.over_questions is not None
        widths[name] = (task.over_questions.high - task.over_questions.low,
                        task.unpaired.high - task.unpaired.low)
    paired, unpaired = widths["correlated"]
    assert paired < unpaired / 3  # measured: 10.5 vs 37.5 points, 3.6 times sharper
    paired, unpaired = widths["unrelated"]
    assert paired > 0.8 * unpaired  # no correlation, no gain: measured 48.3 vs 36.7 points


# ------------------------------------------------------------------------------ protocol


@pytest.mark.data
def test_runs_with_another_temperature_are_refused_unless_forced(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = build_run(tmp_path / "base", data_dir, right_below(25))
    hotter = build_run(tmp_path / "cand", data_dir, right_below(15), temperature=0.7)
    args = ["--base", str(base), "--candidate", str(hotter)]
    assert regress(*args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("r1eval: error: ")
    assert "temperature: 0.6 vs 0.7" in err and "--force" in err
    assert regress(*args, "--force") == 1  # compared, and the regression still fails the gate
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| aime24")]
    assert rows and all("FORCED: temperature: 0.6 vs 0.7" in row for row in rows)


def edit_manifest(run: Path, change: Callable[[dict[str, Any]], None]) -> None:
    manifest = json.loads((run / "run.json").read_text())
    change(manifest)
    (run / "run.json").write_text(json.dumps(manifest))


@pytest.mark.data
@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("aime24 prompt_hash", lambda m: m["tasks"]["aime24"].update(prompt_hash="0" * 16)),
        ("aime24 data: file sha256", lambda m: m["tasks"]["aime24"]["source"].update(sha256="f")),
        ("aime24 version", lambda m: m["tasks"]["aime24"].update(version="0")),
        ("max_tokens", lambda m: m["identity"]["sampling"].update(max_tokens=32768)),
    ],
)
def test_other_protocol_differences_are_refused(
    planted: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
    field: str, change: Callable[[dict[str, Any]], None],
) -> None:
    base, candidate = planted
    edit_manifest(candidate, change)
    assert regress("--base", str(base), "--candidate", str(candidate)) == 2
    assert field in capsys.readouterr().err


def test_model_and_endpoint_are_meant_to_differ() -> None:
    def manifest(model: str, url: str) -> dict[str, Any]:
        return {"identity": {"endpoint": {"model": model, "base_url": url},
                             "sampling": {"temperature": 0.6}},
                "tasks": {"aime24": {"version": "1", "prompt_hash": "p", "grader": "g",
                                     "source": {"kind": "hub", "revision": "r"}}}}

    a, b = manifest("base", "http://a/v1"), manifest("tuned", "http://b/v1")
    assert protocol_differences(Manifest.model_validate(a), Manifest.model_validate(b),
                                ["aime24"]) == []
    b["tasks"]["aime24"]["source"]["revision"] = "s"
    assert protocol_differences(Manifest.model_validate(a), Manifest.model_validate(b),
                                ["aime24"]) == [
        "aime24 data: hub None/None/None@r vs hub None/None/None@s"
    ]


# --------------------------------------------------------------- left out, flips, groups


@pytest.mark.data
def test_questions_not_graded_in_both_runs_are_left_out_and_counted(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The candidate asked 28 questions (2 in the base run only), question 5 failed every
    # time, and it took 2 samples per question where the base took 1 (a note, not a refusal).
    base = build_run(tmp_path / "base", data_dir, right_below(25))
    candidate = build_run(tmp_path / "cand", data_dir, right_below(25), limit=28,
                          samples=2, failed=frozenset({5}), model="fine-tune")
    assert regress("--base", str(base), "--candidate", str(candidate)) == 0
    out = capsys.readouterr().out
    assert ("aime24: 27 questions compared, 3 left out (2 in the base run only, "
            "1 no graded sample in the candidate run)") in out
    assert "1 samples per question in the base run, 2 in the candidate run" in out


@pytest.mark.data
def test_flipped_questions_list_ids_answers_and_pass_rates(
    planted: tuple[Path, Path], data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, candidate = planted
    assert regress("--base", str(base), "--candidate", str(candidate), "--max-flips", "3") == 1
    out = capsys.readouterr().out
    questions = load_task(resolve(["aime24"])[0], data_dir, 30).samples
    lost_rows = [line for line in out.splitlines() if line.startswith("| lost")]
    assert len(lost_rows) == 3 and "... and 7 more lost (--max-flips)" in out
    flipped = sorted(questions[15:25], key=lambda s: s.id)[:3]  # biggest change, then by id
    for row, question in zip(lost_rows, flipped, strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells == ["lost", question.id, question.target, "98765", "100", "0"]


@pytest.mark.data
def test_mmlu_difference_by_subject_and_category(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The first 120 MMLU questions: abstract_algebra (100, STEM) then anatomy (20, other).
    # The candidate loses 10 of the 20 anatomy questions; abstract_algebra is unchanged.
    def base_ok(task: str, i: int, r: int) -> bool:
        return i % 2 == 0 or i >= 100

    def cand_ok(task: str, i: int, r: int) -> bool:
        return base_ok(task, i, r) and not 100 <= i < 110

    base = build_run(tmp_path / "base", data_dir, base_ok, tasks=("mmlu",), limit=120)
    candidate = build_run(tmp_path / "cand", data_dir, cand_ok, tasks=("mmlu",), limit=120,
                          model="fine-tune")
    assert regress("--base", str(base), "--candidate", str(candidate)) == 1
    out = capsys.readouterr().out
    assert "### mmlu by category" in out and "### mmlu by subject" in out
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in out.splitlines() if line.startswith("| ")}
    assert rows["anatomy"][:4] == ["20", "100.0", "50.0", "-50.0"]
    assert rows["anatomy"][-2:] == ["10", "0"]
    assert rows["abstract_algebra"][:4] == ["100", "50.0", "50.0", "+0.0"]
    assert rows["other"][:4] == ["20", "100.0", "50.0", "-50.0"]
    assert rows["STEM"][:4] == ["100", "50.0", "50.0", "+0.0"]


@pytest.mark.data
def test_gpqa_answers_are_letters_in_the_data_order_and_no_question_text_is_shown(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GPQA shuffles options per repeat; in the data's own order the correct option is A.
    base = build_run(tmp_path / "base", data_dir, right_below(12), tasks=("gpqa_diamond",),
                     limit=12, samples=3)
    candidate = build_run(tmp_path / "cand", data_dir, right_below(4), tasks=("gpqa_diamond",),
                          limit=12, samples=3, model="fine-tune")
    regress("--base", str(base), "--candidate", str(candidate))
    out = capsys.readouterr().out
    lost = [[c.strip() for c in line.strip("|").split("|")]
            for line in out.splitlines() if line.startswith("| lost")]
    assert len(lost) == 8 and all(row[2] == "A" and row[3] != "A" for row in lost)
    for question in load_task(resolve(["gpqa_diamond"])[0], data_dir, 12).samples:
        assert question.input[:40] not in out
        assert all(choice[:40] not in out for choice in question.choices if len(choice) > 8)


# --------------------------------------------------------------------- JUnit, bad input


@pytest.mark.data
def test_junit_xml_has_one_test_case_per_task_and_a_junit_parser_reads_it(
    data_dir: Path, tmp_path: Path
) -> None:
    # Two tasks: AIME regresses (lost 10), MMLU (first 30 questions) does not change.
    def base_ok(task: str, i: int, r: int) -> bool:
        return i < 25

    def cand_ok(task: str, i: int, r: int) -> bool:
        return i < (15 if task == "aime24" else 25)

    tasks = ("aime24", "mmlu")
    base = build_run(tmp_path / "base", data_dir, base_ok, tasks=tasks)
    candidate = build_run(tmp_path / "cand", data_dir, cand_ok, tasks=tasks, model="fine-tune")
    junit = tmp_path / "regress.xml"
    assert regress("--base", str(base), "--candidate", str(candidate),
                   "--junit", str(junit)) == 1
    xml = JUnitXml.fromfile(str(junit))
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (2, 1, 0, 0)
    (suite,) = list(xml)
    cases = {case.name: case for case in suite}
    assert set(cases) == {"aime24", "mmlu"}
    (failure,) = cases["aime24"].result
    assert isinstance(failure, Failure) and failure.type == "regression"
    assert "-33.3 points" in (failure.text or "")
    assert cases["mmlu"].is_passed and "no significant change" in (cases["mmlu"].system_out or "")
    properties = {p.name: p.value for p in suite.properties()}
    assert properties["alpha"] == "0.05" and properties["base"] == str(base)


@pytest.mark.data
def test_a_task_in_one_run_only_is_a_skipped_test_case(data_dir: Path, tmp_path: Path) -> None:
    base = build_run(tmp_path / "base", data_dir, right_below(25), tasks=("aime24", "mmlu"))
    candidate = build_run(tmp_path / "cand", data_dir, right_below(25), model="fine-tune")
    junit = tmp_path / "regress.xml"
    assert regress("--base", str(base), "--candidate", str(candidate),
                   "--junit", str(junit)) == 0
    (suite,) = list(JUnitXml.fromfile(str(junit)))
    cases = {case.name: case for case in suite}
    assert cases["aime24"].is_passed and isinstance(cases["mmlu"].result[0], Skipped)


@pytest.mark.data
@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--alpha", "2"], "alpha"),
        (["--max-drop", "-1"], "max-drop"),
        (["--tasks", "math500"], "not in both runs"),
        (["--max-flips", "-1"], "--max-flips"),
        (["--junit", "/nonexistent/dir/x.xml"], "cannot write"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    planted: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
    extra: list[str], fragment: str,
) -> None:
    base, candidate = planted
    assert regress("--base", str(base), "--candidate", str(candidate), *extra) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("r1eval: error: ") and fragment in err


def test_a_missing_run_folder_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert regress("--base", str(tmp_path / "a"), "--candidate", str(tmp_path / "b")) == 2
    assert "not a run folder" in capsys.readouterr().err


# ---------------------------------------------------------------- through the HTTP path


class AnswersBelow:
    """A model that answers AIME question i right when i < ``right_below``, else wrong."""

    def __init__(self, data_dir: Path, right_below: int) -> None:
        samples = load_task(resolve(["aime24"])[0], data_dir, 30).samples
        task = resolve(["aime24"])[0]
        self.answers = {
            task.prompt(s, 0).messages[0]["content"]: s.target if i < right_below else "98765"
            for i, s in enumerate(samples)
        }

    def __call__(self, body: dict[str, Any], index: int) -> dict[str, Any]:
        answer = self.answers[last_user_text(body)]
        return {"reasoning_content": "thinking", "content": f"So \\boxed{{{answer}}}."}


@pytest.fixture()
def served_runs(data_dir: Path, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    runs = []
    for name, right in (("base", 25), ("tuned", 15)):
        with OpenAIServer(model=name, responder=AnswersBelow(data_dir, right)) as server:
            run_dir = tmp_path / name
            assert main(["run", "--model", name, "--base-url", server.base_url, "--tasks",
                         "aime24", "--data-dir", str(data_dir), "--run-dir", str(run_dir),
                         "--temperature", "0.6", "--grader-workers", "1"]) == 0
            runs.append(run_dir)
    yield runs[0], runs[1]


@pytest.mark.data
def test_runs_made_by_r1eval_run_against_a_server_compare_end_to_end(
    served_runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, tuned = served_runs
    capsys.readouterr()
    junit = tmp_path / "gate.xml"
    assert regress("--base", str(base), "--candidate", str(tuned), "--junit", str(junit)) == 1
    out = capsys.readouterr().out
    assert out.startswith("## r1eval regress: tuned vs base")
    assert "| aime24 | 30 " in out and "-33.3" in out and "McNemar exact" in out
    assert JUnitXml.fromfile(str(junit)).failures == 1
    # The same runs, the other way round: an improvement, and the gate passes.
    assert regress("--base", str(tuned), "--candidate", str(base)) == 0
    assert "improvement" in capsys.readouterr().out


def test_interval_methods_are_named() -> None:
    assert paired_interval(np.zeros(3)).method == "paired bootstrap+t"
    assert unpaired_interval(np.zeros(3), np.ones(3)).method.startswith("unpaired")


@pytest.mark.data
def test_the_newer_benchmarks_regress_and_rank_like_the_others(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """MMLU-Pro (letters past D) and HMMT (expressions), through regress and leaderboard."""
    tasks = ("mmlu_pro", "hmmt_feb25")
    base = build_run(tmp_path / "base", data_dir, right_below(25), tasks=tasks)
    candidate = build_run(tmp_path / "cand", data_dir, right_below(15), tasks=tasks,
                          model="fine-tune")
    assert regress("--base", str(base), "--candidate", str(candidate)) == 1
    out = capsys.readouterr().out
    comparison = paired_regression(load_run(base), load_run(candidate), Settings())
    assert sorted(t.task for t in comparison.tasks) == sorted(tasks)
    assert all(t.difference == pytest.approx(-10 / 30) and t.gate_failed
               for t in comparison.tasks)
    assert "| mmlu_pro   | 30" in out and "| hmmt_feb25 | 30" in out
    assert "| lost | 85       | J           | B" in out  # letters past D, as the data orders them
    assert main(["leaderboard", str(base), str(candidate)]) == 0
    board = capsys.readouterr().out
    assert board.count("mmlu_pro") == 2 and board.count("hmmt_feb25") == 2


@pytest.mark.data
def test_a_run_that_recorded_the_template_hash_compares_with_a_new_one(
    data_dir: Path, tmp_path: Path
) -> None:
    """Runs of older releases recorded the prompt template's hash: same prompt, no difference."""
    base = build_run(tmp_path / "base", data_dir, right_below(20))
    candidate = build_run(tmp_path / "cand", data_dir, right_below(20), model="fine-tune")
    manifest = json.loads((base / "run.json").read_text())
    manifest["tasks"]["aime24"]["prompt_hash"] = template_hash(MATH_PROMPT)
    (base / "run.json").write_text(json.dumps(manifest))
    assert protocol_differences(load_run(base).manifest, load_run(candidate).manifest,
                                ["aime24"]) == []
    manifest["tasks"]["aime24"]["prompt_hash"] = template_hash("another template")
    (base / "run.json").write_text(json.dumps(manifest))
    assert protocol_differences(load_run(base).manifest, load_run(candidate).manifest,
                                ["aime24"]) != []
