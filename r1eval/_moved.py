"""The old flat module paths (``r1eval.compare``, ``r1eval.runs``, ...), kept for one release.

Importing an old path warns and hands back the module at its new place (a finder on
``sys.meta_path``, installed by ``import r1eval``), so ``from r1eval.runs import load_run`` and
monkeypatching through the old path keep working, without a file per old module. Old names
that now sit in a package of the same name (``r1eval.store``, ``r1eval.scoring``,
``r1eval.regress``) go through :func:`forward_names`. The table of moves is :data:`MOVED`.
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

MOVED: dict[str, str] = {
    "r1eval.audit": "r1eval.run.second_opinion",
    "r1eval.budget": "r1eval.run.budget",
    "r1eval.compare": "r1eval.claims.check",
    "r1eval.config": "r1eval.run.config",
    "r1eval.data": "r1eval.task.data",
    "r1eval.download": "r1eval.task.download",
    "r1eval.estimate": "r1eval.run.estimate",
    "r1eval.evaluate": "r1eval.run.evaluate",
    "r1eval.figure": "r1eval.claims.figure",
    "r1eval.junit": "r1eval.regress.junit",
    "r1eval.leaderboard": "r1eval.reports.leaderboard",
    "r1eval.lm_eval_export": "r1eval.export.lm_eval",
    "r1eval.lm_eval_utils": "r1eval.export.lm_eval_hooks",
    "r1eval.multiple_choice": "r1eval.task.multiple_choice",
    "r1eval.permutation": "r1eval.regress.permutation",
    "r1eval.plan": "r1eval.run.plan",
    "r1eval.power": "r1eval.scoring.power",
    "r1eval.prices": "r1eval.scoring.prices",
    "r1eval.progress": "r1eval.run.progress",
    "r1eval.prompts": "r1eval.task.prompts",
    "r1eval.provenance": "r1eval.run.provenance",
    "r1eval.records": "r1eval.store.records",
    "r1eval.regrade": "r1eval.run.regrade",
    "r1eval.registry": "r1eval.task.registry",
    "r1eval.report": "r1eval.reports.html",
    "r1eval.report_math": "r1eval.reports.mathjax",
    "r1eval.report_views": "r1eval.reports.views",
    "r1eval.reported": "r1eval.claims.published",
    "r1eval.reproduction": "r1eval.claims.reproduction",
    "r1eval.response": "r1eval.grading.final_answer",
    "r1eval.runner": "r1eval.run.runner",
    "r1eval.runs": "r1eval.store.loading",
    "r1eval.schedule": "r1eval.run.schedule",
    "r1eval.server_setup": "r1eval.backends.server_setup",
    "r1eval.stats": "r1eval.scoring.stats",
    "r1eval.task_factory": "r1eval.task.factory",
    "r1eval.thinking": "r1eval.backends.thinking",
    "r1eval.tokens": "r1eval.backends.tokens",
    "r1eval.zipcrypto": "r1eval.task.zipcrypto",
}
"""Old module path -> new module path (the old names that became packages are in
:data:`PACKAGE_FORWARDS`)."""

PACKAGE_FORWARDS: dict[str, str] = {
    "r1eval.regress": "r1eval.regress.paired",
    "r1eval.scoring": "r1eval.scoring.scores",
    "r1eval.store": "r1eval.store.folder",
}
"""Old modules whose path is now a package: their names are looked up in the new module."""

RENAMED: dict[str, str] = {
    "r1eval.compare.compare_runs": "r1eval.claims.check.check_reproduction",
    "r1eval.compare.render_csv": "r1eval.claims.render.render_csv",
    "r1eval.compare.render_json": "r1eval.claims.render.render_json",
    "r1eval.compare.render_markdown": "r1eval.claims.render.render_markdown",
    "r1eval.regress.compare_runs": "r1eval.regress.paired.paired_regression",
    "r1eval.regress.gate_text": "r1eval.regress.render.gate_text",
    "r1eval.regress.render_markdown": "r1eval.regress.render.render_markdown",
    "r1eval.regress.summary": "r1eval.regress.render.summary",
    "r1eval.runs.verdict": "r1eval.store.outcomes.sample_status",
}
"""Public names of an old module that are now elsewhere or named otherwise: old -> new."""


def _warn(old: str, new: str) -> None:
    warnings.warn(f"{old} has moved to {new}; the old path will be removed in the next release",
                  DeprecationWarning, stacklevel=3)


def _renamed(old: str, name: str) -> Any:
    """An old module's public name that moved or was renamed (:data:`RENAMED`), with a warning."""
    new = RENAMED.get(f"{old}.{name}")
    if new is None:
        raise AttributeError(f"module {old!r} has no attribute {name!r}")
    home, _, attr = new.rpartition(".")
    _warn(f"{old}.{name}", new)
    return getattr(importlib.import_module(home), attr)


class _OldPathLoader(importlib.abc.Loader):
    """Loads an old module path as the module at its new place."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        _warn(spec.name, new)
        module = importlib.import_module(new)
        self._own_spec = module.__spec__
        if any(name.startswith(f"{spec.name}.") for name in RENAMED):
            # PEP 562: the names the module lacks are then looked up among the old module's
            # renamed ones (none of the new modules has a __getattr__ of its own to keep).
            vars(module).setdefault("__getattr__", functools.partial(_renamed, spec.name))
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run; only give the module back its own spec, which the import set."""
        module.__spec__ = self._own_spec


class _OldPathFinder(importlib.abc.MetaPathFinder):
    """Finds the old module paths of :data:`MOVED` (and nothing else)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None,
                  ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, _OldPathLoader())


def install_old_paths() -> None:
    """Let the old module paths be imported (once per process)."""
    if not any(isinstance(finder, _OldPathFinder) for finder in sys.meta_path):
        sys.meta_path.append(_OldPathFinder())


def forward_names(package: str) -> Callable[[str], Any]:
    """A package's ``__getattr__`` that finds the old module's names in their new module."""
    new = PACKAGE_FORWARDS[package]

    def __getattr__(name: str) -> Any:
        module: ModuleType = importlib.import_module(new)
        value = getattr(module, name, None)
        # Modules are not forwarded: ``from r1eval.scoring import stats`` must find the submodule.
        if name.startswith("__") or isinstance(value, ModuleType):
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if value is None:
            return _renamed(package, name)
        _warn(f"{package}.{name}", f"{new}.{name}")
        return value

    return __getattr__
