"""The progress line: done/total, accuracy so far, errors, tokens per second."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from r1eval.prices import Price
from r1eval.types import Completion, Grade


class Progress:
    """Redraws one line on a terminal; prints a line every ``every_s`` seconds otherwise."""

    def __init__(
        self, stream: TextIO | None = None, every_s: float = 30.0, price: Price | None = None
    ) -> None:
        self.price = price
        self.prompt_tokens = 0.0
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty()
        self.every_s = 0.2 if self.live else every_s
        self.total = self.done = self.correct = self.graded_count = self.errors = 0
        self.tokens = 0.0
        self._started = self._last_draw = time.monotonic()

    def start(self, total: int, done: int) -> None:
        self.total, self.done = total, done
        self._started = time.monotonic()
        self._draw(force=True)

    def received(self, completion: Completion) -> None:
        usage = completion.usage
        if usage.completion_tokens is not None:
            self.tokens += usage.completion_tokens / usage.shared_by
        if usage.prompt_tokens is not None:
            self.prompt_tokens += usage.prompt_tokens / usage.shared_by

    def graded(self, grade: Grade) -> None:
        self.done += 1
        self.graded_count += 1
        self.correct += grade.correct
        self._draw()

    def failed(self) -> None:
        self.done += 1
        self.errors += 1
        self._draw()

    def finish(self) -> None:
        self._draw(force=True)
        if self.live:
            self.stream.write("\n")
            self.stream.flush()

    def line(self) -> str:
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        accuracy = f"{self.correct / self.graded_count:.3f}" if self.graded_count else "-"
        elapsed = max(time.monotonic() - self._started, 1e-9)
        return (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
            f"acc {accuracy} errors {self.errors} tok/s {self.tokens / elapsed:,.0f}"
            + (f" cost ${self.price.cost(self.prompt_tokens, self.tokens):,.2f}"
               if self.price is not None else "")
        )

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < self.every_s:
            return
        self._last_draw = now
        self.stream.write(("\r" if self.live else "") + self.line() + ("" if self.live else "\n"))
        self.stream.flush()
