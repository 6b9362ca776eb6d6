"""The benchmark scripts of ``bench/``, smoke-sized: each runs as a user runs it (a fresh
process, its own server process on loopback) and prints its figures.

Only that the figures are produced is checked, never a timing: the measured numbers live in
``bench/RESULTS.md``.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, require_browser

pytestmark = [pytest.mark.data, pytest.mark.slow]

NUMBER = r"\*\*\d+\.\d+%?\*\*"


def run_bench(script: str, data_dir: Path) -> str:
    command = [sys.executable, str(REPO / "bench" / script), "--smoke", f"--data-dir={data_dir}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_throughput(data_dir: Path) -> None:
    out = run_bench("throughput.py", data_dir)
    # r1eval's counts include its probe of n (one request for two one-token choices), and its
    # requests of n are split to the room left
    for contender, requests, samples in [("A: plain aiohttp loop", "100", "100"),
                                         ("B: r1eval, one request per sample", "101", "101"),
                                         ("B (n): r1eval, n=5 per request", r"2\d", "102")]:
        assert re.search(rf"\| {re.escape(contender)} +\| {requests} +\| {samples} ", out), out
    assert re.search(rf"B/A requests/s: {NUMBER}", out), out
    if importlib.util.find_spec("lm_eval") is None:
        assert "C skipped: lm-eval is not installed" in out, out
    else:
        assert re.search(r"\| C: lm-eval, num_concurrent=\d+ +\| 100 +\| 100 ", out), out
        # without lm-eval's start-up: the 50 documents beyond its 50-document sweep trial, or,
        # when at this size the whole run took no longer than the trial (the machine's
        # timing, not the script's logic), no marginal rate and a sentence saying so
        marginal = r"\| C, marginal: beyond its first 50 documents +\| 50 +\| 50 "
        if re.search(marginal, out):
            assert re.search(rf"B/C requests/s: {NUMBER} whole, {NUMBER} against", out), out
        else:
            assert re.search(rf"B/C requests/s: {NUMBER} whole, no marginal rate \(the sweep "
                             r"was not shorter\)", out), out


def test_grading(data_dir: Path) -> None:
    out = run_bench("grading.py", data_dir)
    assert re.search(r"\| 1 worker +\| 10 +\|", out), out
    assert re.search(r"\| 2 workers +\| 10 +\|", out), out
    assert re.search(rf"after the last response arrived: {NUMBER} of the run's wall time", out)


def test_resume_and_memory(data_dir: Path) -> None:
    out = run_bench("resume_memory.py", data_dir)
    for samples in ("200", "1,000"):  # then no request when reopened
        assert re.search(rf"\| {samples} +\|( \d+(\.\d)? +\|){{6}} 0 +\|", out), out
    assert re.search(r"run: \*\*\d+\.\d s\*\* for the whole command", out), out
    assert "requests sent by the reopened runs: 0." in out, out


def test_tail(data_dir: Path) -> None:
    out = run_bench("tail.py", data_dir)
    for order in ("plan order", "longest first"):
        assert re.search(rf"\| {order} +\| \d+\.\d\d +\| \d+\.\d\d +\| \d+\.\d\d ", out), out
    assert re.search(rf"longest first / ideal: {NUMBER}", out), out


def test_slots(data_dir: Path) -> None:
    out = run_bench("slots.py", data_dir)
    for shape in ("AIME 4 x 8, n honoured", "AIME 4 x 8, n ignored", "MMLU 24 x 1, 4 slots"):
        assert re.search(rf"\| {re.escape(shape)} +\| r1eval +\| \d+\.\d\d \(", out), out
        assert re.search(rf"{re.escape(shape)}, r1eval: span / ideal at most {NUMBER}", out)
    assert re.search(r"\| bound / ideal +\| clairvoyant / ideal +\| % slot time idle", out), out


def test_send_order(data_dir: Path) -> None:
    out = run_bench("send_order.py", data_dir)
    for order in ("lower bound", "plan order", "r1eval", "r1eval, history, n ignored",
                  "clairvoyant"):
        assert re.search(rf"\| {re.escape(order)} \| \d\.\d{{3}} \(\d\.\d{{3}}-", out), out


def test_replicas(data_dir: Path) -> None:
    out = run_bench("replicas.py", data_dir)
    for replicas, scenario in [(1, "all alike"), (2, "all alike"), (2, "one 3x slower"),
                               (2, "one killed halfway")]:
        assert re.search(rf"\| {replicas} +\| {scenario} +\| \d+\.\d\d +\| \d+\.\d\d +\| "
                         r"\d+\.\d\d +\| \d+ +\| 0 ", out), out  # no sample lost
        assert re.search(rf"{replicas} replicas, {scenario}: span / ideal {NUMBER}", out), out


@pytest.mark.browser
def test_report_page(data_dir: Path) -> None:
    require_browser()
    out = run_bench("report_page.py", data_dir)
    assert "The report page of a 40-sample run in headless Chromium" in out, out
    for step in ("open: page ready (in-page clock)", "open a question", "next page of samples"):
        assert re.search(rf"\| {re.escape(step)}[^|]*\| \d+\.\d\d +\| \d+\.\d\d ", out), out


@pytest.mark.browser
def test_report_screenshots(tmp_path: Path) -> None:
    require_browser()
    command = [sys.executable, str(REPO / "bench" / "report_screenshots.py"), f"--out={tmp_path}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    views = ("lengths", "overview", "questions", "regression", "samples")
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [f"{v}.png" for v in views]
    assert all(p.stat().st_size > 10_000 for p in tmp_path.glob("*.png"))  # not blank
