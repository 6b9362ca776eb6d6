"""Reading a finished run's log state and scoring it, this checkout against another, side by side.

    python bench/scoring_ab.py --other /path/to/other/checkout            # 100,000 samples
    python bench/scoring_ab.py --other /path/to/other/checkout --smoke    # 1,000

The run folder of ``reopen_ab.py`` (MMLU x 8 against the instant server) is made with this
checkout and copied for the other; each checkout opens its copy once (untimed: a snapshot of its
own format), then, in a fresh process with that checkout's Python, ``--rounds`` times each,
interleaved: the log state loaded (``load_state``, from the snapshot), the work items rebuilt
from it (untimed), every task tallied (``scoring.tally``) and scored (``score_task``). Printed:
the median seconds of each part, the peak RSS, their ratios (this / other), and whether both
checkouts' scores are the same, value for value.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from reopen_ab import ab_arguments, checkouts, reopen

from common import data_dir, print_report, sim_server

CHILD = """
import hashlib, json, resource, sys, time
from pathlib import Path
from r1eval.run.regrade import items_from_log
from r1eval.scoring.scores import score_task, tally
from r1eval.store.folder import RunFolder
from r1eval.store.snapshot import load_state
run = Path(sys.argv[1])
if sys.argv[2] == "open":
    with RunFolder(run) as folder:
        folder.state()
    print("{}")
    sys.exit()
began = time.perf_counter()
state = load_state(run)
loaded = time.perf_counter()
items = items_from_log(state)
tallied_from = time.perf_counter()
tallies = tally(items, state)
tallied = time.perf_counter()
scores = {name: score_task(t) for name, t in sorted(tallies.items())}
scored = time.perf_counter()
print(json.dumps({"load_s": loaded - began, "tally_s": tallied - tallied_from,
                  "score_s": scored - tallied, "samples": len(items),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "scores": hashlib.sha256(json.dumps(scores).encode()).hexdigest()}))
"""

PARTS = {"load_s": "load_state", "tally_s": "tally", "score_s": "score_task",
         "peak_rss_mb": "peak RSS"}


def child(python: Path, checkout: Path, run_dir: Path, mode: str) -> dict[str, Any]:
    """One process of ``checkout``'s code (its own folder first on the path)."""
    done = subprocess.run([str(python), "-c", CHILD, str(run_dir), mode], capture_output=True,
                          text=True, timeout=900, cwd=checkout)
    if done.returncode != 0:
        raise RuntimeError(f"{checkout}: {done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    args = ab_arguments(__doc__, rounds=5)
    contenders = checkouts(args)
    results: dict[str, list[dict[str, Any]]] = {"this": [], "other": []}
    with sim_server() as server, TemporaryDirectory() as tmp:
        folders = {name: Path(tmp) / name for name in contenders}
        reopen(contenders["this"][1], contenders["this"][0], server.base_url,
               data_dir(args.data_dir), folders["this"], args.samples)
        shutil.copytree(folders["this"], folders["other"])
        for name, (checkout, python) in contenders.items():
            child(python, checkout, folders[name], "open")
        for _ in range(args.rounds):
            for name in ("other", "this"):
                checkout, python = contenders[name]
                results[name].append(child(python, checkout, folders[name], "time"))
    median = {name: {part: statistics.median(r[part] for r in rounds) for part in PARTS}
              for name, rounds in results.items()}
    rows = [[name, f"{median[name]['load_s']:.3f}", f"{median[name]['tally_s']:.3f}",
             f"{median[name]['score_s']:.3f}", f"{median[name]['peak_rss_mb']:.0f}"]
            for name in ("other", "this")]
    ratios = ", ".join(
        f"{label} {median['this'][part] / median['other'][part]:.2f}"
        for part, label in PARTS.items())
    same = len({r["scores"] for rounds in results.values() for r in rounds}) == 1
    print_report(
        f"Loading and scoring the log state of a {results['this'][0]['samples']:,}-sample run: "
        "this checkout vs another",
        ["checkout", "load_state s", "tally s", "score_task s", "peak RSS MB"], rows,
        [f"this / other: {ratios} (medians of {args.rounds} interleaved rounds; other = "
         f"{contenders['other'][0]})",
         f"scores the same in both: {'yes' if same else 'NO'}"])


if __name__ == "__main__":
    main()
