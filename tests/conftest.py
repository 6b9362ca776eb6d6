"""Shared fixtures: the official benchmark files, run on real data where the tests need it."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def r1eval_process_args(*args: str) -> list[str]:
    """The r1eval command as a subprocess of this Python (same installed package)."""
    return [sys.executable, "-m", "r1eval.cli", *args]


# Subprocesses run outside the repository: from its root, "python -m" would import the source
# folder r1eval/, where the task plugins (installed as r1eval.tasks from tasks/) are not.
OUTSIDE_REPO = Path(tempfile.gettempdir())


def official_data_dir() -> Path:
    return Path(os.environ.get("R1EVAL_DATA_DIR", REPO.parent / "shared" / "data"))


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def require_browser() -> None:
    """Skip without Debian's chromium and chromedriver; fail when R1EVAL_REQUIRE_BROWSER=1."""
    if os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER):
        return
    if os.environ.get("R1EVAL_REQUIRE_BROWSER") == "1":
        pytest.fail("chromium and chromedriver are required (apt-get install chromium "
                    "chromium-driver)")
    pytest.skip("no chromium/chromedriver")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The official benchmark files; CI sets R1EVAL_REQUIRE_DATA=1 so absence is a failure."""
    path = official_data_dir()
    if not (path / "math500").is_dir():
        if os.environ.get("R1EVAL_REQUIRE_DATA") == "1":
            pytest.fail(f"benchmark data not found at {path} (R1EVAL_DATA_DIR)")
        pytest.skip(f"benchmark data not found at {path}; set R1EVAL_DATA_DIR")
    return path
