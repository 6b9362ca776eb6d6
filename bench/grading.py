"""Grading: samples graded per second, and what grading adds to a run's wall time.

    python bench/grading.py            # 1,000 realistic MATH-500 responses; a 500-sample run
    python bench/grading.py --smoke    # a tiny run for the test suite

1. Throughput: realistic R1-style responses to MATH-500 (``common.realistic_response``: a long
   reasoning trace, then the reference solution; right, wrong, or unboxed) graded as a run
   grades them (plain integers and unanswered responses at once, the rest in a ``GraderPool``
   worker process awaited on the event loop), in a shuffled order, with 1 and 2 worker
   processes, each pool in a fresh process and started before the clock starts.
2. Overlap: r1eval end to end against a server of fixed capacity (``sim_server.py --slots
   --realistic``) that returns those responses over time, as a GPU server would. Grading runs
   while responses arrive; what it adds is the time from the last response's arrival to the
   last grade, as a share of the run's wall time (and likewise to the end of the run, scores
   written).
"""

from __future__ import annotations

import argparse
import asyncio
import random
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from common import (
    add_common_arguments,
    cpu_seconds,
    data_dir,
    math500_records,
    math500_run,
    measured,
    print_report,
    realistic_response,
    report_to_parent,
    run_child,
    sim_server,
)

HERE = "grading.py"


def child_pool(args: argparse.Namespace) -> dict[str, Any]:
    """Grade the realistic responses with ``--workers`` processes."""
    from r1eval.grading.pool import GraderPool

    records = math500_records(args.data_dir)[: args.questions]
    jobs = []
    for record in records:
        for index in range(args.samples):
            response = realistic_response(record, index)
            jobs.append((response["content"], response["reasoning_content"], record["answer"]))
    # in a run, the responses to ~32 questions arrive interleaved: no two of one question in a
    # row, so math-verify's small parse caches rarely help
    random.Random(0).shuffle(jobs)
    started = cpu_seconds()
    with GraderPool(workers=args.workers) as pool:  # the CPU of starting and stopping a pool
        asyncio.run(_grade_all(pool, jobs[:1]))
    overhead, started = cpu_seconds() - started, cpu_seconds()
    result: dict[str, Any] = {"samples": len(jobs)}
    with GraderPool(workers=args.workers) as pool:
        asyncio.run(_grade_all(pool, jobs[:1]))  # the workers are up
        with measured(result):
            grades = asyncio.run(_grade_all(pool, jobs))
    # the workers' CPU counts once they are reaped, when the pool closes: take the same pool
    # without the grading away
    result["cpu_s"] = cpu_seconds() - started - overhead
    result["correct"] = sum(grade.correct for grade, _ in grades)
    result["inline"] = sum(inline for _, inline in grades)
    return result


async def _grade_all(pool: Any, jobs: list[tuple[str, str, str]]) -> list[Any]:
    """Grade as a run does (``Runner._grade``): the final answer found on the event loop, then
    graded at once when no worker is needed (``grading.inline``), else in a worker."""
    from r1eval.grading.final_answer import final_answer
    from r1eval.grading.inline import inline_grade
    from r1eval.grading.math_answers import grade_math
    from r1eval.types import Completion, Grade

    async def grade(content: str, reasoning: str, gold: str) -> tuple[Grade, bool]:
        answer = final_answer(Completion(content, reasoning, "stop"))
        if isinstance(answer, Grade):
            return answer, True
        if (quick := inline_grade(grade_math, answer, gold)) is not None:
            return quick, True
        return await pool.grade_async(grade_math, answer, gold), False

    return await asyncio.gather(*(grade(*job) for job in jobs))


def throughput(args: argparse.Namespace) -> list[list[Any]]:
    rows, rates = [], {}
    for workers in (1, 2):
        result = run_child(HERE, "--child=pool", f"--workers={workers}",
                           f"--data-dir={args.data_dir}", f"--questions={args.questions}",
                           f"--samples={args.pool_samples}")
        rates[workers] = result["samples"] / result["wall_s"]
        rows.append([f"{workers} worker{'s' * (workers > 1)}", result["samples"],
                     f"{result['wall_s']:.1f}", f"{rates[workers]:.0f}",
                     f"{1000 * result['cpu_s'] / result['samples']:.1f}",
                     f"{result['inline'] / result['samples']:.2f}",
                     f"{result['correct'] / result['samples']:.2f}"])
        print(f"{workers} worker(s): {rates[workers]:.0f} samples/s", flush=True)
    rows.append(["2 / 1 workers", "", "", f"{rates[2] / rates[1]:.2f}", "", "", ""])
    return rows


def overlap(args: argparse.Namespace) -> dict[str, float]:
    realistic = args.data_dir / "math500" / "test.jsonl"
    options = [f"--slots={args.slots}", f"--unit-s={args.unit_s}", f"--realistic={realistic}"]
    with sim_server(*options) as server, TemporaryDirectory() as tmp:
        result = run_child(HERE, "--child=run", f"--base-url={server.base_url}",
                           f"--data-dir={args.data_dir}", f"--run-dir={Path(tmp) / 'run'}",
                           f"--questions={args.run_questions}", "--samples=1",
                           f"--slots={args.slots}")
    wall = result["ended"] - result["began"]
    return {
        "wall_s": wall,
        "grading_after_s": result["last_grade"] - result["last_response"],
        "run_after_s": result["ended"] - result["last_response"],
    }


def parent(args: argparse.Namespace) -> None:
    rows = throughput(args)
    run = overlap(args)
    share = run["grading_after_s"] / run["wall_s"]
    notes = [
        f"A run of {args.run_questions} realistic responses arriving over {run['wall_s']:.1f} s "
        f"({args.slots} slots): grading ended {run['grading_after_s']:.3f} s after the last "
        f"response arrived: **{100 * share:.1f}%** of the run's wall time (target < 5%); "
        f"the run ended (scores written) {run['run_after_s']:.2f} s after it "
        f"({100 * run['run_after_s'] / run['wall_s']:.1f}%).",
    ]
    header = ["grading", "samples", "wall s", "samples/s", "CPU ms / sample",
              "share without a worker", "share right"]
    title = f"Grading: realistic MATH-500 responses ({args.pool_samples} per question)"
    print_report(title, header, rows, notes)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=500)
    parser.add_argument("--pool-samples", type=int, default=2, help="responses per question")
    parser.add_argument("--run-questions", type=int, default=500, help="questions in the run")
    parser.add_argument("--slots", type=int, default=32, help="the server's capacity")
    parser.add_argument("--unit-s", type=float, default=0.5, help="median seconds a response")
    add_common_arguments(parser, ["pool", "run"])
    parser.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--samples", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.data_dir = data_dir(args.data_dir)
    if args.smoke:
        args.questions, args.pool_samples, args.run_questions = 10, 1, 12
        args.slots, args.unit_s = 4, 0.02
    return args


def main() -> None:
    args = parse_args()
    if args.child == "pool":
        report_to_parent(child_pool(args))
    elif args.child == "run":
        report_to_parent(math500_run(args, concurrency=args.slots))
    else:
        parent(args)


if __name__ == "__main__":
    main()
