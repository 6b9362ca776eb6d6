"""Flags and help text that several commands share: one wording per flag, one epilog format.

Not a command itself (``COMMANDS`` does not list it).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from r1eval.run.config import RunConfig

# argparse's parser and argument group both offer add_argument.
Flags = Any

BAD_INPUT = "2 bad input (flags, config, data, run folder: one line says which)"


def epilog(example: str, *exit_codes: str) -> str:
    """The end of a command's --help: one example, then what each exit code means."""
    codes = "\n".join(textwrap.fill(code, 79, initial_indent="  ", subsequent_indent="    ")
                      for code in exit_codes)
    return f"example:\n  {example}\n\nexit codes:\n{codes}"


def add_sampling(flags: Flags) -> None:
    """--protocol and the sampling parameters, as run, estimate, grade and export-lm-eval
    take them."""
    flags.add_argument("--protocol", choices=["r1", "none"],
                       help="r1: DeepSeek-R1's protocol (temperature 0.6, top-p 0.95, 32768 "
                       "tokens, R1's samples per task); none (the default): only what you set "
                       "is sent, the server's defaults apply to the rest")
    flags.add_argument("--temperature", type=float,
                       help="sampling temperature, 0-2 (default: the protocol's, else the "
                       "server's)")
    flags.add_argument("--top-p", dest="top_p", type=float,
                       help="nucleus sampling share, above 0 and at most 1 (default: the "
                       "protocol's, else the server's)")
    add_max_tokens(flags)


def add_max_tokens(flags: Flags) -> None:
    flags.add_argument("--max-tokens", dest="max_tokens", type=int,
                       help="length limit of one response, reasoning included (default: the "
                       "protocol's 32768, else the server's)")


def add_samples(flags: Flags) -> None:
    flags.add_argument("--samples", type=int, metavar="K",
                       help="responses per question (default 1; with --protocol r1, R1's count "
                       "per task: 64 AIME, 4 MATH-500, 8 GPQA, 1 MMLU)")


def add_data_dir(flags: Flags) -> None:
    flags.add_argument("--data-dir", dest="data_dir", type=Path,
                       help="local benchmark files instead of the Hub (or R1EVAL_DATA_DIR; "
                       "prepare one with r1eval data download)")


def add_task_dir(flags: Flags, purpose: str = "extra folder of task files") -> None:
    flags.add_argument("--task-dir", dest="task_dir", type=Path, metavar="DIR", help=purpose)


def add_model(flags: Flags) -> None:
    flags.add_argument("--model", help=RunConfig.model_fields["model"].description)


def add_tasks(flags: Flags) -> None:
    flags.add_argument("--tasks", help=RunConfig.model_fields["tasks"].description)


def add_limit(flags: Flags) -> None:
    flags.add_argument("--limit", type=int, metavar="N",
                       help="only the first N questions of each task (default: all)")


def add_prices(flags: Flags) -> None:
    flags.add_argument("--price-in", dest="price_in", type=float, metavar="USD",
                       help="USD per 1M input tokens (with --price-out; overrides the price "
                       "table)")
    flags.add_argument("--price-out", dest="price_out", type=float, metavar="USD",
                       help="USD per 1M output tokens")
    flags.add_argument("--prices", type=Path, metavar="FILE",
                       help="a TOML price table of your own")


def add_config(flags: Flags) -> None:
    flags.add_argument("--config", type=Path, metavar="FILE",
                       help="TOML file of the same settings (flags and R1EVAL_* variables "
                       "override it)")


def add_history(flags: Flags, purpose: str) -> None:
    flags.add_argument("--history", type=Path, default=Path("results"), metavar="DIR",
                       help=purpose)

