"""The send order alone: span / ideal of r1eval's order on a GPU server's slots, in virtual time.

    python bench/send_order.py             # AIME shape (30 x 64 on 256 slots), 30 seeds
    python bench/send_order.py --smoke     # a tiny run for the test suite

``slots.py`` measures whole clients against a simulated server in real time, on a shared
machine: what it finds mixes the order in which samples are sent with the delays of two Python
processes (the client's round trip to send the next sample, the server's own event loop). This
script takes the machine out: the same generation times as ``sim_server.py`` draws (lognormal,
per question and per sample, capped), a server of S slots that starts each sample the moment a
slot frees, and a client that answers at once (or after ``--delay-ms`` per sample), each
simulated event by event. The orders compared:

- plan order: the questions in the dataset's order, each sent whole as room frees (r1eval
  before issue 21's send queue; the order of a client that knows nothing);
- r1eval: ``r1eval.run.schedule.SendQueue`` itself, without history (each question's share of
  the slots first, then the question whose samples have taken longest so far), and with the
  history of an earlier run (other per-sample draws of the same questions: longest first);
- clairvoyant: every sample's length known in advance, longest first (``longest_first_span``).

Beside them the lower bound no order beats: the ideal (total work / S) or the longest sample if
longer. Over ``--seeds`` draws of which questions are long: the median and the range.
"""

from __future__ import annotations

import argparse
import heapq
import statistics
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from r1eval.run.schedule import SendQueue
from r1eval.types import Request, SamplingParams

from sim_server import Durations, longest_first_span

Lengths = list[list[float]]  # seconds of each sample of each question


def draws(args: argparse.Namespace, seed: int, question_seed: int) -> Lengths:
    durations = Durations(args.unit_s, args.sigma, args.sigma_choice, seed, args.cap,
                          question_seed)
    return [[durations.seconds(f"question {q}", k) for k in range(args.samples)]
            for q in range(args.questions)]


def groups(lengths: Lengths) -> list[tuple[Request, list[Any]]]:
    """One request of n per question, as ``plan.group_requests`` makes them (the queue reads
    only each item's task and question id)."""
    return [(Request(({"role": "user", "content": str(q)},), len(row), SamplingParams()),
             [SimpleNamespace(task="t", sample=SimpleNamespace(id=str(q)))] * len(row))
            for q, row in enumerate(lengths)]


def span(lengths: Lengths, slots: int, expected: dict[tuple[str, str], float] | None,
         one_each: bool, delay_s: float) -> float:
    """When the last sample ends: ``SendQueue`` (``expected`` None: the plan's order, each
    question whole) on ``slots`` slots, a sample starting ``delay_s`` after its room freed."""
    now = [0.0]
    clock: Callable[[], float] = lambda: now[0]  # noqa: E731
    queue = SendQueue(groups(lengths), expected or {}, slots, clock)
    if expected is None:  # each question whole, in order: the queue as if every length known
        queue = SendQueue(groups(lengths), {("t", str(q)): 1.0 for q in range(len(lengths))},
                          slots, clock)
    started = [0] * len(lengths)
    running: list[tuple[float, int, Any]] = []
    free, order = slots, 0
    while True:
        while free and queue:
            chunk = queue.take(free, 1 if one_each else None)
            free -= chunk.request.n
            question = int(chunk.items[0].sample.id)
            for _ in range(chunk.request.n):
                order += 1
                end = now[0] + delay_s + lengths[question][started[question]]
                heapq.heappush(running, (end, order, chunk))
                started[question] += 1
        if not running:
            return now[0]
        now[0], _, chunk = heapq.heappop(running)
        free += 1
        queue.finished(chunk)


def one_seed(args: argparse.Namespace, seed: int) -> dict[str, float]:
    lengths = draws(args, seed, seed)
    earlier = draws(args, seed + 1000, seed)  # an earlier run: other draws, the same questions
    history = {("t", str(q)): statistics.fmean(row) for q, row in enumerate(earlier)}
    ideal = sum(map(sum, lengths)) / args.slots
    delay = args.delay_ms / 1000
    figures = {"lower bound": max(ideal, max(map(max, lengths)))}
    for n_ignored in (False, True):
        suffix = ", n ignored" if n_ignored else ""
        figures[f"plan order{suffix}"] = span(lengths, args.slots, None, n_ignored, delay)
        figures[f"r1eval{suffix}"] = span(lengths, args.slots, {}, n_ignored, delay)
        figures[f"r1eval, history{suffix}"] = span(lengths, args.slots, history, n_ignored,
                                                   delay)
    figures["clairvoyant"] = longest_first_span([s for row in lengths for s in row], args.slots)
    return {name: value / ideal for name, value in figures.items()}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    runs = [one_seed(args, seed) for seed in range(1, args.seeds + 1)]
    print(f"### Send order in virtual time: {args.questions} x {args.samples} on {args.slots} "
          f"slots, lognormal sigma {args.sigma} (per sample {args.sigma_choice}) capped at "
          f"{args.cap:g} units, client delay {args.delay_ms:g} ms a sample; span / ideal, "
          f"median (range) over {args.seeds} seeds\n")
    print("| order | span / ideal |\n|---|---|")
    for name in runs[0]:
        values = [run[name] for run in runs]
        print(f"| {name} | {statistics.median(values):.3f} "
              f"({min(values):.3f}-{max(values):.3f}) |")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--slots", type=int, default=256)
    parser.add_argument("--unit-s", type=float, default=0.5, help="the median sample (s)")
    parser.add_argument("--sigma", type=float, default=0.5, help="lognormal sigma per question")
    parser.add_argument("--sigma-choice", type=float, default=0.3,
                        help="lognormal sigma between the samples of one question")
    parser.add_argument("--cap", type=float, default=5.0, help="longest sample, in units")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--delay-ms", type=float, default=0.0,
                        help="from a slot freeing to its next sample starting")
    parser.add_argument("--data-dir", help="unused: every bench script takes it")
    parser.add_argument("--smoke", action="store_true", help="a tiny run for the test suite")
    args = parser.parse_args(argv)
    if args.smoke:
        args.questions, args.samples, args.slots, args.seeds = 4, 8, 16, 2
    return args


if __name__ == "__main__":
    main()
