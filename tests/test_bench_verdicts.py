"""bench/verdicts.py, smoke-sized: it runs as a user runs it and prints its tables. Only that
the figures are produced, and agree with scipy, is checked; the measured rates live in
bench/RESULTS.md."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow


def test_verdicts_smoke() -> None:
    command = [sys.executable, str(REPO / "bench" / "verdicts.py"), "--smoke"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "| n | K | difficulty | coverage % | reproduced % |" in out, out
    assert re.search(r"\| 30 \| 4 \| AIME-like Beta\(0\.6,0\.6\) \|( \d+\.\d \|){5}", out), out
    assert re.search(r"\| 30 \| mid Beta\(2,2\) \| 20 \|( \d+\.\d \|){3}", out), out
    scipy_gap = re.search(r"scipy.stats.norm p\| of the same-question test: (\S+)", out)
    mcnemar_gap = re.search(r"binomtest \(McNemar\)\| of the permutation test at K = 1: (\S+)",
                            out)
    assert scipy_gap and float(scipy_gap.group(1)) < 1e-9, out
    assert mcnemar_gap and float(mcnemar_gap.group(1)) < 1e-9, out
