"""``r1eval estimate``: ``r1eval run --dry-run`` under its own name."""

from __future__ import annotations

import argparse

from r1eval.commands import run


def configure(parser: argparse.ArgumentParser) -> None:
    run.configure(parser)
    parser.set_defaults(dry_run=True)


def main(args: argparse.Namespace) -> int:
    args.dry_run = True
    return run.main(args)
