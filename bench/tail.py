"""The tail of a run: wall time against the ideal on a server of fixed capacity.

    python bench/tail.py                               # 200 MATH-500 questions x 4, 32 slots
    python bench/tail.py --questions 30 --samples 16   # AIME-sized: few questions, many samples
    python bench/tail.py --subsets 5                   # 5 draws of which questions are long
    python bench/tail.py --smoke                       # a tiny run for the test suite

The server (``sim_server.py --slots S``, its own process) generates at most S responses at
once and queues the rest; each response takes a lognormal time, stable per question, so an
earlier run predicts it, and generates tokens in proportion. The ideal wall time of a run is
its total work over S (every slot busy from the first request to the last response). r1eval
runs the same questions, ``--concurrency`` samples in flight (default S):

1. history: the plan's order, with other per-response noise (``--seed``), as an earlier run;
2. plan order: r1eval as it runs without history;
3. longest first: the same, its requests ordered longest first from the history's tokens per
   sample, as ``r1eval run`` orders them (``r1eval.run.schedule.LongestFirst``);
4. plan order, not streamed (``--stream off``): a request of n samples then holds its room
   until its slowest sample is done.

Runs 2 to 4 get exactly the same work. ``--subsets K`` repeats 1 to 3 on K draws of which
questions are long (the server's ``--question-seed``: as many other subsets of questions).
Printed for each: the server's span (first request to last response), the ideal, their ratio,
and the share of slot time used while work was queued (on the client, or in the server's
queue; 100%: no slot idle while work was waiting) and over the whole span.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from common import (
    Server,
    add_common_arguments,
    data_dir,
    math500_run,
    print_report,
    report_to_parent,
    run_child,
    sim_server,
)

HERE = "tail.py"


def run(name: str, server: Server, args: argparse.Namespace, run_dir: Path,
        history: Path | None = None, stream: str = "auto") -> dict[str, Any]:
    """One run in a fresh process; the server's figures for it."""
    options = [f"--history={history}"] if history is not None else []
    server.reset()
    client = run_child(HERE, "--child=run", f"--base-url={server.base_url}",
                       f"--data-dir={args.data_dir}", f"--run-dir={run_dir}",
                       f"--questions={args.questions}", f"--samples={args.samples}",
                       f"--concurrency={args.concurrency}", f"--stream={stream}", *options)
    stats = server.stats()
    span = stats["last_done"] - stats["first_arrival"]
    figures = {
        "name": name, "span_s": span, "ideal_s": stats["work_s"] / args.slots,
        "client_wall_s": client["wall_s"],
        "after_last_response_s": client["ended"] - client["last_response"],
        "busy_while_queued": stats["busy_while_queued"],
        "busy_overall": stats["busy_slot_s"] / (args.slots * span),
    }
    print(f"{name}: span {span:.2f} s, ideal {figures['ideal_s']:.2f} s", flush=True)
    return figures


def server_options(args: argparse.Namespace, seed: int, questions: int = 0) -> list[str]:
    return [f"--slots={args.slots}", f"--unit-s={args.unit_s}", f"--sigma={args.sigma}",
            f"--sigma-choice={args.sigma_choice}", f"--seed={seed}",
            f"--question-seed={questions}"]


def one_subset(args: argparse.Namespace, tmp: Path, questions: int, not_streamed: bool
               ) -> list[dict[str, Any]]:
    """History, plan order and longest first (and plan order not streamed) on one draw."""
    history = tmp / f"history-{questions}"
    with sim_server(*server_options(args, 1, questions)) as server:
        run("history (plan order)", server, args, history / "run")
    with sim_server(*server_options(args, 2, questions)) as server:
        rows = [run("plan order", server, args, tmp / f"plan-{questions}"),
                run("longest first", server, args, tmp / f"longest-{questions}",
                    history=history)]
        if not_streamed and args.samples > 1:
            rows.append(run("plan order, not streamed", server, args,
                            tmp / f"whole-{questions}", stream="off"))
    return rows


def parent(args: argparse.Namespace) -> None:
    with TemporaryDirectory() as tmp:
        subsets = [one_subset(args, Path(tmp), q, q == 0) for q in range(args.subsets)]
    rows = subsets[0]
    table = [[r["name"], f"{r['span_s']:.2f}", f"{r['ideal_s']:.2f}",
              f"{r['span_s'] / r['ideal_s']:.2f}", f"{100 * r['busy_while_queued']:.0f}%",
              f"{100 * r['busy_overall']:.0f}%", f"{r['client_wall_s']:.2f}",
              f"{r['after_last_response_s']:.2f}"] for r in rows]
    header = ["order", "server span s", "ideal s", "span / ideal", "slots busy while queued",
              "slots busy overall", "client wall s", "client s after last response"]
    title = (f"Tail: {args.questions} MATH-500 questions x {args.samples}, {args.slots} slots, "
             f"{args.concurrency} samples in flight, lognormal sigma {args.sigma}")
    plan, longest = rows[0], rows[1]
    notes = [f"longest first / plan order (span): "
             f"**{longest['span_s'] / plan['span_s']:.2f}**; longest first / ideal: "
             f"**{longest['span_s'] / longest['ideal_s']:.2f}** (target <= 1.10)"]
    if len(subsets) > 1:
        per = [(s[0]["span_s"] / s[0]["ideal_s"], s[1]["span_s"] / s[1]["ideal_s"])
               for s in subsets]
        listed = ", ".join(f"{p:.2f} -> {lf:.2f}" for p, lf in per)
        notes.append(f"span / ideal, plan order -> longest first, on {len(per)} draws of which "
                     f"questions are long: {listed}; longest first better on "
                     f"**{sum(lf < p for p, lf in per)} of {len(per)}**")
    print_report(title, header, table, notes)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--samples", type=int, default=4, help="samples per question (n)")
    parser.add_argument("--slots", type=int, default=32, help="the server's capacity S")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="samples in flight (default: S)")
    parser.add_argument("--subsets", type=int, default=1,
                        help="draws of which questions are long (the server's --question-seed)")
    parser.add_argument("--stream", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--unit-s", type=float, default=0.3, help="median seconds a response")
    parser.add_argument("--sigma", type=float, default=1.0, help="lognormal sigma per question")
    parser.add_argument("--sigma-choice", type=float, default=0.3,
                        help="lognormal sigma between the responses of one question")
    add_common_arguments(parser, ["run"])
    parser.add_argument("--history", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.data_dir = data_dir(args.data_dir)
    if args.smoke:
        args.questions, args.samples, args.slots, args.unit_s = 12, 2, 4, 0.02
    args.concurrency = args.concurrency or args.slots
    return args


def main() -> None:
    args = parse_args()
    if args.child:
        report_to_parent(math500_run(args, args.concurrency, args.history, stream=args.stream))
    else:
        parent(args)


if __name__ == "__main__":
    main()
