"""How a request to an endpoint is retried: what is tried again (``Retryable``), how long to
wait between attempts (the server's ``Retry-After``, capped, else an exponential back-off with
jitter), what is said meanwhile, and what is reported when the attempts run out.

The loop is tenacity's, entered only after a first try failed: nearly every request succeeds
at once, and the loop's machinery costs about 0.2 ms of CPU a request, which at the start of a
run on a big server delays every request behind it (bench/RESULTS.md, section 5). The failed
first try is handed to the loop as its first attempt's outcome, so the attempts, waits and
messages are the loop's alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_any,
    wait_exponential_jitter,
)

from r1eval.backends.openai_reply import Retryable
from r1eval.backends.rotation import Rotation, StopWhenLeaving
from r1eval.errors import OutOfRotation, RequestFailed

__all__ = ["RetryPolicy"]

log = logging.getLogger(__name__)

#: A wait for the server's ``Retry-After`` at least this long is announced on screen.
_ANNOUNCED_WAIT_S = 10.0

_T = TypeVar("_T")


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` counts the first try; waits grow exponentially from
    ``backoff_initial_s`` up to ``backoff_max_s`` with jitter, or follow the server's
    ``Retry-After`` up to ``retry_after_max_s``; no more attempts once the endpoint is out of
    its pool's ``rotation`` while another is in (the pool sends the rest elsewhere)."""

    base_url: str
    max_attempts: int
    backoff_initial_s: float
    backoff_max_s: float
    retry_after_max_s: float
    rotation: Rotation | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    async def run(self, attempt: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """``attempt(*args)``, tried again on ``Retryable`` until the attempts run out (then
        the last ``Retryable`` is raised: ``gave_up`` says it in r1eval's words)."""
        first: Retryable | None
        try:
            return await attempt(*args)
        except Retryable as err:
            first = err

        async def again(*args: Any) -> _T:
            nonlocal first
            if first is not None:
                failed, first = first, None
                raise failed
            return await attempt(*args)

        result: _T = await self._loop()(again, *args)
        return result

    def gave_up(self, err: Retryable) -> RequestFailed:
        """What a request whose attempts ran out (or whose endpoint left the rotation)
        failed with: transient, retried by the next run."""
        if self.rotation is not None and self.rotation.should_leave():
            return OutOfRotation(f"{self.base_url} is out of rotation (last: {err})",
                                 transient=True, status=err.status)
        return RequestFailed(
            f"{self.base_url}: gave up after {self.max_attempts} attempts; last: {err}",
            transient=True,
            status=err.status,
        )

    def _loop(self) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_any(stop_after_attempt(self.max_attempts), StopWhenLeaving(self.rotation)),
            wait=self._wait_s,
            retry=retry_if_exception_type(Retryable),
            before_sleep=self._log_retry,
            reraise=True,
        )

    def _wait_s(self, state: RetryCallState) -> float:
        """Seconds before the next attempt: the server's ``Retry-After`` (capped) if sent."""
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, Retryable) and error.retry_after_s is not None:
            return min(error.retry_after_s, self.retry_after_max_s)
        backoff = wait_exponential_jitter(multiplier=self.backoff_initial_s,
                                          max=self.backoff_max_s, jitter=self.backoff_initial_s)
        return backoff(state)

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait_s = state.next_action.sleep if state.next_action is not None else 0.0
        asked = isinstance(error, Retryable) and error.retry_after_s is not None
        if asked and wait_s >= _ANNOUNCED_WAIT_S:
            log.warning("%s", _announced_wait(self.base_url, str(error), wait_s))
            return
        log.info("%s: attempt %d of %d failed (%s); retrying in %.1f s", self.base_url,
                 state.attempt_number, self.max_attempts, error, wait_s)


def _announced_wait(base_url: str, error: str, wait_s: float) -> str:
    """What a long wait asked for by the server waits for, and until when."""
    until = time.strftime("%H:%M:%S %Z", time.localtime(time.time() + wait_s))
    return (
        f"{base_url} asked to wait (Retry-After, after {error}): waiting {wait_s:.3g} s, "
        f"until {until}, before trying the request again"
    )
