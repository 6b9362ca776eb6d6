"""The subcommands of ``r1eval``: one module each, with ``NAME``, ``HELP``, ``configure`` and
``main``. ``cli.py`` builds the parser from ``COMMANDS``; add a module here to add a command."""

from __future__ import annotations

import argparse
from types import ModuleType
from typing import Protocol, cast

from r1eval.commands import (
    compare,
    estimate,
    export_lm_eval,
    grade,
    leaderboard,
    power,
    regrade,
    regress,
    report,
    run,
    tasks,
)


class Command(Protocol):
    NAME: str
    HELP: str

    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def main(self, args: argparse.Namespace) -> int: ...


def _commands(*modules: ModuleType) -> list[Command]:
    return [cast(Command, module) for module in modules]


COMMANDS: list[Command] = _commands(
    run, estimate, tasks, leaderboard, report, regress, power, compare, grade, regrade,
    export_lm_eval,
)

__all__ = ["COMMANDS", "Command"]
