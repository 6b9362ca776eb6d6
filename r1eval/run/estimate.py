"""What a run will cost before it starts: requests, tokens and USD, with a range.

Completion tokens come from an earlier run of the same model and task when one exists (the
mean per sample, with a 95% interval over questions), else from the token limit as an upper
bound. Prompt tokens are approximated from the prompt texts (or taken from the earlier run).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from r1eval.backends.tokens import estimate_tokens
from r1eval.run.plan import group_requests
from r1eval.scoring.prices import Price
from r1eval.scoring.stats import bootstrap_interval
from r1eval.types import SamplingParams, WorkItem


@dataclass(frozen=True)
class TaskEstimate:
    task: str
    questions: int
    samples: int
    requests: int
    prompt_tokens: float
    completion_tokens: tuple[float, float, float] | None  # low, expected, high
    basis: str
    upper_bound: bool = False  # the figures are a ceiling (token limit), not an expectation

    def cost(self, price: Price | None) -> tuple[float, float, float] | None:
        if price is None or self.completion_tokens is None:
            return None
        low, mid, high = self.completion_tokens
        return (price.cost(self.prompt_tokens, low), price.cost(self.prompt_tokens, mid),
                price.cost(self.prompt_tokens, high))


def _from_history(task: str, samples: int, history: pd.DataFrame) -> tuple[
        float, tuple[float, float, float], float] | None:
    """(prompt tokens per sample, completion tokens range for ``samples``, runs used)."""
    rows = history[(history["task"] == task) & history["completion_tokens"].notna()]
    if rows.empty:
        return None
    per_question = rows.groupby("sample_id")["completion_tokens"].mean().to_numpy(float)
    mean = float(per_question.mean())
    low, high = bootstrap_interval(per_question) if len(per_question) > 1 else (mean, mean)
    prompt = float(rows["prompt_tokens"].mean()) if rows["prompt_tokens"].notna().any() else 0.0
    return prompt, (low * samples, mean * samples, high * samples), float(rows["run"].nunique())


def estimate(
    items: list[WorkItem], sampling: SamplingParams, history: pd.DataFrame | None
) -> list[TaskEstimate]:
    """One estimate per task of the plan; ``history`` is earlier runs' samples of this model."""
    estimates = []
    for task in dict.fromkeys(item.task for item in items):
        upper_bound = False
        task_items = [item for item in items if item.task == task]
        requests = group_requests(task_items, sampling)
        samples = len(task_items)
        prompt = float(sum(estimate_tokens(m.get("content"))
                           for request, _ in requests for m in request.messages))
        past = _from_history(task, samples, history) if history is not None else None
        if past is not None:
            per_sample_prompt, completion, runs = past
            prompt = per_sample_prompt * samples or prompt
            basis = f"earlier runs of this model ({runs:.0f}), 95% interval over questions"
        elif sampling.max_tokens is not None:
            bound = float(sampling.max_tokens * samples)
            completion, basis = (0.0, bound, bound), "upper bound: the token limit x samples"
            upper_bound = True
        else:
            completion, basis = None, "unknown: no earlier run and no --max-tokens"
        estimates.append(TaskEstimate(
            task=task, questions=len({i.sample.id for i in task_items}), samples=samples,
            requests=len(requests), prompt_tokens=prompt, completion_tokens=completion,
            basis=basis, upper_bound=upper_bound,
        ))
    return estimates


def total_cost(
    estimates: list[TaskEstimate], price: Price | None
) -> tuple[float, float, float] | None:
    costs = [e.cost(price) for e in estimates]
    if not costs or any(c is None for c in costs):
        return None
    low, mid, high = np.sum(np.array(costs, dtype=float), axis=0)
    return float(low), float(mid), float(high)
