"""Finding tasks: the ``r1eval.tasks`` entry-point group, plus task files in a local folder.

Built-in tasks are registered through the same entry-point group as third-party ones (see
pyproject.toml), so a package that declares ``[project.entry-points."r1eval.tasks"]`` adds a
benchmark exactly as r1eval adds its own. A folder of task files (``--task-dir``) is loaded by
path: each ``*.py`` file in it must define ``TASK``.
"""

from __future__ import annotations

import importlib.util
from importlib.metadata import entry_points
from pathlib import Path

from r1eval.errors import UsageError
from r1eval.task.definition import Task

ENTRY_POINT_GROUP = "r1eval.tasks"


def available_tasks(task_dir: Path | None = None) -> dict[str, Task]:
    """Every task known: entry points first, then files of ``task_dir`` (which may override)."""
    tasks: dict[str, Task] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        tasks[entry.name] = _checked(entry.load(), f"entry point {entry.value}")
    if task_dir is not None:
        tasks.update(_tasks_in_folder(task_dir))
    return tasks


def resolve(names: list[str], task_dir: Path | None = None) -> list[Task]:
    """The tasks called ``names``, in that order; a clear error for any unknown name."""
    known = available_tasks(task_dir)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UsageError(
            f"unknown task {', '.join(map(repr, unknown))}; available: {', '.join(sorted(known))}"
        )
    return [known[name] for name in dict.fromkeys(names)]


def current_prompt_hash(task: str, recorded: object) -> object:
    """A run's recorded prompt hash as this release computes it.

    Folders written before the hash covered the rendered prompt recorded the hash of the task's
    template: while that template is unchanged, it reads as the task's current hash (the
    guarantee those runs had). Anything else, or a task not installed, is returned as is.
    """
    known = available_tasks().get(task)
    if known is not None and recorded == known.legacy_prompt_hash:
        return known.prompt_hash
    return recorded


def _tasks_in_folder(folder: Path) -> dict[str, Task]:
    if not folder.is_dir():
        raise UsageError(f"task folder {folder} does not exist")
    tasks = {}
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        spec = importlib.util.spec_from_file_location(f"r1eval_local_tasks.{path.stem}", path)
        if spec is None or spec.loader is None:
            raise UsageError(f"cannot load task file {path}")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as error:  # deliberate: any error of the user's file is reported
            raise UsageError(
                f"task file {path} (--task-dir) fails to load: {_why(error)}"
            ) from None
        task = _checked(getattr(module, "TASK", None), str(path))
        tasks[task.name] = task
    return tasks


def _why(error: Exception) -> str:
    """One line: where a syntax error is, else the exception."""
    if isinstance(error, SyntaxError):
        return f"syntax error on line {error.lineno}: {error.msg}"
    return " ".join(f"{type(error).__name__}: {error}".split())[:300]


def _checked(obj: object, where: str) -> Task:
    if not isinstance(obj, Task):
        raise UsageError(f"{where} does not define a Task (expected TASK = Task(...))")
    return obj
