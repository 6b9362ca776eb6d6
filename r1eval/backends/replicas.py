"""One run across several replicas of a model (``--base-url`` given more than once).

The pool is a backend like any other: the runner keeps up to the sum of the replicas' slots in
flight, in one queue, and the pool places each request on a replica with free slots (the one
answering fastest so far first), split across several when no one of them has room for all its
samples. A replica frees its slots as its samples arrive, so a faster one takes more of the
queue, and the run ends when the last sample arrives, not when the slowest replica finishes a
share given in advance.

A replica whose attempts keep failing at the endpoint's level (``Rotation``) is out of
rotation: its requests stop at their next failed attempt and what they did not deliver goes to
the others; it is probed (``GET /models``) after ``probe_s`` seconds, then at doubling
intervals up to ``probe_max_s``, and is back on its first success. When every replica is out,
requests go to them anyway with their usual retries, so a run whose endpoints are all down
fails and stops exactly as a run with one endpoint does.

Preflight checks each replica as for one endpoint, then that all serve the same model: the same
listing of ``--model`` (or, when none lists it, the same listing) and the same weights where
vLLM says them (``root``); a mixed set is refused.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from r1eval.backends.chat_attempts import Deliver
from r1eval.backends.endpoint_http import endpoint_identity, normalise_url
from r1eval.backends.openai_compat import OpenAICompatBackend
from r1eval.backends.openai_reply import listed_ids
from r1eval.backends.rotation import Rotation
from r1eval.backends.server_setup import from_models_listing, server_differences
from r1eval.errors import OutOfRotation, RequestFailed, UsageError
from r1eval.types import Completion, Request

__all__ = ["MAX_SLOTS", "EndpointSpec", "ReplicaPool", "endpoint_specs", "split_slots"]

log = logging.getLogger(__name__)

#: The most samples one endpoint may be given in flight (``URL@N``), as ``--concurrency``.
MAX_SLOTS = 4096
_SLOTS = re.compile(r"^(?P<url>.+)@(?P<slots>\d+)$")
#: Weight of the newest latency in a replica's running average.
_SMOOTHING = 0.2
#: Replicas whose average latency is within this factor of the fastest count as fast.
_FAST = 1.25


@dataclass(frozen=True)
class EndpointSpec:
    """One ``--base-url``: the normalised URL and, if given (``URL@N``), its samples in flight."""

    url: str
    slots: int | None = None


def split_slots(text: str) -> tuple[str, int | None]:
    """``http://host:8000/v1@32`` -> (``http://host:8000/v1``, 32); ``ValueError`` in
    r1eval's words when N is out of range (the caller names the flag)."""
    text = text.strip()
    found = _SLOTS.match(text)
    if found is None:
        return text, None
    slots = int(found["slots"])
    if not 1 <= slots <= MAX_SLOTS:
        raise ValueError(f"{text}: the samples in flight after @ must be 1 to {MAX_SLOTS}")
    return found["url"], slots


def endpoint_specs(base_urls: str | Sequence[str]) -> list[EndpointSpec]:
    """Each ``--base-url`` (``URL`` or ``URL@N``), normalised: ``EndpointError`` for a URL
    that is not http(s), ``UsageError`` for one given twice."""
    specs: list[EndpointSpec] = []
    for text in [base_urls] if isinstance(base_urls, str) else base_urls:
        url, slots = split_slots(text)
        spec = EndpointSpec(normalise_url(url), slots)
        if any(spec.url == seen.url for seen in specs):
            raise UsageError(f"--base-url {spec.url} is given twice")
        specs.append(spec)
    return specs


@dataclass(eq=False)
class _Replica:
    spec: EndpointSpec
    backend: OpenAICompatBackend
    rotation: Rotation
    slots: int = 0  # resolved by ``ReplicaPool.resolve_slots``
    busy: int = 0
    latency_s: float = 0.0  # running average; 0 until the first sample: tried first
    probe: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def free(self) -> int:
        return self.slots - self.busy


class ReplicaPool:
    """Several OpenAI-compatible endpoints serving one model, seen as one backend.

    ``identity`` is that of ``anchor`` (default: the first endpoint): the endpoint a run
    folder was begun with, so that adding a replica resumes the same run (same cache keys,
    same folder). ``endpoint_options`` go to each ``OpenAICompatBackend``.
    """

    def __init__(
        self,
        model: str,
        endpoints: Sequence[EndpointSpec],
        api_key: str | None,
        *,
        anchor: str | None = None,
        probe_s: float = 2.0,
        probe_max_s: float = 30.0,
        **endpoint_options: Any,
    ) -> None:
        urls = [spec.url for spec in endpoints]
        if len(endpoints) < 2 or len(set(urls)) != len(urls):
            raise ValueError("a pool needs two or more distinct endpoints")
        self._model = model
        self._anchor = anchor or urls[0]
        if self._anchor not in urls:
            raise ValueError(f"the anchor {self._anchor} is not one of the endpoints")
        self._probe_s, self._probe_max_s = probe_s, probe_max_s
        self._replicas: list[_Replica] = []
        for spec in endpoints:
            rotation = Rotation(spec.url, others_in=self._others_in(spec.url),
                                changed=self._rotation_changed)
            backend = OpenAICompatBackend(model, spec.url, api_key, rotation=rotation,
                                          **endpoint_options)
            self._replicas.append(_Replica(spec, backend, rotation))
        self._room = asyncio.Event()  # set whenever slots are freed or a standing changes
        self._queue_left: Callable[[], int] | None = None  # see ``follow_queue``
        self._unplaced = 0  # samples of requests waiting here for a slot

    # --- what the run asks of a backend ---------------------------------------------------

    def identity(self) -> dict[str, str]:
        return endpoint_identity(self._model, self._anchor)

    def endpoints(self) -> list[dict[str, Any]]:
        """Each endpoint with its samples in flight, for the run's manifest."""
        return [{"base_url": r.spec.url, "samples_in_flight": r.slots or r.spec.slots}
                for r in self._replicas]

    @property
    def ignores_n(self) -> bool:
        """True once a replica was found to answer one choice whatever ``n`` is."""
        return any(r.backend.ignores_n for r in self._replicas)

    @property
    def streams(self) -> bool:
        return any(r.backend.streams for r in self._replicas)

    async def preflight(self) -> None:
        """Each endpoint's own preflight, then the same model on all (``UsageError``)."""
        for replica in self._replicas:  # in order: the first failure is the one reported
            await replica.backend.preflight()
        self._check_same_model()

    async def resolve_slots(self, concurrency: int | None, fallback: int) -> int:
        """Fix each replica's samples in flight and return their sum: ``URL@N``, else
        ``concurrency`` (``--concurrency``), else the server's own limit where it says
        (SGLang), else ``fallback``."""
        for replica in self._replicas:
            found = replica.spec.slots or concurrency or await replica.backend.capacity()
            replica.slots = min(found or fallback, MAX_SLOTS)
        return sum(r.slots for r in self._replicas)

    async def server_setup(self) -> dict[str, Any]:
        """The first endpoint's setup, with ``replicas`` (how many) and, when the others
        state something else (version, quantization, context length), ``replicas_differ``."""
        setups = await asyncio.gather(*(r.backend.server_setup() for r in self._replicas))
        first = setups[0]
        differ = [
            line.replace("served differently: ", f"{r.spec.url}: ")
            for r, setup in zip(self._replicas[1:], setups[1:], strict=True)
            for line in server_differences(first, setup, (self._replicas[0].spec.url, "here"))
        ]
        for line in differ:
            log.warning("replicas served differently: %s", line)
        return {**first, "replicas": len(self._replicas),
                **({"replicas_differ": differ} if differ else {})}

    async def detect_n(self) -> None:
        await asyncio.gather(*(r.backend.detect_n() for r in self._replicas))

    async def generate(self, request: Request) -> list[Completion]:
        completions: list[Completion] = []

        async def keep(completion: Completion) -> None:
            completions.append(completion)

        await self.generate_each(request, keep)
        return completions

    async def generate_each(self, request: Request, deliver: Deliver) -> None:
        """Deliver ``request.n`` completions, placed on replicas with free slots as they
        have room; what a replica taken out of rotation did not deliver is placed again.

        Raises the ``RequestFailed`` of a part that failed for good once the other parts
        are done (what was delivered stays delivered); returns fewer than ``n`` when a
        replica ignores ``n`` (``ignores_n``: the runner sends the rest one by one).
        """
        if request.n < 1:
            raise ValueError(f"a request must ask for at least one completion, not {request.n}")
        if any(r.slots < 1 for r in self._replicas):
            raise RuntimeError("ReplicaPool.resolve_slots must be called before generating")
        unplaced = request.n
        parts: set[asyncio.Task[int]] = set()
        failure: RequestFailed | None = None
        self._unplaced += unplaced
        try:
            while unplaced or parts:
                while unplaced and (replica := self._placeable()) is not None:
                    size = min(unplaced, replica.free)
                    replica.busy += size
                    unplaced -= size
                    self._unplaced -= size
                    parts.add(asyncio.create_task(self._part(replica, request, size, deliver)))
                done = await self._progress(parts, wait_for_room=unplaced > 0)
                for finished in done:
                    parts.discard(finished)
                    try:
                        finished.result()
                    except _Undelivered as left:
                        if isinstance(left.error, OutOfRotation):
                            unplaced += left.count  # placed again, elsewhere
                            self._unplaced += left.count
                        else:
                            failure = failure or left.error
        finally:
            self._unplaced -= unplaced
            for part in parts:
                part.cancel()
        if failure is not None:
            raise failure

    async def _progress(self, parts: set[asyncio.Task[int]], *, wait_for_room: bool
                        ) -> set[asyncio.Task[int]]:
        """Wait until a part ends or, when samples wait to be placed, slots are freed."""
        waiting: set[asyncio.Future[Any]] = set(parts)
        room = None
        if wait_for_room:
            self._room.clear()
            room = asyncio.ensure_future(self._room.wait())
            waiting.add(room)
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if room is not None and room not in done:
            room.cancel()
        return {task for task in parts if task in done}

    async def aclose(self) -> None:
        for replica in self._replicas:
            if replica.probe is not None:
                replica.probe.cancel()
        await asyncio.gather(*(r.backend.aclose() for r in self._replicas))

    # --- placing requests -----------------------------------------------------------------

    def follow_queue(self, samples_left: Callable[[], int]) -> None:
        """Be told how many samples the run has not sent yet (``Runner.unsent``): near the
        end of the queue, a slow replica is given no more work that the fast ones would
        finish sooner (``_worth_it``)."""
        self._queue_left = samples_left

    def _placeable(self) -> _Replica | None:
        """The fastest replica in rotation with a free slot, if sending there is worth it;
        when none is in rotation, any with a free slot (requests then fail or succeed there
        as with one endpoint)."""
        in_rotation = [r for r in self._replicas if r.rotation.in_rotation]
        candidates = [r for r in in_rotation or self._replicas if r.free > 0]
        if not candidates:
            return None
        best = min(candidates, key=lambda r: (r.latency_s, -r.free))
        return best if self._worth_it(best, in_rotation or self._replicas) else None

    def _worth_it(self, replica: _Replica, standing: list[_Replica]) -> bool:
        """Whether ``replica`` (free, but slower than another) would finish a sample sooner
        than the fastest replica, were the sample to wait for a slot there: the wait is the
        work queued ahead of it (not yet sent, or waiting here) over the fast replicas'
        slots, one latency per round. Always when the queue is unknown or long; at its end a
        3x slower replica is left idle rather than given the last samples."""
        fastest = min(standing, key=lambda r: r.latency_s)
        if self._queue_left is None or replica is fastest or not fastest.latency_s:
            return True
        fast_slots = sum(r.slots for r in standing if r.latency_s <= _FAST * fastest.latency_s)
        rounds = (self._queue_left() + self._unplaced) / fast_slots
        return replica.latency_s <= _FAST * fastest.latency_s * (1 + rounds)

    async def _part(self, replica: _Replica, request: Request, size: int,
                    deliver: Deliver) -> int:
        """``size`` samples of ``request`` from one replica; each slot freed as its sample
        arrives, the rest when the part ends. ``_Undelivered`` tells how many are missing
        when it failed."""
        got = 0

        async def take(completion: Completion) -> None:
            nonlocal got
            got += 1
            replica.busy -= 1
            if completion.latency_s is not None:
                replica.latency_s += _SMOOTHING * (completion.latency_s - replica.latency_s) if (
                    replica.latency_s) else completion.latency_s
            self._room.set()
            await deliver(completion)

        try:
            await replica.backend.generate_each(
                Request(request.messages, size, request.sampling), take)
        except RequestFailed as error:
            raise _Undelivered(size - got, error) from None
        finally:
            replica.busy -= size - got
            self._room.set()
        return got

    # --- rotation -------------------------------------------------------------------------

    def _others_in(self, url: str) -> Callable[[], bool]:
        def others_in() -> bool:
            return any(r.rotation.in_rotation for r in self._replicas if r.spec.url != url)

        return others_in

    def _rotation_changed(self, rotation: Rotation) -> None:
        self._room.set()
        replica = next(r for r in self._replicas if r.rotation is rotation)
        if not rotation.in_rotation and (replica.probe is None or replica.probe.done()):
            replica.probe = asyncio.create_task(self._probe(replica))

    async def _probe(self, replica: _Replica) -> None:
        """Probe a replica out of rotation until it answers (or is back by a request)."""
        wait_s = self._probe_s
        while not replica.rotation.in_rotation:
            await asyncio.sleep(wait_s)
            if not replica.rotation.in_rotation and await replica.backend.alive():
                replica.rotation.attempt_succeeded()
            wait_s = min(wait_s * 2, self._probe_max_s)

    def _check_same_model(self) -> None:
        """``UsageError`` naming ``--base-url`` when the replicas do not serve one model."""
        listings = [(r.spec.url, r.backend.listing()) for r in self._replicas]
        listings = [(url, listing) for url, listing in listings if listing is not None]
        ids = {url: listed_ids(listing) for url, listing in listings}
        with_model = [url for url in ids if self._model in ids[url]]
        for url, served in ids.items():
            other = with_model[0] if with_model else next(iter(ids))
            if (self._model in served) != bool(with_model) or (
                    not with_model and set(served) != set(ids[other])):
                what = ", ".join(served[:5]) or "no model"
                raise UsageError(
                    f"--base-url {url} serves {what}, not what {other} serves "
                    f"({self._model if with_model else ', '.join(ids[other][:5])}): every "
                    "--base-url of a run must serve the same model")
        roots = {url: root for url, listing in listings
                 if (root := from_models_listing(listing, self._model).get("root"))}
        if len(set(roots.values())) > 1:
            (first, root), *others = roots.items()
            url, other_root = next((u, r) for u, r in others if r != root)
            raise UsageError(
                f"--base-url {url} serves {self._model} from {other_root}, {first} from "
                f"{root}: every --base-url of a run must serve the same weights")


class _Undelivered(Exception):
    """A part of a request that stopped with ``count`` samples not delivered."""

    def __init__(self, count: int, error: RequestFailed) -> None:
        super().__init__(str(error))
        self.count = count
        self.error = error
