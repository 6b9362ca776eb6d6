"""Grade a corpus of real published responses with r1eval and compare with the authors' labels.

The corpus folder holds JSONL files, one JSON object a line::

    {"source": "s1.1-32B_math500", "task": "math500", "id": "test/algebra/2584.json",
     "problem": "...", "gold": "\\frac{14}{3}", "response": "...",
     "published_correct": true, "finish_reason": null}

- ``source``: where the response was published (one row of the agreement table per source);
- ``task``: the r1eval task whose grader applies (``math500``, ``aime24``, ...);
- ``gold``, ``response``, ``published_correct`` (the verdict of the authors' harness);
- optional ``finish_reason`` ("length" marks a cut-off response; null or absent: unknown),
  ``published_extracted`` (the answer the authors' harness read, shown for disagreements).

Each response goes through the grading path of ``r1eval grade`` and ``regrade``
(``grade_completion``: reasoning split off, then the task's grader in r1eval's grader pool).
Prints the agreement table per source, then every disagreement. ``bench/corpus_sources.py``
builds the folder from the public snapshot it names::

    python bench/grading_corpus.py CORPUS_DIR [--json OUT] [--workers N]
        [--reasoning-delimiters 'think,thought,<|im_start|>think <|im_start|>answer']
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from r1eval.grading.final_answer import (
    DEFAULT_DELIMITERS,
    TraceFormat,
    grade_completion,
    trace_formats,
)
from r1eval.grading.pool import GraderPool
from r1eval.table import markdown_table
from r1eval.task.registry import resolve
from r1eval.types import Completion, Grade

REQUIRED = ("source", "task", "id", "gold", "response", "published_correct")


@dataclass(frozen=True)
class Compared:
    """One corpus response, r1eval's verdict beside the published one."""

    source: str
    id: str
    gold: str
    published_correct: bool
    published_extracted: str | None
    r1eval_correct: bool
    r1eval_extracted: str | None
    method: str | None
    failure: str | None
    ending: str  # the last characters of the response, to judge a disagreement by


def read_corpus(folder: Path) -> list[dict[str, Any]]:
    """Every line of every ``*.jsonl`` file in ``folder``; a clear error for a bad line."""
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise SystemExit(f"grading_corpus: no *.jsonl corpus files in {folder}")
    rows = []
    for path in files:
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not raw.strip():
                continue
            row = json.loads(raw)
            missing = [key for key in REQUIRED if key not in row]
            if missing:
                raise SystemExit(f"grading_corpus: {path}:{number} lacks {', '.join(missing)}")
            rows.append(row)
    return rows


def grade_rows(
    rows: Sequence[dict[str, Any]], workers: int | None, formats: tuple[TraceFormat, ...],
) -> list[Grade]:
    """r1eval's grade of each row, in order, through the grader pool a run uses."""
    graders = {task.name: task.grader for task in resolve(sorted({r["task"] for r in rows}))}
    with GraderPool(workers=workers) as pool, \
            ThreadPoolExecutor(max_workers=max(1, pool.workers)) as executor:
        futures = [
            executor.submit(
                grade_completion,
                Completion(text=row["response"], reasoning=None,
                           finish_reason=row.get("finish_reason")),
                row["gold"], functools.partial(pool.grade, graders[row["task"]]), formats)
            for row in rows
        ]
        return [future.result() for future in futures]


def compare(rows: Sequence[dict[str, Any]], grades: Sequence[Grade]) -> list[Compared]:
    return [
        Compared(
            source=row["source"], id=str(row["id"]), gold=row["gold"],
            published_correct=bool(row["published_correct"]),
            published_extracted=row.get("published_extracted"),
            r1eval_correct=grade.correct, r1eval_extracted=grade.extracted,
            method=grade.method, failure=grade.failure,
            ending=" ".join(row["response"][-160:].split()),
        )
        for row, grade in zip(rows, grades, strict=True)
    ]


def agreement_table(compared: Iterable[Compared]) -> str:
    """Per source: responses, agreement, and the two kinds of disagreement."""
    by_source: dict[str, list[Compared]] = {}
    for item in compared:
        by_source.setdefault(item.source, []).append(item)
    by_source["all"] = [item for items in list(by_source.values()) for item in items]
    rows = []
    for source, items in by_source.items():
        agree = sum(item.published_correct == item.r1eval_correct for item in items)
        rows.append([
            source, str(len(items)), f"{agree}/{len(items)} ({100 * agree / len(items):.1f}%)",
            str(sum(item.published_correct for item in items)),
            str(sum(item.r1eval_correct for item in items)),
            str(sum(item.r1eval_correct and not item.published_correct for item in items)),
            str(sum(item.published_correct and not item.r1eval_correct for item in items)),
        ])
    return markdown_table(
        ["source", "responses", "agreement", "published correct", "r1eval correct",
         "only r1eval correct", "only published correct"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="folder of corpus JSONL files")
    parser.add_argument("--workers", type=int, default=None, help="grading processes")
    parser.add_argument("--json", type=Path, help="also write every comparison here")
    parser.add_argument("--reasoning-delimiters", default=",".join(DEFAULT_DELIMITERS),
                        help="as the run flag: names or 'OPEN CLOSE' pairs, comma-separated")
    args = parser.parse_args(argv)
    try:
        formats = trace_formats(name.strip() for name in args.reasoning_delimiters.split(","))
    except ValueError as error:
        print(f"grading_corpus: --reasoning-delimiters: {error}", file=sys.stderr)
        return 2
    if not args.corpus.is_dir():
        print(f"grading_corpus: {args.corpus} is not a folder", file=sys.stderr)
        return 2
    rows = read_corpus(args.corpus)
    compared = compare(rows, grade_rows(rows, args.workers, formats))
    print(agreement_table(compared))
    disagreements = [item for item in compared if item.published_correct != item.r1eval_correct]
    print(f"\n{len(disagreements)} disagreements:")
    for item in disagreements:
        print(f"\n- {item.source} {item.id}: gold {item.gold!r}; published "
              f"{'correct' if item.published_correct else 'wrong'} "
              f"(read {item.published_extracted!r}); r1eval "
              f"{'correct' if item.r1eval_correct else 'wrong'} (read {item.r1eval_extracted!r}, "
              f"{item.method or item.failure})\n  ends: ...{item.ending}")
    if args.json:
        args.json.write_text(json.dumps([asdict(item) for item in compared], indent=1) + "\n",
                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
