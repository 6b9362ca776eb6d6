"""Reopening a finished run, this checkout against another (a release, main), side by side.

    python bench/reopen_ab.py --other /path/to/other/checkout            # 100,000 samples
    python bench/reopen_ab.py --other /path/to/other/checkout --smoke    # 1,000

One run folder is made with this checkout (``resume_memory.py``'s MMLU x 8 run against the
instant server), then reopened in turns by each checkout (``r1eval run`` of the same command, in
a fresh process with that checkout's Python: ``OTHER/.venv/bin/python`` unless ``--other-python``),
``--rounds`` times each, interleaved so that both share the machine's load. Printed: the median
wall time and peak RSS of each, and their ratios (this / other). Run folders are read by every
later release, so the other checkout reads the folder this one wrote: a copy of its own, reopened
once before the timed rounds (untimed), so that each reopens from a snapshot of its own format
(two formats in one folder would make each process rewrite the other's snapshot).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from common import data_dir, print_report, sim_server

HERE = Path(__file__).resolve().parent


def reopen(python: Path, checkout: Path, base_url: str, data: Path, run_dir: Path,
           samples: int) -> dict[str, Any]:
    """One ``r1eval run`` of ``resume_memory.py``'s run, by ``checkout``'s code."""
    command = [str(python), str(checkout / "bench" / "resume_memory.py"), "--child=run",
               f"--base-url={base_url}", f"--data-dir={data}", f"--run-dir={run_dir}",
               f"--samples={samples}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900,
                          cwd=checkout)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def ab_arguments(doc: str, rounds: int) -> argparse.Namespace:
    """The flags of a side-by-side comparison with another checkout (``--smoke``: 1,000
    samples, one round)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--other", type=Path, required=True, help="the other checkout")
    parser.add_argument("--other-python", type=Path, help="its Python (default .venv/bin/python)")
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="1,000 samples, one round")
    args = parser.parse_args()
    if args.smoke:
        args.samples, args.rounds = 1_000, 1
    return args


def checkouts(args: argparse.Namespace) -> dict[str, tuple[Path, Path]]:
    """This checkout and the other, each with its Python."""
    return {"this": (HERE.parent, Path(sys.executable)),
            "other": (args.other.resolve(),
                      args.other_python or args.other / ".venv" / "bin" / "python")}


def main() -> None:
    args = ab_arguments(__doc__, rounds=3)
    data = data_dir(args.data_dir)
    this, other = checkouts(args).values()
    times: dict[str, list[float]] = {"this": [], "other": []}
    rss: dict[str, list[float]] = {"this": [], "other": []}
    with sim_server() as server, TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        first = reopen(this[1], this[0], server.base_url, data, run_dir, args.samples)
        print(f"run made: {first['samples']:,} samples", file=sys.stderr)
        folders = {"this": run_dir, "other": Path(tmp) / "run-other"}
        shutil.copytree(run_dir, folders["other"])
        contenders = (("other", other), ("this", this))
        for name, (checkout, python) in contenders:  # each with a snapshot of its own
            reopen(python, checkout, server.base_url, data, folders[name], args.samples)
        for _ in range(args.rounds):
            for name, (checkout, python) in contenders:
                result = reopen(python, checkout, server.base_url, data, folders[name],
                                args.samples)
                times[name].append(result["wall_s"])
                rss[name].append(result["peak_rss_mb"])
    median = {name: statistics.median(values) for name, values in times.items()}
    peak = {name: statistics.median(values) for name, values in rss.items()}
    rows = [[name, f"{median[name]:.2f}", " ".join(f"{t:.2f}" for t in times[name]),
             f"{peak[name]:.0f}"] for name in ("other", "this")]
    notes = [f"this / other: wall time {median['this'] / median['other']:.2f}, peak RSS "
             f"{peak['this'] / peak['other']:.2f} (medians of {args.rounds} interleaved rounds; "
             f"other = {other[0]})"]
    print_report(f"Reopening a finished {args.samples:,}-sample run: this checkout vs another",
                 ["checkout", "median s", "rounds s", "peak RSS MB"], rows, notes)


if __name__ == "__main__":
    main()
