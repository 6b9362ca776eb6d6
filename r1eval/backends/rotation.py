"""Whether one replica of a pool takes requests: its standing, from the outcome of each attempt.

A replica leaves the rotation after ``streak_limit`` attempts in a row failed at the endpoint's
level (no HTTP response: refused, dropped, timed out; or a 5xx), and comes back on its first
success: a probe of the pool's (``r1eval.backends.replicas``), or a request sent to it while
every replica was out. A 429 or a malformed body says nothing about the endpoint's health and
changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tenacity import RetryCallState
from tenacity.stop import stop_base

__all__ = ["DEFAULT_STREAK", "Rotation", "StopWhenLeaving"]

log = logging.getLogger(__name__)

#: Endpoint-level failures in a row that take a replica out of rotation.
DEFAULT_STREAK = 3


class Rotation:
    """One replica's standing. ``others_in`` tells whether another replica of the pool is in
    rotation (a replica out of rotation keeps its requests when none is: the run then fails
    or stops exactly as with one endpoint); ``changed`` is called when the standing changes."""

    def __init__(
        self,
        name: str,
        *,
        others_in: Callable[[], bool],
        changed: Callable[[Rotation], None],
        streak_limit: int = DEFAULT_STREAK,
    ) -> None:
        if streak_limit < 1:
            raise ValueError("streak_limit must be at least 1")
        self.name = name
        self.in_rotation = True
        self.failures_in_a_row = 0
        self._others_in = others_in
        self._changed = changed
        self._streak_limit = streak_limit

    def attempt_failed(self, *, endpoint_level: bool) -> None:
        """An attempt failed; ``endpoint_level``: no response, or a 5xx."""
        if not endpoint_level:
            return
        self.failures_in_a_row += 1
        if self.in_rotation and self.failures_in_a_row >= self._streak_limit:
            self.take_out(f"{self.failures_in_a_row} failed attempts in a row")

    def attempt_succeeded(self) -> None:
        self.failures_in_a_row = 0
        if not self.in_rotation:
            self.in_rotation = True
            log.warning("%s is back in rotation", self.name)
            self._changed(self)

    def take_out(self, why: str) -> None:
        if self.in_rotation:
            self.in_rotation = False
            log.warning("%s is out of rotation (%s): its requests go to the other "
                        "replicas; it is probed again", self.name, why)
            self._changed(self)

    def should_leave(self) -> bool:
        """True when a request here should go to another replica instead."""
        return not self.in_rotation and self._others_in()


class StopWhenLeaving(stop_base):
    """A retry loop's stop condition: the request should go to another replica."""

    def __init__(self, rotation: Rotation | None) -> None:
        self._rotation = rotation

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._rotation is not None and self._rotation.should_leave()
