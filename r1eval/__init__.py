"""r1eval: evaluate reasoning models and say honestly whether a reported score reproduces.

The public API: the core types, the task definition, and the run loaders
(``load_run``/``load_runs``, which return pandas DataFrames; imported lazily so that
``import r1eval`` in a grading worker does not pay for pandas).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from r1eval._moved import install_old_paths
from r1eval.errors import (
    DataError,
    EndpointError,
    R1EvalError,
    RequestFailed,
    RunFolderError,
    UsageError,
)
from r1eval.task.definition import HubSource, LocalSource, Task
from r1eval.types import Completion, Grade, Prompt, Sample, SamplingParams, Usage

if TYPE_CHECKING:
    from r1eval.store.loading import Run, RunSet, load_run, load_runs

__version__ = "0.1.0"

install_old_paths()

__all__ = [
    "Completion",
    "DataError",
    "EndpointError",
    "Grade",
    "HubSource",
    "LocalSource",
    "Prompt",
    "R1EvalError",
    "RequestFailed",
    "Run",
    "RunFolderError",
    "RunSet",
    "Sample",
    "SamplingParams",
    "Task",
    "Usage",
    "UsageError",
    "__version__",
    "load_run",
    "load_runs",
]

_LAZY = {"Run", "RunSet", "load_run", "load_runs"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from r1eval.store import loading as runs

        return getattr(runs, name)
    raise AttributeError(f"module 'r1eval' has no attribute {name!r}")
