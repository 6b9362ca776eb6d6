"""The scoring side of the tasks exported for lm-evaluation-harness (``r1eval export-lm-eval``).

lm-eval calls ``process_results(doc, results)`` for each document of an exported task, in its
main thread (so math-verify's own timeouts work). The response is graded exactly as an
r1eval run grades a completion: the reasoning is split off (``</think>``), then the task's own
grader judges the final answer against the gold of that very prompt. lm-eval keeps only the
message content and no ``finish_reason``, so a response cut at the token limit cannot be told
from a finished one here (r1eval counts it as truncated when it has no think tags).

This module imports neither lm-eval nor any model library.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from r1eval.grading.final_answer import grade_completion
from r1eval.grading.pool import call_grader
from r1eval.task.registry import resolve
from r1eval.types import Completion, Grade, Grader

__all__ = ["METRIC", "grade_response", "process_results"]

#: The one metric of every exported task: 1 for a correct response, 0 otherwise; its mean over
#: documents (one document per question and repeat) is r1eval's pass@1.
METRIC = "pass@1"


@functools.cache
def _grader(task: str) -> Grader:
    return resolve([task])[0].grader


def grade_response(task: str, response: str | None, gold: str) -> Grade:
    """Grade one response to a prompt of ``task`` as an r1eval run does."""
    completion = Completion(text=response or "", reasoning=None, finish_reason=None)
    grader = functools.partial(call_grader, _grader(task))
    return grade_completion(completion, gold, grader)


def process_results(doc: Mapping[str, Any], results: Sequence[Any]) -> dict[str, float]:
    """lm-eval's hook: ``results`` holds the (filtered) responses to this document."""
    responses: list[str | None] = []
    for result in results:  # one response, or K with a take_first_k filter
        responses += result if isinstance(result, list) else [result]
    grades = [grade_response(doc["task"], response, doc["gold"]) for response in responses]
    return {METRIC: sum(grade.correct for grade in grades) / len(grades)}
