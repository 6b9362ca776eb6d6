"""``r1eval export-lm-eval DIR``: r1eval's tasks as lm-evaluation-harness task configs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from r1eval.commands.shared import BAD_INPUT, add_data_dir, epilog
from r1eval.errors import UsageError
from r1eval.export.lm_eval import export_lm_eval, task_name
from r1eval.run.config import R1_SAMPLING
from r1eval.task.data import load_task
from r1eval.task.registry import available_tasks, resolve
from r1eval.types import SamplingParams

EPILOG = epilog(
    "r1eval export-lm-eval lm_tasks --tasks aime24,math500 --protocol r1",
    "0 the task configs are written", BAD_INPUT)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, help="folder for the task configs and data files")
    parser.add_argument("--tasks", help="comma-separated task names (default: all)")
    add_data_dir(parser)
    parser.add_argument("--limit", type=int, help="only the first N questions of each task")
    parser.add_argument("--samples", type=int,
                        help="documents (repeats) per question (default 1; --protocol r1: R1's K)")
    parser.add_argument("--protocol", choices=["r1", "none"], default="none",
                        help="r1: temperature 0.6, top-p 0.95, 32768 tokens, R1's K per task; "
                        "none (the default): only what you set, lm-eval's defaults for the rest")
    parser.add_argument("--temperature", type=float,
                        help="written into the configs (default: the protocol's, else lm-eval's)")
    parser.add_argument("--top-p", dest="top_p", type=float,
                        help="written into the configs (default: the protocol's, else lm-eval's)")
    parser.add_argument("--max-tokens", dest="max_tokens", type=int,
                        help="lm-eval's max_gen_toks (default 32768)")


def main(args: argparse.Namespace) -> int:
    names = _names(args.tasks)
    if any(value is not None and value < 1 for value in (args.limit, args.samples)):
        raise UsageError("--limit and --samples must be at least 1")
    data_dir = args.data_dir or _env_path("R1EVAL_DATA_DIR")
    loaded = [load_task(task, data_dir, args.limit) for task in resolve(names)]
    r1 = args.protocol == "r1"
    samples = {
        t.task.name: args.samples or (t.task.r1_samples if r1 else 1) for t in loaded
    }
    written = export_lm_eval(args.dir, loaded, samples, _sampling(args, r1))
    for path in written:
        print(path)
    for private in (t.task.name for t in loaded if t.task.private_text):
        print(f"r1eval: {args.dir / task_name(private)}.jsonl holds {private}'s questions in "
              "plain text, which its authors ask never to publish: keep it private",
              file=sys.stderr)
    tasks = ",".join(task_name(t.task.name) for t in loaded)
    print(f"lm_eval --model local-chat-completions --apply_chat_template --include_path "
          f"{args.dir} --tasks {tasks} --model_args model=M,base_url=http://HOST:PORT/v1/chat/"
          "completions,num_concurrent=8", file=sys.stderr)
    return 0


def _names(tasks: str | None) -> list[str]:
    if tasks is None:
        return sorted(available_tasks())
    return [name.strip() for name in tasks.split(",") if name.strip()]


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _sampling(args: argparse.Namespace, r1: bool) -> SamplingParams:
    base = R1_SAMPLING if r1 else SamplingParams()
    return SamplingParams(
        temperature=args.temperature if args.temperature is not None else base.temperature,
        top_p=args.top_p if args.top_p is not None else base.top_p,
        max_tokens=args.max_tokens if args.max_tokens is not None else base.max_tokens,
    )
