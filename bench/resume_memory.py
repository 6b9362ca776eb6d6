"""Memory and resume: peak RSS against the number of samples, and reopening a finished run.

    python bench/resume_memory.py            # runs of 1,000, 10,000 and 100,000 samples
    python bench/resume_memory.py --smoke    # 200 and 1,000 samples, for the test suite

Each run is r1eval end to end, in a fresh process, against the instant server
(``sim_server.py``): MMLU questions x 8 samples (one request of ``n=8`` each; MMLU's grader is
cheap, so the largest run takes about a minute), each response carrying ``--reasoning-chars`` of
reasoning. Printed per size: the wall time and the peak RSS of the r1eval process (its grading
workers are separate processes of fixed size). Then each finished run is reopened with the same
settings, in a fresh process: the time until it has confirmed that nothing is left to do and
rewritten its scores (the whole process, interpreter start included, and ``r1eval run`` from
its entry point: imports, plan, log state, scores), and the requests the server received
meanwhile (none expected). Also timed:
reading the largest run's per-question lengths (``r1eval.run.schedule.expected_tokens``), which
ordering the next run longest first costs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from common import (
    MODEL,
    Server,
    add_common_arguments,
    data_dir,
    measured,
    peak_rss_mb,
    print_report,
    report_to_parent,
    run_child,
    sim_server,
)

HERE = "resume_memory.py"
SAMPLES_PER_QUESTION = 8


def child_run(args: argparse.Namespace) -> dict[str, Any]:
    """``r1eval run`` of ``--samples`` MMLU samples (or its reopening), through the command
    line's own entry point: every import of the command is timed."""
    from r1eval.cli import main as r1eval

    argv = ["run", "--model", MODEL, "--base-url", args.base_url, "--tasks", "mmlu",
            "--limit", str(args.samples // SAMPLES_PER_QUESTION),
            "--samples", str(SAMPLES_PER_QUESTION), "--data-dir", str(args.data_dir),
            "--run-dir", str(args.run_dir), "--concurrency", "64",
            "--history", str(args.run_dir / "no-history")]
    result: dict[str, Any] = {}
    with measured(result), contextlib.redirect_stdout(sys.stderr):  # stdout: the result
        code = r1eval(argv)
    scores = json.loads((args.run_dir / "scores.json").read_text())
    return {**result, "exit": code, "samples": scores["tasks"]["mmlu"]["n_samples"],
            "peak_rss_mb": peak_rss_mb()}


def child_history(args: argparse.Namespace) -> dict[str, Any]:
    from r1eval.run.schedule import expected_tokens

    result: dict[str, Any] = {}
    with measured(result):
        result["questions"] = len(expected_tokens([args.run_dir], MODEL))
    return result


def run(server: Server, args: argparse.Namespace, samples: int, run_dir: Path,
        kind: str = "run") -> dict[str, Any]:
    server.reset()
    began = time.perf_counter()
    result = run_child(HERE, f"--child={kind}", f"--base-url={server.base_url}",
                       f"--data-dir={args.data_dir}", f"--run-dir={run_dir}",
                       f"--samples={samples}")
    return {**result, "command_s": time.perf_counter() - began,
            "requests": server.stats()["requests"]}


def parent(args: argparse.Namespace) -> None:
    rows, resumed = [], []
    options = [f"--reasoning-chars={args.reasoning_chars}"]
    with sim_server(*options) as server, TemporaryDirectory() as tmp:
        for samples in args.sizes:
            run_dir = Path(tmp) / str(samples)
            first = run(server, args, samples, run_dir)
            again = run(server, args, samples, run_dir)
            resumed.append(again)
            log_mb = (run_dir / "samples.jsonl").stat().st_size / 2**20
            rows.append([f"{first['samples']:,}", f"{log_mb:,.0f}", f"{first['wall_s']:.1f}",
                         f"{first['peak_rss_mb']:.0f}", f"{again['command_s']:.1f}",
                         f"{again['wall_s']:.1f}", f"{again['peak_rss_mb']:.0f}",
                         again["requests"]])
            print(rows[-1], flush=True)
        history = run(server, args, args.sizes[-1], run_dir, kind="history")
    notes = [
        f"Reopening the finished {resumed[-1]['samples']:,}-sample run: "
        f"**{resumed[-1]['command_s']:.1f} s** for the whole command (target < 5 s); "
        f"requests sent by the reopened runs: {sum(r['requests'] for r in resumed)}.",
        f"Reading that run's per-question lengths (what ordering the next run longest "
        f"first costs): {history['wall_s']:.1f} s ({history['questions']:,} questions).",
    ]
    header = ["samples", "log MB", "run s", "run peak RSS MB", "reopen: process s",
              "reopen: r1eval run s", "reopen peak RSS MB", "reopen requests"]
    title = (f"Memory and resume: MMLU x {SAMPLES_PER_QUESTION}, responses with "
             f"{args.reasoning_chars:,} characters of reasoning")
    print_report(title, header, rows, notes)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1_000, 10_000, 100_000], help="samples per run")
    parser.add_argument("--reasoning-chars", type=int, default=2_000,
                        help="characters of reasoning in each response")
    add_common_arguments(parser, ["run", "history"])
    parser.add_argument("--samples", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.data_dir = data_dir(args.data_dir)
    if args.smoke:
        args.sizes = [200, 1_000]
    return args


def main() -> None:
    args = parse_args()
    if args.child == "run":
        report_to_parent(child_run(args))
    elif args.child == "history":
        report_to_parent(child_history(args))
    else:
        parent(args)


if __name__ == "__main__":
    main()
