"""``r1eval run``: evaluate a model on one or more tasks."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from r1eval.config import build_config
from r1eval.evaluate import execute, prepare
from r1eval.table import scores_table

NAME = "run"
HELP = "evaluate a model on one or more tasks"


def configure(run: argparse.ArgumentParser) -> None:
    run.add_argument("--model", help="model name as the endpoint knows it")
    run.add_argument("--base-url", dest="base_url",
                     help="OpenAI-compatible URL, e.g. http://localhost:8000/v1")
    run.add_argument("--api-key-env", dest="api_key_env", metavar="NAME",
                     help="environment variable holding the API key (default OPENAI_API_KEY; "
                     "a local server needs none)")
    run.add_argument("--tasks", help="comma-separated task names (see r1eval tasks)")
    run.add_argument("--limit", type=int, help="only the first N questions of each task")
    run.add_argument("--samples", type=int, help="responses per question (K)")
    run.add_argument("--protocol", choices=["r1", "none"],
                     help="r1: temperature 0.6, top-p 0.95, 32768 tokens, K per task")
    run.add_argument("--temperature", type=float)
    run.add_argument("--top-p", dest="top_p", type=float)
    run.add_argument("--max-tokens", dest="max_tokens", type=int)
    run.add_argument("--run-dir", dest="run_dir", type=Path,
                     help="run folder (default: a new folder under results/); an existing one "
                     "is resumed")
    run.add_argument("--data-dir", dest="data_dir", type=Path,
                     help="local benchmark files instead of the Hub (or R1EVAL_DATA_DIR)")
    run.add_argument("--task-dir", dest="task_dir", type=Path, help="extra folder of task files")
    run.add_argument("--concurrency", type=int, help="requests in flight (default 32)")
    run.add_argument("--timeout", type=float, help="seconds per request (default 1800)")
    run.add_argument("--max-attempts", dest="max_attempts", type=int,
                     help="attempts per request on transient failures (default 8)")
    run.add_argument("--grader-workers", dest="grader_workers", type=int,
                     help="grading processes (default: one per core)")
    run.add_argument("--grade-timeout", dest="grade_timeout", type=float,
                     help="seconds allowed to grade one response (default 30)")
    run.add_argument("--config", type=Path, help="TOML file of the same settings")


def main(args: argparse.Namespace) -> int:
    flags = {k: v for k, v in vars(args).items() if k not in ("command", "config", "handler")}
    config = build_config(flags, args.config, os.environ)
    key_explicit = args.api_key_env is not None or "R1EVAL_API_KEY_ENV" in os.environ
    prepared = prepare(config, os.environ, key_explicit)
    scores = execute(prepared, lambda path: print(f"run folder: {path}", file=sys.stderr))
    print(scores_table(scores))
    errors = sum(task["n_errors"] for task in scores["tasks"].values())
    if errors:
        print(f"r1eval: {errors} requests failed; run the same command again to retry only "
              "those", file=sys.stderr)
        return 1
    return 0
