"""The ``r1eval`` command: parses flags, calls the library, turns errors into exit codes.

Exit codes: 0 success; 1 the command ran but its verdict is negative (some requests failed,
a regression was found); 2 bad input (flags, config, data, endpoint, run folder).
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence

from r1eval import __version__
from r1eval.commands import COMMANDS, load
from r1eval.errors import R1EvalError


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2 (not a usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"r1eval: error: {message} (see {self.prog} --help)\n")


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; only ``chosen``'s module is imported and given its flags."""
    parser = _Parser(
        prog="r1eval",
        description="Evaluate reasoning models on AIME 2024, MATH-500, GPQA Diamond and MMLU, "
        "and check whether reported scores reproduce.",
    )
    parser.add_argument("--version", action="version", version=f"r1eval {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, summary in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == chosen:
            command = load(name)
            command.configure(sub)
            sub.epilog = command.EPILOG
            sub.set_defaults(handler=command.main)
    return parser


def _escape_unencodable_output() -> None:
    """Print what the terminal cannot encode (a lone surrogate of a model's broken UTF-16, kept
    in the log on purpose) as an escape such as ``\\udc80`` instead of crashing."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    _escape_unencodable_output()
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    args = build_parser(chosen).parse_args(argv)
    try:
        code: int = args.handler(args)
    except R1EvalError as error:
        print(f"r1eval: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("r1eval: interrupted; everything received is saved: run the same command "
              "again to resume", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
