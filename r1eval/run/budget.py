"""Spending limits of a run: stop sending requests before the next ones would exceed them.

The limit covers the whole run folder, what earlier sessions spent included, so a run stopped
by its budget resumes with a higher one. Before a request goes out, its cost is projected from
what responses have cost so far (the mean completion tokens per sample; the token limit before
the first response), and requests in flight count at their projection until they return.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from r1eval.backends.tokens import estimate_tokens
from r1eval.errors import R1EvalError
from r1eval.scoring.prices import Price
from r1eval.types import Request, Usage


class BudgetReached(R1EvalError):
    """The run stopped sending requests at its budget; everything received is saved."""

    exit_code = 1


@dataclass
class Budget:
    """``max_cost`` (USD, needs ``price``) and/or ``max_tokens`` (prompt + completion)."""

    max_cost: float | None
    max_tokens: int | None
    price: Price | None
    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0
    samples: int = 0
    _in_flight: dict[int, tuple[float, float]] = field(default_factory=dict)

    def charge(self, usage: Usage) -> None:
        """Count one received sample (per-sample share of a shared usage)."""
        self.prompt_tokens += (usage.prompt_tokens or 0) / usage.shared_by
        self.completion_tokens += (usage.completion_tokens or 0) / usage.shared_by
        self.samples += 1

    def _projection(self, request: Request) -> tuple[float, float]:
        prompt = float(sum(estimate_tokens(m.get("content")) for m in request.messages))
        if self.samples:
            per_sample = self.completion_tokens / self.samples
        else:
            per_sample = float(request.sampling.max_tokens or 0)
        return prompt, per_sample * request.n

    def _cost(self, prompt: float, completion: float) -> float:
        return self.price.cost(prompt, completion) if self.price else 0.0

    def reserve(self, request: Request) -> bool:
        """Whether ``request`` fits; if so it is counted as in flight until ``release``."""
        prompt, completion = self._projection(request)
        pending_prompt = sum(p for p, _ in self._in_flight.values()) + prompt
        pending_completion = sum(c for _, c in self._in_flight.values()) + completion
        tokens = self.prompt_tokens + self.completion_tokens + pending_prompt + pending_completion
        if self.max_tokens is not None and tokens > self.max_tokens:
            return False
        cost = self._cost(self.prompt_tokens + pending_prompt,
                          self.completion_tokens + pending_completion)
        if self.max_cost is not None and cost > self.max_cost:
            return False
        self._in_flight[id(request)] = (prompt, completion)
        return True

    def release(self, request: Request) -> None:
        self._in_flight.pop(id(request), None)

    def spent(self) -> str:
        tokens = f"{self.prompt_tokens + self.completion_tokens:,.0f} tokens"
        if self.price is None:
            return tokens
        return f"{tokens}, {self._cost(self.prompt_tokens, self.completion_tokens):,.4f} USD"

    def reached(self, not_sent: int) -> BudgetReached:
        limits = [f"{self.max_cost:g} USD" if self.max_cost is not None else "",
                  f"{self.max_tokens:,} tokens" if self.max_tokens is not None else ""]
        return BudgetReached(
            f"budget reached ({' and '.join(x for x in limits if x)}): spent {self.spent()}; "
            f"{not_sent} samples not sent; everything received is saved: run again with a "
            "higher --max-cost/--max-tokens-total to continue"
        )
