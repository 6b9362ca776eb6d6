"""The subcommands of ``r1eval``: one module each (``-`` in a name is ``_`` in its module),
with ``configure(parser)``, ``main(args)`` and ``EPILOG`` (one example and the exit codes, the
end of its --help: see ``shared.epilog``); ``COMMANDS`` names them with their one-line help.
``cli.py`` imports only the module of the command being run: importing them all would cost every
command pandas, matplotlib and sympy (about half a second). Add a module and a line here to add
a command."""

from __future__ import annotations

import argparse
import importlib
from typing import Protocol, cast

COMMANDS: dict[str, str] = {
    "run": "evaluate a model on one or more tasks",
    "estimate": "estimate requests, tokens and cost of a run before sending anything "
    "(run --dry-run)",
    "tasks": "list the available tasks with version, question count and data source",
    "leaderboard": "write a leaderboard CSV (one row per run and task, with provenance)",
    "report": "write a self-contained HTML report of a run, or of two side by side",
    "regress": "compare a candidate run with its base run question by question (a CI gate)",
    "power": "samples per question needed to detect a drop of a given size (plans regress)",
    "compare": "compare runs with their models' reported scores: reproduced, below, above or "
    "inconclusive",
    "grade": "grade and score a JSONL file of existing responses as a run folder",
    "regrade": "re-grade a run's stored responses with the current graders (no new generation)",
    "data": "download the tasks' Hub datasets into a local data folder (for --data-dir)",
    "export-lm-eval": "write r1eval's tasks as lm-eval task configs (same prompts, r1eval's "
    "graders)",
}


class Command(Protocol):
    EPILOG: str

    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def main(self, args: argparse.Namespace) -> int: ...


def load(name: str) -> Command:
    """The module of command ``name`` (one of ``COMMANDS``)."""
    return cast(Command, importlib.import_module(f"r1eval.commands.{name.replace('-', '_')}"))


__all__ = ["COMMANDS", "Command", "load"]
