"""What the benchmarks share: data, realistic responses, the server process, measuring, printing.

Every benchmark runs its contenders in fresh child processes (``run_child``), so each one's
CPU time is its own (``cpu_seconds`` counts the child and the processes it waited for, such as
r1eval's grading workers) and no import or warm-up of one contender favours another.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from r1eval.grading.math_answers import Box, find_boxes
from r1eval.table import markdown_table
from r1eval.task.data import read_jsonl
from r1eval.task.prompts import MATH_PROMPT

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
MODEL = "bench-model"
Body = dict[str, Any]
#: Characters of reasoning in a realistic response (R1-distilled models write 2,000-5,000
#: tokens on a MATH-500 problem; about 3.5 characters a token).
REASONING_CHARS = 8_000


def data_dir(given: Path | None = None) -> Path:
    """The official benchmark files: ``given``, else R1EVAL_DATA_DIR, else ../shared/data."""
    path = given or Path(os.environ.get("R1EVAL_DATA_DIR", REPO.parent / "shared" / "data"))
    if not (path / "math500" / "test.jsonl").is_file():
        sys.exit(f"benchmark data not found at {path}: pass --data-dir or set R1EVAL_DATA_DIR")
    return path


def math500_records(data: Path) -> list[dict[str, Any]]:
    return read_jsonl(data / "math500" / "test.jsonl")


def math_prompt(record: dict[str, Any]) -> str:
    """The user turn r1eval sends for a MATH-500 record."""
    return MATH_PROMPT.format(problem=record["problem"])


def last_user_text(body: Body) -> str:
    messages = body.get("messages") or [{}]
    content = messages[-1].get("content", "")
    return content if isinstance(content, str) else json.dumps(content)


# --- realistic responses ---------------------------------------------------------------------


def realistic_response(record: dict[str, Any], index: int) -> dict[str, str]:
    """A long R1-style response to a MATH-500 question: a reasoning trace of
    ``REASONING_CHARS`` (given apart, as vLLM's reasoning parser does), then the reference
    solution as the final answer: as written (50%), right in another form (``\\dfrac`` for
    ``\\frac``, 20%), with a wrong box (15%), or with no box at all, ending "The final answer
    is $...$" (15%, graded by math-verify's fallback anchors). Deterministic in the question and
    the choice index."""
    solution = str(record["solution"])
    variant = zlib.crc32(f"{index}|{record['problem']}".encode()) % 20
    boxes = find_boxes(solution)
    if boxes and variant >= 10:
        solution = _altered(solution, boxes, variant)
    return {"reasoning_content": _reasoning(record, index), "content": solution}


def _altered(solution: str, boxes: list[Box], variant: int) -> str:
    last = boxes[-1]
    if variant < 14:  # right, in another form
        other_form = last.content.replace("\\frac", "\\dfrac")
        return _replace(solution, last, "\\boxed{" + other_form + "}")
    if variant < 17:  # wrong
        return _replace(solution, last, "\\boxed{" + last.content + "+1}")
    for box in reversed(boxes):  # no box at all
        solution = _replace(solution, box, box.content)
    return solution + f"\n\nThe final answer is ${last.content}$."


def _replace(text: str, box: Box, new: str) -> str:
    return text[: box.start] + new + text[box.end :]


def _reasoning(record: dict[str, Any], index: int) -> str:
    steps = str(record["solution"]).split(". ")
    lines = [f"Okay, so I need to solve this problem (attempt {index}). {record['problem']}"]
    while sum(map(len, lines)) < REASONING_CHARS:
        for step in steps:
            lines.append(f"{step}. Wait, let me double-check that step.")
    return "\n".join(lines)[:REASONING_CHARS]


def realistic_responses(path: Path) -> dict[str, Callable[[int], dict[str, str]]]:
    """MATH-500 prompt -> the realistic response to its choice ``index``."""
    return {math_prompt(r): partial(realistic_response, r) for r in read_jsonl(path)}


# --- the server process ----------------------------------------------------------------------


@dataclass
class Server:
    """A running ``sim_server.py`` process."""

    process: subprocess.Popen[str]
    base_url: str

    def stats(self) -> dict[str, Any]:
        return http_json(self.base_url.removesuffix("/v1") + "/bench/stats")

    def reset(self) -> None:
        http_json(self.base_url.removesuffix("/v1") + "/bench/reset", method="POST")


def http_json(url: str, method: str = "GET") -> dict[str, Any]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=30) as response:  # loopback only
        data: dict[str, Any] = json.loads(response.read())
    return data


@contextlib.contextmanager
def sim_server(*options: str) -> Iterator[Server]:
    """Start ``sim_server.py`` on a free loopback port in its own process; stop it after."""
    command = [sys.executable, str(BENCH / "sim_server.py"), "--port", "0", *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"sim_server.py did not start: {line!r}")
        yield Server(process, line.split()[-1])
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- measuring -------------------------------------------------------------------------------


def cpu_seconds(children_only: bool = False) -> float:
    """User + system CPU seconds of this process and of the children it has waited for (such
    as r1eval's grading workers, once their pool is closed)."""
    who = (resource.RUSAGE_CHILDREN,) if children_only else (resource.RUSAGE_SELF,
                                                              resource.RUSAGE_CHILDREN)
    return sum(u.ru_utime + u.ru_stime for u in map(resource.getrusage, who))


def peak_rss_mb() -> float:
    """The peak resident memory of this process, in MB (ru_maxrss: KiB on Linux, B on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


@dataclass(frozen=True)
class Measurement:
    """What one contender did: HTTP requests, samples (responses) and the cost of them."""

    name: str
    requests: int
    samples: int
    wall_s: float
    cpu_s: float
    children_cpu_s: float = 0.0

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.wall_s

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.wall_s

    @property
    def cpu_per_1000(self) -> float:
        """CPU seconds per 1,000 requests."""
        return 1000 * self.cpu_s / self.requests

    @property
    def children_cpu_per_1000(self) -> float:
        """CPU seconds per 1,000 requests spent in child processes (grading workers)."""
        return 1000 * self.children_cpu_s / self.requests


@contextlib.contextmanager
def measured(result: dict[str, Any]) -> Iterator[None]:
    """Fill ``result`` with the wall and CPU seconds of the ``with`` block, and the times (on
    the clock of the run logs) when it began and ended."""
    result["began"] = time.time()
    wall, cpu, children = time.perf_counter(), cpu_seconds(), cpu_seconds(children_only=True)
    yield
    result["wall_s"] = time.perf_counter() - wall
    result["cpu_s"] = cpu_seconds() - cpu
    result["children_cpu_s"] = cpu_seconds(children_only=True) - children
    result["ended"] = time.time()


def log_times(run_dir: Path) -> dict[str, float]:
    """When the last response arrived and the last grade was logged in a run folder (the
    ``time`` of its last "completion" and "grade" records)."""
    from r1eval.store.folder import LOG, read_log

    last = {"completion": 0.0, "grade": 0.0}
    for record in read_log(run_dir / LOG):
        kind = record.get("type")
        if kind in last:
            last[kind] = max(last[kind], float(record["time"]))
    return {"last_response": last["completion"], "last_grade": last["grade"]}


def math500_run(args: argparse.Namespace, concurrency: int | None,
                history: Path | None = None, **options: Any) -> dict[str, Any]:
    """r1eval on the first ``args.questions`` MATH-500 questions x ``args.samples`` against
    ``args.base_url``, into ``args.run_dir``, in this process (``history``: requests sent
    longest first from the runs there, as ``r1eval run`` sends them; ``options``: more of
    ``RunConfig``). Its wall and CPU time, and when its last response and its last grade
    were logged."""
    from r1eval.run.config import RunConfig
    from r1eval.run.evaluate import execute, prepare
    from r1eval.run.schedule import LongestFirst

    config = RunConfig(
        model=MODEL, base_url=args.base_url, tasks=["math500"], limit=args.questions,
        samples=args.samples, protocol="r1", data_dir=args.data_dir, run_dir=args.run_dir,
        concurrency=concurrency, **options,
    )
    prepared = prepare(config, {}, key_explicit=False)
    order = None if history is None else LongestFirst((history,), MODEL)
    result: dict[str, Any] = {}
    with measured(result):
        execute(prepared, order=order)
    return {**result, **log_times(args.run_dir)}


def add_duration_arguments(parser: argparse.ArgumentParser, unit_s: float,
                           unit_help: str) -> None:
    """How long ``sim_server.py``'s sequences take: ``--unit-s``, ``--sigma``,
    ``--sigma-choice``, ``--cap`` (see its docstring)."""
    parser.add_argument("--unit-s", type=float, default=unit_s, help=unit_help)
    parser.add_argument("--sigma", type=float, default=0.5, help="lognormal sigma per question")
    parser.add_argument("--sigma-choice", type=float, default=0.3,
                        help="lognormal sigma between the samples of one question")
    parser.add_argument("--cap", type=float, default=5.0, help="longest sequence, in units")


def add_common_arguments(parser: argparse.ArgumentParser, children: Sequence[str]) -> None:
    """``--data-dir`` and ``--smoke``, and the hidden flags the parent passes to a child."""
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="a tiny run for the test suite")
    parser.add_argument("--child", choices=children, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)


def report_to_parent(result: dict[str, Any]) -> None:
    """A child's result: one JSON line, the last of its standard output."""
    print(json.dumps(result), flush=True)


def run_script(args: argparse.Namespace,
               children: dict[str, Callable[[argparse.Namespace], dict[str, Any]]],
               parent: Callable[[argparse.Namespace], None]) -> None:
    """A benchmark's entry point: as a child (``--child``), run that contender and report to
    the parent; else run the parent."""
    if args.child:
        report_to_parent(children[args.child](args))
    else:
        parent(args)


def run_child(script: str, *args: str, timeout_s: float = 900) -> dict[str, Any]:
    """Run ``bench/<script> *args`` in a fresh Python and return the JSON it reported."""
    command = [sys.executable, str(BENCH / script), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- printing --------------------------------------------------------------------------------


def machine() -> str:
    """One line describing the machine and the software measured."""
    import aiohttp
    import openai

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, openai {openai.__version__}, "
        f"aiohttp {aiohttp.__version__}; load average {os.getloadavg()[0]:.1f} at the end"
    )


def print_report(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]],
                 notes: Sequence[str] = ()) -> None:
    """A markdown block: title, machine, the command that ran, the table, then the notes."""
    command = " ".join(["python", *sys.argv])
    print(f"\n### {title}\n\n{machine()}\n\n`{command}`\n")
    print(markdown_table(header, rows))
    for note in notes:
        print(f"\n{note}")
    sys.stdout.flush()


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"
