"""What pyproject.toml asks of its dependencies exists: an extra a dependency does not provide
is a warning on every install, and whatever the extra was meant to bring is missing."""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def requirements() -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    optional = [r for group in project["optional-dependencies"].values() for r in group]
    return [Requirement(r) for r in project["dependencies"] + optional]


@pytest.mark.parametrize("requirement", [r for r in requirements() if r.extras], ids=str)
def test_every_extra_asked_for_is_provided_as_spelled(requirement: Requirement) -> None:
    """Compared as spelled: pip before 23.3 does not normalise extra names (math-verify 0.9
    provides "antlr4-13-2", and pip then warns that it has no "antlr4_13_2")."""
    try:
        provided = metadata(requirement.name).get_all("Provides-Extra") or []
    except PackageNotFoundError:
        pytest.skip(f"{requirement.name} is not installed here")
    assert set(requirement.extras) <= set(provided), (requirement, provided)


def test_the_latex_parser_runtime_is_the_one_pinned() -> None:
    pinned = next(r for r in requirements() if r.name == "antlr4-python3-runtime")
    assert metadata("antlr4-python3-runtime")["Version"] in pinned.specifier
