"""The one interface through which r1eval talks to a model."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from r1eval.types import Completion, Request

__all__ = ["Backend", "Capacity", "Described", "Incremental", "Preflight"]


@runtime_checkable
class Backend(Protocol):
    """Something that turns a ``Request`` into completions.

    Errors: ``EndpointError`` when the endpoint cannot serve the run at all (bad URL, key or
    model), ``RequestFailed`` when this one request failed for good.
    """

    def identity(self) -> dict[str, str]:
        """What identifies the endpoint in provenance and cache keys (never an API key)."""
        ...

    async def generate(self, request: Request) -> list[Completion]:
        """Return ``request.n`` completions, or fewer when some could not be obtained.

        Fewer than ``n`` only after at least one succeeded; the caller records the missing
        ones as errors. Raises when none could be obtained.
        """
        ...

    async def aclose(self) -> None:
        """Release connections; the backend is unusable afterwards."""
        ...


@runtime_checkable
class Preflight(Protocol):
    """A backend that can check its endpoint before a run sets anything up (optional)."""

    async def preflight(self) -> None:
        """Raise ``EndpointError`` if the endpoint cannot serve the run at all; send at most
        one tiny request."""
        ...


@runtime_checkable
class Incremental(Protocol):
    """A backend that hands over each completion as soon as it is finished (optional).

    ``ignores_n`` becomes True once the backend found that its server answers one completion
    whatever ``n`` is: the caller then sends one request per sample.
    """

    ignores_n: bool

    async def generate_each(
        self, request: Request, deliver: Callable[[Completion], Awaitable[None]]
    ) -> None:
        """Await ``deliver`` for each completion as it finishes, ``request.n`` in all, or
        fewer when the server ignores ``n``; raise as ``Backend.generate`` does when the
        rest cannot be obtained (what was delivered stays delivered)."""
        ...

    async def detect_n(self) -> None:
        """Find out, cheaply and before the run's first request for several samples, whether
        the server ignores ``n`` (it may leave it to the first answer)."""
        ...


@runtime_checkable
class Capacity(Protocol):
    """A backend that can ask its server how many sequences it generates at once."""

    async def capacity(self) -> int | None:
        """The server's limit, or None when it does not say."""
        ...


@runtime_checkable
class Described(Protocol):
    """A backend that can ask its server how it is set up (``r1eval.backends.server_setup``)."""

    async def server_setup(self) -> dict[str, Any]:
        """What the server says about itself; best effort, bounded in time, never raises
        for a route the server does not have."""
        ...
