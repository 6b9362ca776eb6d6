"""A GPU server's slots: wall time against the ideal, waste and failures, r1eval and lm-eval.

    python bench/slots.py                  # AIME shape (30 x 64) and MMLU shape, 3 seeds
    python bench/slots.py --smoke          # a tiny run for the test suite

The server (``sim_server.py``, its own process) generates at most S sequences at once (its
slots, as vLLM's ``max_num_seqs``) and queues the rest first come first served; each sequence
takes a lognormal time (heavy tailed, per question and per sample) capped at ``--cap`` units,
as a token limit caps a trace. Time is scaled: one unit (``--unit-s``, the median sequence)
stands for 300 s of generation, so r1eval's default ``--timeout`` of 1,800 s becomes 6 units;
lm-eval gets the same request timeout. The run is then longer than the timeout and the timeout
longer than any sequence, as at full scale. ``--idle-timeout`` is not scaled that way: a real
server sends a token every few tens of milliseconds, so its default 300 s is thousands of
token intervals, while the simulated server sends nothing between a choice's start and its end
(empty deltas would cost its one process CPU and slow its own clock, which a GPU server's
streaming does not); it is set to the scaled request timeout. ``--stream off`` runs r1eval
without streaming.

Shapes (MATH-500 prompts): the R1 protocol's AIME (30 questions x 64 samples: r1eval sends
repeats as ``n``) with ``n`` honoured and ignored (llama.cpp, Ollama), and the GPQA/MMLU shape
(one sample a request). Which questions are long changes with each seed (the server's
``--question-seed``). r1eval runs with ``--concurrency S`` (as it finds it by itself on a
server that reports it, SGLang), lm-eval with ``num_concurrent`` = S (one sample a request, its
K repeats exported as documents). "r1eval, longest first" is r1eval as it runs a second
time: ordered by an earlier run of the same questions (``--history``). Per run: the server's
span (first request to last response) / the ideal (total work / S); beside it, the lower bound
no schedule beats (the ideal, or the longest sequence if longer) and the span of the schedule
a client knowing every sequence's length in advance would send (longest first); the share of
slot time left idle while work was waiting (at r1eval or in the server's queue: a freed slot
waiting for the client's next request), and where it went: how long after the first request
every slot was first busy (the start of the run) and how long, on average, a slot freed during
the run waited for its next sequence; sequences generated / samples needed, and samples that
failed; over ``--seeds`` runs of each, the median and the range.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from common import (
    MODEL,
    add_common_arguments,
    add_duration_arguments,
    data_dir,
    math500_run,
    print_report,
    run_child,
    run_script,
    sim_server,
)

HERE = "slots.py"
#: Seconds of real generation one unit (the median sequence) stands for.
UNIT_REAL_S = 300.0


def scaled(seconds: float, args: argparse.Namespace) -> float:
    return seconds / UNIT_REAL_S * args.unit_s


def child_r1eval(args: argparse.Namespace) -> dict[str, Any]:
    """One r1eval run; with ``--history``, into a run folder there (and ordered from the runs
    already there, longest first)."""
    from r1eval.store.folder import LOG, read_log

    with tempfile.TemporaryDirectory() as tmp:
        parent = args.history or Path(tmp)
        run = argparse.Namespace(**{**vars(args),
                                    "run_dir": parent / f"run-{len(list(parent.iterdir()))}"})
        result = math500_run(run, args.slots, args.history, timeout=scaled(1800, args),
                             idle_timeout=scaled(1800, args), grader_workers=1,
                             stream=args.stream)
        result["failed"] = sum(r["type"] == "error" for r in read_log(run.run_dir / LOG))
    return result


def child_lm_eval(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.update(HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    from lm_eval import simple_evaluate  # type: ignore[import-untyped]
    from lm_eval.tasks import TaskManager  # type: ignore[import-untyped]

    from r1eval.export.lm_eval import export_lm_eval, task_name
    from r1eval.run.config import R1_SAMPLING
    from r1eval.task.data import load_task
    from r1eval.task.registry import resolve

    loaded = [load_task(resolve(["math500"])[0], args.data_dir, args.questions)]
    with tempfile.TemporaryDirectory() as out:
        export_lm_eval(Path(out), loaded, {"math500": args.samples}, R1_SAMPLING)
        results = simple_evaluate(
            model="local-chat-completions",
            model_args={"model": MODEL, "base_url": f"{args.base_url}/chat/completions",
                        "num_concurrent": args.slots, "timeout": scaled(1800, args)},
            tasks=[task_name("math500")], task_manager=TaskManager(include_path=out,
                                                                  include_defaults=False),
            apply_chat_template=True,
        )
    assert results is not None
    answers = [s["resps"][0][0] for s in results["samples"][task_name("math500")]]
    return {"failed": sum(not answer for answer in answers)}


CHILDREN = {"r1eval": child_r1eval, "lm-eval": child_lm_eval}


def one_run(contender: str, shape: dict[str, Any], seed: int, args: argparse.Namespace
            ) -> dict[str, float]:
    """One measured run on a fresh server; which questions are long changes with ``seed``.
    "r1eval, longest first" runs twice: an earlier run (other per-sample draws) gives the
    history its measured run is ordered by."""
    with tempfile.TemporaryDirectory() as history:
        if contender == "r1eval, longest first":
            serve(shape, seed, seed + 1000, args, "r1eval", history)
        return serve(shape, seed, seed, args, contender.split(",")[0],
                     history if contender != "r1eval" else None)


def serve(shape: dict[str, Any], questions: int, seed: int, args: argparse.Namespace,
          contender: str, history: str | None) -> dict[str, float]:
    slots = shape.get("slots", args.slots)
    options = [f"--slots={slots}", f"--unit-s={args.unit_s}", f"--sigma={args.sigma}",
               f"--sigma-choice={args.sigma_choice}", f"--cap={args.cap}", f"--seed={seed}",
               f"--question-seed={questions}"]
    with sim_server(*options, *(["--ignore-n"] if shape["ignore_n"] else [])) as server:
        client = run_child(HERE, f"--child={contender}", f"--base-url={server.base_url}",
                           f"--data-dir={args.data_dir}", f"--questions={shape['questions']}",
                           f"--samples={shape['samples']}", f"--slots={slots}",
                           f"--unit-s={args.unit_s}", f"--stream={args.stream}",
                           *([f"--history={history}"] if history else []))
        stats = server.stats()
    needed = shape["questions"] * shape["samples"]
    ideal = stats["work_s"] / slots
    full = stats["first_full"] or stats["last_done"]  # never full: a run smaller than S
    return {"span / ideal": (stats["last_done"] - stats["first_arrival"]) / ideal,
            "bound / ideal": max(ideal, stats["longest_s"]) / ideal,
            "clairvoyant / ideal": stats["clairvoyant_s"] / ideal,
            "idle while queued": 1 - stats["busy_while_queued"],
            "ramp ms": 1000 * (full - stats["first_arrival"]),
            "handover ms": 1000 * statistics.fmean(stats["handover_gaps"] or [0.0]),
            "sequences / samples": stats["choices"] / needed, "failed": client["failed"]}


#: Span / ideal; no schedule is shorter than the bound (the longest sequence, or the ideal);
#: the clairvoyant schedule knows every sequence's length before it starts.
MEASURED = ["span / ideal", "bound / ideal", "clairvoyant / ideal"]


def summary(values: list[float], form: str) -> str:
    """The median, and the range over the seeds."""
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:{form}} ({low:{form}}-{high:{form}})"


def parent(args: argparse.Namespace) -> None:
    contenders = ["r1eval", "r1eval, longest first"] + ([] if args.no_lm_eval else ["lm-eval"])
    rows, notes = [], []
    for shape in [s for s in shapes(args) if not args.shape or s["name"] in args.shape]:
        for contender in contenders:
            runs = [one_run(contender, shape, seed, args) for seed in range(1, args.seeds + 1)]
            print(f"{shape['name']}, {contender}: {runs}", flush=True)
            rows.append([shape["name"], contender,
                         *(summary([r[column] for r in runs], ".2f") for column in MEASURED),
                         summary([100 * r["idle while queued"] for r in runs], ".1f"),
                         summary([r["ramp ms"] for r in runs], ".0f"),
                         summary([r["handover ms"] for r in runs], ".1f"),
                         summary([r["sequences / samples"] for r in runs], ".3f"),
                         summary([r["failed"] for r in runs], ".0f")])
            if contender.startswith("r1eval"):
                worst = max(r["span / ideal"] for r in runs)
                notes.append(f"{shape['name']}, {contender}: span / ideal at most "
                             f"**{worst:.2f}** (target <= 1.10)")
    header = ["shape", "client", *MEASURED, "% slot time idle while work waited",
              "ms until the slots were first full", "ms a freed slot waited (mean)",
              "sequences / samples", "failed samples"]
    title = (f"Slots: r1eval --stream {args.stream}, {args.slots} slots, lognormal sigma "
             f"{args.sigma} (per sample "
             f"{args.sigma_choice}) capped at {args.cap:g} units of {args.unit_s} s, timeout "
             f"{scaled(1800, args):.2f} s; median (range) over {args.seeds} seeds")
    print_report(title, header, rows, notes)


def shapes(args: argparse.Namespace) -> list[dict[str, Any]]:
    aime = {"questions": args.aime_questions, "samples": args.aime_samples}
    shape = f"AIME {aime['questions']} x {aime['samples']}"
    return [{"name": f"{shape}, n honoured", **aime, "ignore_n": False},
            {"name": f"{shape}, n ignored", **aime, "ignore_n": True},
            {"name": f"MMLU {args.mmlu_questions} x 1, {args.mmlu_slots} slots",
             "questions": args.mmlu_questions, "samples": 1, "ignore_n": False,
             "slots": args.mmlu_slots}]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slots", type=int, default=256, help="the server's capacity S")
    add_duration_arguments(parser, 0.5, "seconds of the median sequence (stands for 300 s)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--aime-questions", type=int, default=30)
    parser.add_argument("--aime-samples", type=int, default=64)
    parser.add_argument("--mmlu-questions", type=int, default=500,
                        help="MATH-500 has 500: one sample a request")
    parser.add_argument("--mmlu-slots", type=int, default=32,
                        help="slots for that shape: many more questions than slots, as MMLU's "
                        "14,000 on 256 slots")
    parser.add_argument("--no-lm-eval", action="store_true", help="r1eval alone")
    parser.add_argument("--shape", action="append",
                        help="only this shape (its name as printed; repeatable)")
    parser.add_argument("--stream", choices=["auto", "on", "off"], default="auto",
                        help="r1eval's --stream")
    parser.add_argument("--questions", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--samples", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--history", type=Path, help=argparse.SUPPRESS)
    add_common_arguments(parser, list(CHILDREN))
    args = parser.parse_args(argv)
    args.data_dir = data_dir(args.data_dir)
    if args.smoke:
        args.slots, args.unit_s, args.seeds = 16, 0.2, 1
        args.aime_questions, args.aime_samples, args.mmlu_questions = 4, 8, 24
        args.mmlu_slots = 4
        args.no_lm_eval = True
    return args


def main() -> None:
    run_script(parse_args(), CHILDREN, parent)


if __name__ == "__main__":
    main()
