"""Where a run's numbers come from: versions, git revision, machine (never secrets)."""

from __future__ import annotations

import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = ("r1eval", "aiohttp", "math-verify", "latex2sympy2_extended", "sympy", "datasets",
            "pandas", "numpy", "tenacity")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def git_revision() -> dict[str, Any] | None:
    """r1eval's own git commit (and whether the tree had local changes), when run from git."""
    source = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


def provenance() -> dict[str, Any]:
    return {
        "packages": package_versions(),
        "git": git_revision(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
