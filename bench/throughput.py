"""Requests per second and CPU per request: the raw client, r1eval, lm-eval, side by side.

    python bench/throughput.py            # 500 MATH-500 questions x 10 = 5,000 requests each
    python bench/throughput.py --integer-answers --repeats 16   # 311 x 16: grading nearly free
    python bench/throughput.py --smoke    # a few hundred requests, for the test suite

Against the same instant server (``sim_server.py``, its own process, loopback), each contender
runs in a fresh process and sends the same MATH-500 prompts with the same sampling:

- A: a plain ``aiohttp`` loop (JSON in, JSON out, nothing else): what one Python process can
  send at all, the client's limit;
- B: ``r1eval`` end to end (plan, requests, the log on disk, grading in worker processes,
  scores). The server answers one choice per request, as llama.cpp does, so r1eval too sends one
  request per sample: the same number of requests as A and C, plus its one-token probe of
  ``n``;
- B (n): r1eval as it runs against vLLM: the K repeats of a question in requests of ``n`` up to
  K (fewer when less room is left of ``--concurrency`` samples in flight);
- C: lm-eval's ``local-chat-completions`` on r1eval's own export of the same prompts (graded by
  r1eval's grader in lm-eval's main thread), at the best ``num_concurrent`` of a short sweep.
  Its figure is given twice: whole (with its fixed start-up: task loading, the chat template)
  and marginal (requests beyond the sweep's ``--sweep-docs``, over the time they added).

Every contender runs ``--rounds`` times, in turn (so a slow spell of a shared machine hits all
of them); the round of median requests/s of each is reported. Printed: requests/s, samples/s
and CPU seconds per 1,000 requests of each (the client's own process and its children, never
the server's), and the ratios B/A and B/C.

With every MATH-500 question, about 4 answers in 10 need sympy (math-verify), some 4 ms of CPU
each, for B and C alike: that is most of the work on a small machine. ``--integer-answers``
keeps the questions whose answer is a plain integer, compared without sympy: what is left is
each harness's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from r1eval.run.config import R1_SAMPLING

from common import (
    MODEL,
    Measurement,
    Server,
    add_common_arguments,
    data_dir,
    math500_records,
    math500_run,
    math_prompt,
    measured,
    print_report,
    ratio,
    run_child,
    run_script,
    sim_server,
)

HERE = "throughput.py"


# --- the contenders, each run in its own process ----------------------------------------------


async def plain_loop(base_url: str, prompts: list[str], concurrency: int) -> int:
    """A: ``concurrency`` tasks posting the prompts with one ``aiohttp`` session; no retries,
    no log, no grading."""
    import aiohttp

    todo, received = iter(prompts), 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal received
            for prompt in todo:
                body = {"model": MODEL, "messages": [{"role": "user", "content": prompt}],
                        "temperature": R1_SAMPLING.temperature, "top_p": R1_SAMPLING.top_p,
                        "max_tokens": R1_SAMPLING.max_tokens}
                async with session.post(f"{base_url}/chat/completions", json=body) as response:
                    response.raise_for_status()
                    answer = await response.json()
                received += bool(answer["choices"][0]["message"].get("content"))
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return received


def child_plain(args: argparse.Namespace) -> dict[str, Any]:
    records = math500_records(args.data_dir)[: args.questions]
    prompts = [math_prompt(r) for r in records for _ in range(args.repeats)]
    result: dict[str, Any] = {}
    with measured(result):
        result["samples"] = asyncio.run(plain_loop(args.base_url, prompts, args.concurrency))
    return result


def child_r1eval(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        run = argparse.Namespace(**{**vars(args), "samples": args.repeats,
                                    "run_dir": Path(tmp) / "run"})
        return math500_run(run, args.concurrency)


def child_lm_eval(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.update(HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    from lm_eval import simple_evaluate  # type: ignore[import-untyped]
    from lm_eval.tasks import TaskManager  # type: ignore[import-untyped]

    from r1eval.export.lm_eval import export_lm_eval, task_name
    from r1eval.task.data import load_task
    from r1eval.task.registry import resolve

    loaded = [load_task(resolve(["math500"])[0], args.data_dir, args.questions)]
    with tempfile.TemporaryDirectory() as out:
        export_lm_eval(Path(out), loaded, {"math500": args.repeats}, R1_SAMPLING)
        manager = TaskManager(include_path=out, include_defaults=False)
        result: dict[str, Any] = {}
        with measured(result):
            results = simple_evaluate(
                model="local-chat-completions",
                model_args={"model": MODEL, "base_url": f"{args.base_url}/chat/completions",
                            "num_concurrent": args.concurrency, "max_retries": 1},
                tasks=[task_name("math500")], task_manager=manager, apply_chat_template=True,
                limit=args.limit,
            )
    assert results is not None
    result["samples"] = results["n-samples"][task_name("math500")]["effective"]
    return result


CHILDREN: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "aiohttp": child_plain, "r1eval": child_r1eval, "lm-eval": child_lm_eval}


# --- the parent: one server, every contender, the ratios --------------------------------------


def lm_eval_installed() -> bool:
    return importlib.util.find_spec("lm_eval") is not None


def measure(name: str, server: Server, kind: str, args: argparse.Namespace,
            **overrides: Any) -> Measurement:
    """Run one contender in a fresh process against ``server``; count what the server saw."""
    settings = {"questions": args.questions, "repeats": args.repeats,
                "concurrency": args.concurrency, **overrides}
    options = [f"--{key.replace('_', '-')}={value}" for key, value in settings.items()
               if value is not None]
    server.reset()
    result = run_child(HERE, f"--child={kind}", f"--base-url={server.base_url}",
                       f"--data-dir={args.data_dir}", *options)
    seen = server.stats()
    measurement = Measurement(name, seen["requests"], seen["choices"], result["wall_s"],
                              result["cpu_s"], result["children_cpu_s"])
    print(f"{name}: {measurement.requests} requests, {measurement.samples} samples in "
          f"{measurement.wall_s:.1f} s ({measurement.requests_per_s:,.0f} requests/s); "
          f"server CPU {seen['cpu_s']:.1f} s", flush=True)
    return measurement


def lm_eval_sweep(server: Server, args: argparse.Namespace) -> tuple[int, Measurement]:
    """C's best ``num_concurrent``: one trial of each on the first ``--sweep-docs`` documents
    (tuning, not a measured round); the best and its trial."""
    sweep = {concurrency: measure(f"C sweep, num_concurrent={concurrency}", server, "lm-eval",
                                  args, concurrency=concurrency, limit=args.sweep_docs)
             for concurrency in args.lm_eval_concurrency}
    best = max(sweep, key=lambda c: sweep[c].requests_per_s)
    return best, sweep[best]


def marginal(whole: Measurement, part: Measurement, name: str) -> Measurement | None:
    """The requests of ``whole`` beyond those of ``part`` (the same client, fewer documents)
    over the time and CPU they added: the rate without the fixed start-up. None when ``part``
    was not shorter."""
    if part.requests >= whole.requests or part.wall_s >= whole.wall_s:
        return None
    return Measurement(name, whole.requests - part.requests, whole.samples - part.samples,
                       whole.wall_s - part.wall_s, whole.cpu_s - part.cpu_s,
                       whole.children_cpu_s - part.children_cpu_s)


def median_round(rounds: list[Measurement]) -> Measurement:
    """The round of median requests/s (the lower middle one of an even number)."""
    return sorted(rounds, key=lambda m: m.requests_per_s)[(len(rounds) - 1) // 2]


def rounds_in_turn(contenders: dict[str, Callable[[], Measurement]], rounds: int
                   ) -> dict[str, Measurement]:
    """Every contender once per round, in turn, ``rounds`` times (so a slow spell of a shared
    machine hits all of them); the median round of each."""
    runs: dict[str, list[Measurement]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            runs[name].append(run())
    return {name: median_round(measurements) for name, measurements in runs.items()}


def row(m: Measurement) -> list[Any]:
    return [m.name, m.requests, m.samples, f"{m.wall_s:.1f}", f"{m.requests_per_s:,.0f}",
            f"{m.samples_per_s:,.0f}", f"{m.cpu_per_1000:.2f}", f"{m.children_cpu_per_1000:.2f}"]


def integer_answers_only(args: argparse.Namespace, folder: Path) -> None:
    """Point the run at a copy of MATH-500 holding only its questions with a plain-integer
    answer (311 of 500: all of AIME's are), where grading is nearly free for everyone: what is
    left is each harness's own cost."""
    records = [r for r in math500_records(args.data_dir)
               if re.fullmatch(r"-?\d+", str(r["answer"]).strip())]
    (folder / "math500").mkdir(parents=True)
    (folder / "math500" / "test.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    args.data_dir, args.questions = folder, min(args.questions, len(records))


def parent(args: argparse.Namespace) -> None:
    with contextlib.ExitStack() as stack:
        if args.integer_answers:  # a temporary copy, deleted at the end
            integer_answers_only(args, Path(stack.enter_context(tempfile.TemporaryDirectory())))
        measure_all(args)


def measure_all(args: argparse.Namespace) -> None:
    with_lm_eval = lm_eval_installed() and not args.no_lm_eval
    with sim_server("--ignore-n") as one_choice, sim_server() as batching:
        best, trial = lm_eval_sweep(one_choice, args) if with_lm_eval else (None, None)
        contenders = {
            "a": lambda: measure("A: plain aiohttp loop", one_choice, "aiohttp", args),
            "b": lambda: measure("B: r1eval, one request per sample", one_choice, "r1eval",
                                 args),
            "b_n": lambda: measure(f"B (n): r1eval, n={args.repeats} per request", batching,
                                   "r1eval", args),
        }
        if best is not None:
            contenders["c"] = lambda: measure(f"C: lm-eval, num_concurrent={best}", one_choice,
                                              "lm-eval", args, concurrency=best)
        chosen = rounds_in_turn(contenders, args.rounds)
    a, b, b_n, c = chosen["a"], chosen["b"], chosen["b_n"], chosen.get("c")
    c_marginal = None if c is None or trial is None else marginal(
        c, trial, f"C, marginal: beyond its first {args.sweep_docs} documents")
    rows = [row(m) for m in (a, b, b_n, c, c_marginal) if m is not None]
    notes = [
        f"B/A requests/s: **{ratio(b.requests_per_s, a.requests_per_s)}** (target >= 0.8); "
        f"B/A CPU per request: {ratio(b.cpu_per_1000, a.cpu_per_1000)}",
        f"B (n)/A samples/s: {ratio(b_n.samples_per_s, a.samples_per_s)}",
    ]
    if c is None:
        why = "--no-lm-eval" if args.no_lm_eval else "lm-eval is not installed"
        notes.append(f"C skipped: {why} (pip install lm-eval)")
    else:
        against_marginal = "no marginal rate (the sweep was not shorter)" if (
            c_marginal is None) else (
            f"**{ratio(b.requests_per_s, c_marginal.requests_per_s)}** against C's marginal "
            f"rate, C/B CPU per request marginal "
            f"{ratio(c_marginal.cpu_per_1000, b.cpu_per_1000)}")
        notes.append(
            f"B/C requests/s: **{ratio(b.requests_per_s, c.requests_per_s)}** whole, "
            f"{against_marginal}; C/B CPU per request whole: "
            f"{ratio(c.cpu_per_1000, b.cpu_per_1000)}; C's best num_concurrent among "
            f"{args.lm_eval_concurrency}: {best}"
        )
    header = ["contender", "requests", "samples", "wall s", "requests/s", "samples/s",
              "CPU s / 1000 requests", "of which in child processes"]
    which = "MATH-500 questions" + (" with an integer answer" if args.integer_answers else "")
    title = (f"Throughput: {args.questions} {which} x {args.repeats}, "
             f"{args.concurrency} in flight (A, B); median of {args.rounds} rounds each")
    print_report(title, header, rows, notes)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=10, help="samples per question")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight (A, B)")
    parser.add_argument("--lm-eval-concurrency", type=lambda s: [int(x) for x in s.split(",")],
                        default=[16, 64, 256], help="num_concurrent values tried for C")
    parser.add_argument("--sweep-docs", type=int, default=1000,
                        help="documents per num_concurrent trial of C")
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of every contender, in turn; the median is kept")
    parser.add_argument("--no-lm-eval", action="store_true", help="skip C")
    parser.add_argument("--integer-answers", action="store_true",
                        help="only the questions whose answer is a plain integer (cheap grading)")
    add_common_arguments(parser, sorted(CHILDREN))
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.data_dir = data_dir(args.data_dir)
    if args.smoke:
        args.questions, args.repeats, args.rounds, args.sweep_docs = 20, 5, 1, 50
        args.lm_eval_concurrency = [4, 16]
    return args


def main() -> None:
    run_script(parse_args(), CHILDREN, parent)


if __name__ == "__main__":
    main()
