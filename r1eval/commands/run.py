"""``r1eval run``: evaluate a model on one or more tasks."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from r1eval.commands.shared import (
    BAD_INPUT,
    add_config,
    add_data_dir,
    add_history,
    add_limit,
    add_model,
    add_prices,
    add_samples,
    add_sampling,
    add_task_dir,
    add_tasks,
    epilog,
)
from r1eval.reports.end_of_run import scores_table
from r1eval.run.config import build_config
from r1eval.run.evaluate import PreparedRun, execute, prepare
from r1eval.run.schedule import LongestFirst
from r1eval.scoring.prices import price_for
from r1eval.table import markdown_table

NOT_CONFIG = ("command", "config", "handler", "dry_run", "history")

EPILOG = epilog(
    "r1eval run --model deepseek-r1:7b --base-url http://localhost:11434/v1 "
    "--tasks aime24 --protocol r1",
    "0 every sample done",
    "1 the run finished but some requests failed (the same command retries only those), or it "
    "stopped at its budget or after 20 failures in a row",
    BAD_INPUT + "; also the endpoint refused the run (URL, key, model name)",
    "130 interrupted (the same command resumes)",
)


def configure(run: argparse.ArgumentParser) -> None:
    add_model(run)
    run.add_argument("--base-url", dest="base_url", action="append", metavar="URL[@N]",
                     help="OpenAI-compatible URL, e.g. http://localhost:8000/v1; give it again "
                     "for each replica of the model (N servers, data-parallel ranks or nodes): "
                     "one queue, each replica pulls as it frees its slots, one that fails is "
                     "set aside and probed again; @N sets its samples in flight (default "
                     "--concurrency, else what the server says, else 256); see README "
                     "'Many servers'")
    run.add_argument("--api-key-env", dest="api_key_env", metavar="NAME",
                     help="environment variable holding the API key (default OPENAI_API_KEY; "
                     "a local server needs none)")
    add_tasks(run)
    add_limit(run)
    add_samples(run)
    add_sampling(run)
    run.add_argument("--run-dir", dest="run_dir", type=Path,
                     help="run folder (default: results/<model>-<tasks>-<hash of the settings>, "
                     "so the same command resumes its run); an existing one is resumed")
    add_data_dir(run)
    add_task_dir(run)
    run.add_argument("--concurrency", type=int,
                     help="samples in flight, the repeats of a question split to fit (default: "
                     "the server's capacity where it says, e.g. SGLang; else 256)")
    run.add_argument("--timeout", type=float,
                     help="seconds per request, or to the first event of a streamed one "
                     "(default 1800)")
    run.add_argument("--idle-timeout", dest="idle_timeout", type=float,
                     help="seconds a stream may stay silent once it began (default 300)")
    run.add_argument("--stream", choices=["auto", "on", "off"],
                     help="stream requests: auto (default) those of several samples, so each "
                     "sample is kept as it finishes; on: every request; off: none")
    run.add_argument("--max-attempts", dest="max_attempts", type=int,
                     help="attempts per request on transient failures (default 8)")
    run.add_argument("--max-response-mib", dest="max_response_mib", type=int,
                     help="largest response body read, in MiB (default 32); a larger one is a "
                     "failed request")
    run.add_argument("--grader-workers", dest="grader_workers", type=int,
                     help="grading processes (default: one per core)")
    run.add_argument("--grade-timeout", dest="grade_timeout", type=float,
                     help="seconds allowed to grade one response (default 30)")
    run.add_argument("--reasoning-delimiters", dest="reasoning_delimiters", metavar="NAMES",
                     help="reasoning trace formats to split off (default think,thought)")
    thinking = run.add_argument_group(
        "thinking controls (sent as given; part of the run's identity, compared by "
        "compare/regress)")
    thinking.add_argument("--reasoning-effort", dest="reasoning_effort",
                          metavar="{none,minimal,low,medium,high,xhigh}",
                          help="OpenAI o-series/GPT-5 reasoning_effort (default: not sent)")
    thinking.add_argument("--chat-template-kwargs", dest="chat_template_kwargs", metavar="JSON",
                          help="vLLM/SGLang chat-template arguments, e.g. "
                          "'{\"enable_thinking\": true}' for Qwen3")
    thinking.add_argument("--system-prompt", dest="system_prompt", metavar="TEXT",
                          help="a system turn before each prompt (default none, as the "
                          "DeepSeek-R1 protocol)")
    thinking.add_argument("--extra-body", dest="extra_body", metavar="JSON",
                          help="more fields for the request body, e.g. '{\"top_k\": 20}'; "
                          "not those r1eval sets itself")
    local = run.add_argument_group("in-process models (--model hf:PATH or vllm:PATH)")
    local.add_argument("--dtype", help="weights dtype (default auto); part of the run's identity")
    local.add_argument("--device", help="hf: cuda, cpu, cuda:1... (default: the GPU if any)")
    local.add_argument("--batch-size", dest="batch_size", type=int,
                       help="hf: sequences per generate call (default 16)")
    local.add_argument("--tensor-parallel-size", dest="tensor_parallel_size", type=int,
                       help="vllm: GPUs to shard the model over (default 1)")
    local.add_argument("--data-parallel-size", dest="data_parallel_size", type=int,
                       help="vllm: engines, one process each on its own --tensor-parallel-size "
                       "GPUs, sharing the run's queue (default 1)")
    local.add_argument("--gpu-memory-utilization", dest="gpu_memory_utilization", type=float,
                       help="vllm: share of GPU memory to use (default 0.9)")
    local.add_argument("--max-model-len", dest="max_model_len", type=int,
                       help="vllm: context length to allocate")
    local.add_argument("--trust-remote-code", dest="trust_remote_code", action="store_true",
                       default=None, help="allow the checkpoint's own model code")
    run.add_argument("--max-cost", dest="max_cost", type=float, metavar="USD",
                     help="stop sending requests before the run would cost more (USD)")
    run.add_argument("--max-tokens-total", dest="max_tokens_total", type=int,
                     help="stop sending requests before the run would use more tokens")
    add_prices(run)
    add_config(run)
    run.add_argument("--dry-run", dest="dry_run", action="store_true",
                     help="estimate requests, tokens and cost; send nothing, write nothing "
                     "(r1eval estimate)")
    add_history(run, "earlier runs to estimate from and to send the longest questions first "
                "(default results/)")


def _range(values: tuple[float, float, float] | None, form: str, ceiling: bool) -> str:
    if values is None:
        return "-"
    low, mid, high = (form.format(v) for v in values)
    return f"at most {high}" if ceiling else f"{mid} ({low}-{high})"


def estimate_table(prepared: PreparedRun, history_dir: Path) -> str:
    """The dry run's table: requests, tokens and cost per task, with ranges and their basis."""
    from r1eval.run.estimate import estimate, total_cost  # pandas: only for a dry run
    from r1eval.store.loading import load_runs

    config = prepared.config
    price = price_for(config.model, config.prices, config.price_in, config.price_out)
    history = None
    if history_dir.is_dir():
        samples = load_runs(history_dir).samples
        history = samples[samples["model"] == config.model]
    estimates = estimate(prepared.items, config.sampling(), history)
    rows = []
    for e in estimates:
        tokens, cost = e.completion_tokens, e.cost(price)
        rows.append([e.task, e.questions, e.samples, e.requests, f"{e.prompt_tokens:,.0f}",
                     _range(tokens, "{:,.0f}", e.upper_bound),
                     _range(cost, "{:,.2f}", e.upper_bound), e.basis])
    header = ["task", "questions", "samples", "requests", "prompt tokens",
              "completion tokens (range)", "USD (range)", "basis"]
    total = total_cost(estimates, price)
    footer = ("prices: unknown for this model (use --price-in/--price-out)" if price is None
              else f"prices: {price.input}/{price.output} USD per 1M tokens ({price.source})")
    if total is not None:
        ceiling = any(e.upper_bound for e in estimates)
        footer += f"\ntotal: {_range(total, '{:,.2f}', ceiling)} USD"
    return markdown_table(header, rows) + "\n" + footer


def main(args: argparse.Namespace) -> int:
    flags = {k: v for k, v in vars(args).items() if k not in NOT_CONFIG}
    config = build_config(flags, args.config, os.environ)
    key_explicit = args.api_key_env is not None or "R1EVAL_API_KEY_ENV" in os.environ
    prepared = prepare(config, os.environ, key_explicit)
    if args.dry_run:
        print(estimate_table(prepared, args.history))
        return 0
    scores = execute(
        prepared,
        lambda path: print(f"run folder: {path}", file=sys.stderr),
        order=LongestFirst((args.history,), config.model),
    )
    print(scores_table(scores))
    errors = sum(task.n_errors for task in scores.tasks.values())
    if errors:
        print(f"r1eval: {errors} requests failed; run the same command again to retry only "
              "those", file=sys.stderr)
        return 1
    return 0
