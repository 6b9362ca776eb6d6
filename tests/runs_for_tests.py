"""Run folders built in the tests through r1eval's own code (plan, records, grading, scoring),
without HTTP: for tests of what reads runs (leaderboard, report, notebook), where thousands of
samples are needed fast. Responses come from a ``responder(item) -> Completion | None``
(None: the request failed)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from r1eval.grading.final_answer import grade_completion
from r1eval.run.config import RunConfig
from r1eval.run.evaluate import compute_scores, prepare
from r1eval.run.plan import WorkItem
from r1eval.store.folder import RunFolder
from r1eval.store.records import completion_record, error_record, grade_record
from r1eval.types import Completion, Usage

Responder = Callable[[WorkItem], Completion | None]


def answer(
    text: str, finish_reason: str = "stop", tokens: int = 100, reasoning: str | None = None
) -> Completion:
    return Completion(text=text, reasoning=reasoning, finish_reason=finish_reason,
                      usage=Usage(prompt_tokens=50, completion_tokens=tokens,
                                  reasoning_tokens=tokens // 2), latency_s=0.5, model="m")


def build_run(
    run_dir: Path | None, data_dir: Path, tasks: str, responder: Responder, *, model: str = "m",
    limit: int | None = None, samples: int | None = 1, stop_after: int | None = None,
    created: str = "2026-01-01T00:00:00+0000", protocol: str = "none",
    base_url: str = "http://127.0.0.1:9/v1", max_tokens: int | None = None,
    task_dir: Path | None = None, graded: Callable[[WorkItem], bool] = lambda item: True,
) -> Path:
    """Write a run folder (``run_dir`` None: the default folder ``r1eval run`` would use, under
    the current directory); ``stop_after`` leaves the rest of the plan unattempted; ``samples``
    None with ``protocol="r1"`` takes each task's K from the protocol; a response for which
    ``graded`` is false is logged without a grade (as a run interrupted before grading it)."""
    config = RunConfig(model=model, base_url=base_url, tasks=tasks, limit=limit,
                       samples=samples, data_dir=data_dir, run_dir=run_dir, grader_workers=0,
                       protocol=protocol, max_tokens=max_tokens, task_dir=task_dir)
    prepared = prepare(config, {}, key_explicit=False)
    graders = {t.task.name: t.task.grader for t in prepared.loaded}
    with RunFolder(prepared.run_dir) as folder:
        folder.write_manifest(prepared.manifest.model_copy(update={"created": created}))
        for item in prepared.items[:stop_after]:
            completion = responder(item)
            if completion is None:
                folder.append(error_record(item, "HTTP 503: overloaded", True, 503))
                continue
            folder.append(completion_record(item, completion))
            if not graded(item):
                continue
            grade = grade_completion(completion, item.prompt.gold, graders[item.task])
            folder.append(grade_record(item, grade))
        folder.write_scores(compute_scores(prepared, folder))
    return prepared.run_dir


def varied_math(item: WorkItem) -> Completion | None:
    """A math responder for K > 1, by question and repeat: right, wrong (a fraction),
    truncated at 4,000 tokens, or (first repeat only) a failed request; lengths differ by
    verdict, so accuracy depends on length."""
    n = hashlib.sha256(f"{item.sample.id}#{item.repeat}".encode()).digest()[0] % 4
    if n == 3 and item.repeat == 0:
        return None
    if n == 2:
        return answer("<think>still thinking", finish_reason="length", tokens=4000)
    value = item.prompt.gold if n == 0 else "\\frac{9}{8}"
    return answer(f"<think>Let $x=1$.</think>So $\\boxed{{{value}}}$.", tokens=700 + 600 * n)
