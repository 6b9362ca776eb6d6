"""The one interface through which r1eval talks to a model."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from r1eval.types import Completion, Request

__all__ = ["Backend", "Preflight"]


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
