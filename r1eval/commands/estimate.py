"""``r1eval estimate``: the requests, tokens and cost a run would need; sends nothing.

It takes only what changes an estimate: which questions (model, tasks, limit, samples, data),
how long a response may be (protocol, max tokens), prices, and the history it estimates from.
Where the run would go and how fast (endpoint, run folder, concurrency, timeouts) do not.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from r1eval.commands.run import estimate_table
from r1eval.commands.shared import (
    BAD_INPUT,
    add_config,
    add_data_dir,
    add_history,
    add_limit,
    add_max_tokens,
    add_model,
    add_prices,
    add_samples,
    add_task_dir,
    add_tasks,
    epilog,
)
from r1eval.run.config import build_config
from r1eval.run.evaluate import prepare

EPILOG = epilog(
    "r1eval estimate --model deepseek-reasoner --tasks aime24 --protocol r1",
    "0 the estimate is printed",
    BAD_INPUT,
)


def configure(parser: argparse.ArgumentParser) -> None:
    add_model(parser)
    add_tasks(parser)
    add_limit(parser)
    add_samples(parser)
    parser.add_argument("--protocol", choices=["r1", "none"],
                        help="r1: R1's samples per task and 32768 tokens at most per response; "
                        "none (the default): --samples and --max-tokens only")
    add_max_tokens(parser)
    add_data_dir(parser)
    add_task_dir(parser)
    add_prices(parser)
    add_history(parser, "earlier runs of the model to estimate tokens from (default results/); "
                "without them the estimate is an upper bound from the length limit")
    add_config(parser)


def main(args: argparse.Namespace) -> int:
    flags = {k: v for k, v in vars(args).items()
             if k not in ("command", "config", "handler", "history")}
    config = build_config(flags, args.config, os.environ)
    # The endpoint is no part of an estimate: a placeholder identity keys the planned requests.
    prepared = prepare(config, {}, False, endpoint={"model": config.model, "kind": "estimate"})
    history: Path = args.history
    print(estimate_table(prepared, history))
    return 0
