"""The module paths of the flat layout keep working for one release, with a warning."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

from r1eval._moved import MOVED, PACKAGE_FORWARDS, RENAMED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_path_is_the_new_module_with_a_warning(old: str) -> None:
    # A fresh interpreter: in this one the old path may already be imported (no second warning).
    code = (
        "import importlib, warnings\n"
        "warnings.simplefilter('error')\n"
        f"try:\n    importlib.import_module({old!r})\n"
        "except DeprecationWarning as warning:\n    print(warning)\n"
        "else:\n    print('no warning')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (
        f"{old} has moved to {MOVED[old]}; the old path will be removed in the next release")


def test_the_old_path_gives_the_very_module_so_patching_it_patches_the_new(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.warns(DeprecationWarning):
        old = importlib.import_module("r1eval.schedule")
    new = importlib.import_module("r1eval.run.schedule")
    assert old is new
    assert new.__spec__ is not None and new.__spec__.name == "r1eval.run.schedule"
    monkeypatch.setattr(old, "expected_tokens", "patched")
    assert new.expected_tokens == "patched"


@pytest.mark.parametrize("package", sorted(PACKAGE_FORWARDS))
def test_names_of_an_old_module_that_became_a_package_are_forwarded(package: str) -> None:
    module = importlib.import_module(PACKAGE_FORWARDS[package])
    public = next(name for name in sorted(vars(module)) if not name.startswith("_")
                  and getattr(vars(module)[name], "__module__", None) == module.__name__)
    with pytest.warns(DeprecationWarning, match=f"{package}.{public} has moved"):
        assert getattr(importlib.import_module(package), public) is getattr(module, public)
    with pytest.raises(AttributeError):
        _ = importlib.import_module(package).no_such_name


@pytest.mark.parametrize("old", sorted(RENAMED))
def test_a_public_name_that_moved_or_was_renamed_still_imports_from_its_old_module(
        old: str) -> None:
    """``from r1eval.compare import compare_runs`` (the analysis notebook's import before the
    layout moved) gives the renamed function, with a warning naming its new place."""
    module_name, _, name = old.rpartition(".")
    home, _, new_name = RENAMED[old].rpartition(".")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the module path's own warning
        module = importlib.import_module(module_name)
    with pytest.warns(DeprecationWarning, match=f"{old} has moved to {RENAMED[old]}"):
        found = getattr(module, name)
    assert found is getattr(importlib.import_module(home), new_name)
    with pytest.raises(AttributeError):
        _ = module.no_such_name


def test_paths_that_never_existed_still_fail_to_import() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("r1eval.no_such_module")
