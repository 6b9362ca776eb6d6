"""The progress display: one line per task (done/total, what earlier invocations had done,
accuracy over every graded sample, errors) and a line with elapsed time, ETA, tokens per
second and cost."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

from r1eval.scoring.prices import Price
from r1eval.store.log import LogState
from r1eval.types import Completion, Grade, WorkItem

__all__ = ["Progress", "TaskCounts", "task_counts"]


@dataclass
class TaskCounts:
    """One task's samples: ``done`` = graded or failed for good in this invocation, or graded
    before it (``resumed``); ``graded``/``correct`` cover every graded sample, earlier ones
    too, so the accuracy shown is the run's, not this invocation's."""

    total: int = 0
    done: int = 0
    resumed: int = 0
    graded: int = 0
    correct: int = 0
    errors: int = 0

    def accuracy(self) -> str:
        return f"{self.correct / self.graded:.3f}" if self.graded else "-"


def task_counts(items: Iterable[WorkItem], state: LogState) -> dict[str, TaskCounts]:
    """Per task, what the log already holds: graded samples count as done (and resumed)."""
    counts: dict[str, TaskCounts] = {}
    for item in items:
        c = counts.setdefault(item.task, TaskCounts())
        c.total += 1
        grade = state.grades.get(item.key)
        if grade is not None and item.key in state.completions:
            c.done += 1
            c.resumed += 1
            c.graded += 1
            c.correct += bool(grade.correct)
    return counts


def clock(seconds: float) -> str:
    """``1:02:03`` or ``2:03``."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Redraws its lines on a terminal; prints them every ``every_s`` seconds otherwise."""

    def __init__(
        self, stream: TextIO | None = None, every_s: float = 30.0, price: Price | None = None
    ) -> None:
        self.price = price
        self.prompt_tokens = 0.0
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty()
        self.every_s = 0.2 if self.live else every_s
        self.tasks: dict[str, TaskCounts] = {}
        self.tokens = 0.0
        self._drawn = 0
        self._started = self._last_draw = time.monotonic()

    def start(self, counts: dict[str, TaskCounts]) -> None:
        """Begin with what the log holds; say so first when an earlier invocation did part."""
        self.tasks = counts
        self._started = time.monotonic()
        done, total = self._sum("done"), self._sum("total")
        if done:
            self.stream.write(f"resuming: {done:,} of {total:,} samples done\n")
        self._draw(force=True)

    def received(self, completion: Completion) -> None:
        usage = completion.usage
        if usage.completion_tokens is not None:
            self.tokens += usage.completion_tokens / usage.shared_by
        if usage.prompt_tokens is not None:
            self.prompt_tokens += usage.prompt_tokens / usage.shared_by

    def graded(self, grade: Grade, task: str) -> None:
        counts = self.tasks.setdefault(task, TaskCounts())
        counts.done += 1
        counts.graded += 1
        counts.correct += grade.correct
        self._draw()

    def failed(self, task: str) -> None:
        counts = self.tasks.setdefault(task, TaskCounts())
        counts.done += 1
        counts.errors += 1
        self._draw()

    def finish(self) -> None:
        self._draw(force=True)

    def lines(self) -> list[str]:
        """One line per task, then the time line."""
        width = 24
        name_width = max((len(t) for t in self.tasks), default=4)
        lines = []
        for task, c in self.tasks.items():
            filled = int(width * c.done / c.total) if c.total else width
            resumed = f" ({c.resumed:,} resumed)" if c.resumed else ""
            lines.append(f"{task:<{name_width}} [{'#' * filled}{'.' * (width - filled)}] "
                         f"{c.done:,}/{c.total:,}{resumed} acc {c.accuracy()} "
                         f"errors {c.errors}")
        return [*lines, self._time_line()]

    def _time_line(self) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        new = self._sum("done") - self._sum("resumed")
        left = self._sum("total") - self._sum("done")
        eta = clock(left * elapsed / new) if new and left else ("0:00" if not left else "-")
        cost = (f" cost ${self.price.cost(self.prompt_tokens, self.tokens):,.2f}"
                if self.price is not None else "")
        return (f"elapsed {clock(elapsed)} eta {eta} tok/s {self.tokens / elapsed:,.0f}"
                + cost)

    def _sum(self, field: str) -> int:
        return sum(int(getattr(c, field)) for c in self.tasks.values())

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < self.every_s:
            return
        self._last_draw = now
        lines = self.lines()
        if self.live:
            # back to the first line of the previous drawing, then overwrite each line
            up = f"\x1b[{self._drawn}F" if self._drawn else ""
            self.stream.write(up + "".join(f"{line}\x1b[K\n" for line in lines))
            self._drawn = len(lines)
        else:
            self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()
