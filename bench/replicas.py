"""One run across several replicas: wall time against the ideal, and what a dead replica costs.

    python bench/replicas.py               # 1, 2 and 4 replicas, AIME shape (30 x 64): 6 minutes
    python bench/replicas.py --smoke       # a tiny run for the test suite

Each replica is a ``sim_server.py`` process of fixed capacity (``--slots`` sequences at once,
the rest queued) whose sequences take lognormal, heavy-tailed times capped at ``--cap`` units
(as in ``slots.py``). r1eval runs once per scenario, in a fresh process, with every replica
as a ``--base-url URL@S``. Scenarios, for 1, 2 and 4 replicas: all alike; one of them 3x
slower (its unit is 3x longer); one killed (SIGKILL) once half the samples were generated.

Figures, from the servers' own clocks and counts:

- span: first request to last response, over all replicas;
- ideal: the work the replicas did, in the time of a normal-speed replica (a slow replica's
  work counts 1/3), over the slots they offer (a slow replica's count 1/3). When a replica is
  killed: the span until the kill as it was, then the survivors' work after it over the
  survivors' slots. Work the killed replica had in flight is lost and done again by the
  others; the ideal counts that work, so span / ideal shows how well the queue was spread, and
  "sequences redone" what the kill cost (at most its slots: its requests in flight);
- samples lost: samples missing from the run, or failed (the target is 0).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import (
    BENCH,
    Server,
    add_common_arguments,
    add_duration_arguments,
    data_dir,
    math500_run,
    print_report,
    run_script,
    sim_server,
)

HERE = "replicas.py"
SLOWER = 3.0
#: r1eval's probe of ``n`` at the start: one request for two one-token choices, per replica.
PROBE_CHOICES = 2


def child_r1eval(args: argparse.Namespace) -> dict[str, Any]:
    """One r1eval run over the replicas ``--urls`` names."""
    from r1eval.store.folder import LOG, read_log

    with tempfile.TemporaryDirectory() as tmp:
        run = argparse.Namespace(**{**vars(args), "base_url": json.loads(args.urls),
                                    "run_dir": Path(tmp) / "run"})
        result = math500_run(run, None, grader_workers=1, max_attempts=3)
        records = list(read_log(run.run_dir / LOG))
    result["failed"] = sum(r["type"] == "error" for r in records)
    result["received"] = len({r["key"] for r in records if r["type"] == "completion"})
    return result


CHILDREN = {"r1eval": child_r1eval}


def scenario(replicas: int, kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """Serve ``replicas`` sim servers (the last one slow or killed, per ``kind``), run r1eval
    over them, and measure."""
    slowness = [SLOWER if kind == "slow" and i == replicas - 1 else 1.0
                for i in range(replicas)]
    with _servers(slowness, args) as servers:
        urls = [f"{s.base_url}@{args.slots}" for s in servers]
        command = [sys.executable, str(BENCH / HERE), "--child=r1eval",
                   f"--urls={json.dumps(urls)}", f"--data-dir={args.data_dir}",
                   f"--questions={args.questions}", f"--samples={args.samples}"]
        client = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        at_kill: list[dict[str, Any]] = []
        if kind == "killed":
            threading.Thread(target=_kill_halfway, args=(servers, args, client, at_kill),
                             daemon=True).start()
        out, err = client.communicate(timeout=1800)
        if client.returncode != 0:
            raise RuntimeError(f"r1eval failed ({client.returncode}):\n{err[-3000:]}")
        result = json.loads(out.strip().splitlines()[-1])
        alive = servers[:-1] if kind == "killed" else servers
        ends = [s.stats() for s in alive]
    needed = args.questions * args.samples
    kill = at_kill[0] if at_kill else None
    return {"replicas": replicas, "kind": kind, **_timing(ends, slowness, args.slots, kill),
            "redone": _generated(ends, kill) - needed,
            "lost": needed - result["received"] + result["failed"]}


@contextlib.contextmanager
def _servers(slowness: list[float], args: argparse.Namespace) -> Iterator[list[Server]]:
    """The sim servers, one per replica (``slowness``: its unit's factor), started and
    stopped together."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(sim_server(
            f"--slots={args.slots}", f"--unit-s={args.unit_s * factor}",
            f"--sigma={args.sigma}", f"--sigma-choice={args.sigma_choice}",
            f"--cap={args.cap}", f"--seed={i}")) for i, factor in enumerate(slowness)]


def _kill_halfway(servers: list[Server], args: argparse.Namespace,
                  client: subprocess.Popen[str], at_kill: list[dict[str, Any]]) -> None:
    """SIGKILL the last replica once half the samples were generated, noting every
    replica's counts at that moment."""
    half = args.questions * args.samples / 2
    while client.poll() is None:
        stats = [s.stats() for s in servers]
        if sum(s["choices"] for s in stats) >= half:
            servers[-1].process.send_signal(signal.SIGKILL)
            at_kill.append({"time": time.monotonic(), "stats": stats})
            return
        time.sleep(0.02)


def _timing(ends: list[dict[str, Any]], slowness: list[float], slots: int,
            kill: dict[str, Any] | None) -> dict[str, float]:
    """The span, and the ideal as the module docstring defines it (servers' monotonic
    clocks: one machine, one clock)."""
    starts = [s["first_arrival"] for s in (kill["stats"] if kill else ends) if s["first_arrival"]]
    start, end = min(starts), max(s["last_done"] for s in ends)
    if kill is None:
        work = sum(s["busy_slot_s"] / f for s, f in zip(ends, slowness, strict=False))
        ideal = work / sum(slots / f for f in slowness)
    else:
        before = kill["stats"][:-1]
        after = sum(e["busy_slot_s"] - b["busy_slot_s"] for e, b in zip(ends, before,
                                                                         strict=True))
        ideal = (kill["time"] - start) + after / (slots * len(ends))
    return {"span_s": end - start, "ideal_s": ideal}


def _generated(ends: list[dict[str, Any]], kill: dict[str, Any] | None) -> int:
    """Sequences the replicas began for the run, the killed one's until its death; not
    r1eval's probe of ``n`` (two one-token choices a replica)."""
    began = [*ends, *(kill["stats"][-1:] if kill else [])]
    return sum(s["choices"] - PROBE_CHOICES for s in began)


def parent(args: argparse.Namespace) -> None:
    rows, notes = [], []
    plan = [(n, kind) for n in args.replicas
            for kind in (["alike"] if n == 1 else ["alike", "slow", "killed"])]
    for replicas, kind in plan:
        found = scenario(replicas, kind, args)
        print(f"{replicas} replicas, {kind}: {found}", flush=True)
        ratio = found["span_s"] / found["ideal_s"]
        label = {"alike": "all alike", "slow": "one 3x slower",
                 "killed": "one killed halfway"}[kind]
        rows.append([replicas, label, f"{found['span_s']:.2f}", f"{found['ideal_s']:.2f}",
                     f"{ratio:.2f}", found["redone"], found["lost"]])
        notes.append(f"{replicas} replicas, {label}: span / ideal **{ratio:.2f}** "
                     f"(target <= 1.10), samples lost **{found['lost']}**")
    title = (f"Replicas: {args.slots} slots each, {args.questions} x {args.samples} samples, "
             f"lognormal sigma {args.sigma} (per sample {args.sigma_choice}) capped at "
             f"{args.cap:g} units of {args.unit_s} s")
    print_report(title, ["replicas", "scenario", "span s", "ideal s", "span / ideal",
                         "sequences redone", "samples lost"], rows, notes)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--slots", type=int, default=8, help="each replica's capacity")
    add_duration_arguments(parser, 0.25,
                           "seconds of the median sequence on a normal-speed replica")
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--urls", help=argparse.SUPPRESS)
    add_common_arguments(parser, list(CHILDREN))
    args = parser.parse_args(argv)
    args.data_dir = data_dir(args.data_dir)
    if args.smoke:
        args.replicas, args.questions, args.samples, args.slots = [1, 2], 4, 8, 4
    return args


def main() -> None:
    run_script(parse_args(), CHILDREN, parent)


if __name__ == "__main__":
    main()
