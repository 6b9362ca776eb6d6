"""What the in-process backends (``hf:``, ``vllm:``) share: options, identity, import guard, and
batching.

An in-process engine is driven like an endpoint: the runner keeps up to ``--concurrency``
samples in flight, and ``BatchingBackend`` hands every request waiting at that moment to the
engine as one batch, on one worker thread (engines are not thread-safe, and the event loop must
stay free to log and grade). When a batch fails with ``RequestFailed`` (a prompt longer than the
context, out of memory), its requests are retried one at a time, so only the culprit fails.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Protocol, runtime_checkable

from r1eval.errors import EndpointError, OutOfRotation, RequestFailed, UsageError
from r1eval.types import Completion, Request

__all__ = [
    "BatchingBackend",
    "LocalEngine",
    "LocalModelOptions",
    "existing_model",
    "load_failed",
    "local_identity",
    "require",
    "resolve_model_path",
]

#: Model prefixes and the optional extra each needs.
EXTRAS = {"hf": "hf", "vllm": "vllm"}


@dataclass(frozen=True)
class LocalModelOptions:
    """Settings of an in-process model; ``dtype`` changes the output and is in the identity.

    ``device`` (hf): ``cuda``, ``cpu``, ``cuda:1``...; default: the GPU when present.
    ``batch_size`` (hf): sequences per ``generate`` call (K samples of a question count K).
    ``tensor_parallel_size``, ``gpu_memory_utilization``, ``max_model_len`` (vllm): passed to
    ``vllm.LLM`` as they are. ``data_parallel_size`` (vllm): engines, one process each
    (``r1eval.backends.vllm_ranks``); how the model is served, not what it answers.
    """

    dtype: str = "auto"
    device: str | None = None
    batch_size: int = 16
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if min(self.batch_size, self.tensor_parallel_size, self.data_parallel_size) < 1:
            raise UsageError(
                "batch_size, tensor_parallel_size and data_parallel_size must be at least 1")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise UsageError("gpu_memory_utilization must be in (0, 1]")


def require(module: str, extra: str) -> ModuleType:
    """Import an optional dependency, or fail with one line naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise UsageError(
            f"{extra}: models need the optional package {module!r} "
            f"(pip install 'r1eval[{extra}]'): {error}"
        ) from None


def resolve_model_path(spec: str) -> str:
    """An existing local path made absolute (so a run resumes from any folder), else ``spec``
    unchanged (a Hugging Face Hub id, which the library resolves itself)."""
    if not spec:
        raise UsageError("give the model folder after the prefix, e.g. hf:/models/my-model")
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else spec


def local_identity(kind: str, spec: str, options: LocalModelOptions) -> dict[str, str]:
    """What identifies an in-process model in provenance and cache keys.

    ``base_url`` names the engine, so that downstream tools that group runs by endpoint see
    ``local:hf`` or ``local:vllm``.
    """
    identity = {
        "model": f"{kind}:{resolve_model_path(spec)}",
        "base_url": f"local:{kind}",
        "dtype": options.dtype,
    }
    if kind == "vllm" and options.max_model_len is not None:
        identity["max_model_len"] = str(options.max_model_len)
    return identity


class LocalEngine(Protocol):
    """A model in this process. Every method is called from the same worker thread."""

    def load(self) -> None:
        """Load the model (idempotent); raise ``EndpointError`` when it cannot be loaded."""
        ...

    def generate_batch(self, requests: Sequence[Request]) -> list[list[Completion]]:
        """``request.n`` completions for each request, in order; ``RequestFailed`` when the
        batch cannot be run."""
        ...

    def close(self) -> None:
        """Free the model's memory."""
        ...


@runtime_checkable
class Interruptible(Protocol):
    """An engine whose batch in progress can be stopped from another thread (a process)."""

    def interrupt(self) -> None:
        """Stop the batch in progress, if any; the engine is closed afterwards."""
        ...


_Pending = tuple[Request, "asyncio.Future[list[Completion]]"]


class BatchingBackend:
    """A ``Backend`` over one ``LocalEngine`` or several alike (see the module docstring).

    With several (data-parallel ranks), all share the one queue: a free engine takes its share
    of the requests waiting (all of them when the others are busy), so one that finishes early
    takes more. An engine that raises ``OutOfRotation`` is gone: its batch goes back to the
    queue for the others; when none is left, every request fails with ``EndpointError``.
    """

    def __init__(self, engines: LocalEngine | Sequence[LocalEngine],
                 identity: dict[str, str]) -> None:
        self._engines = list(engines) if isinstance(engines, Sequence) else [engines]
        self._identity = identity
        self._executors = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="r1eval-model")
            for _ in self._engines
        ]
        self._queue: asyncio.Queue[_Pending] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._busy = 0
        self._alive = len(self._engines)
        self._gone: EndpointError | None = None

    def identity(self) -> dict[str, str]:
        return dict(self._identity)

    async def preflight(self) -> None:
        """Load the model now, so that a bad path fails before the run starts."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(
            loop.run_in_executor(executor, engine.load)
            for engine, executor in zip(self._engines, self._executors, strict=True)))

    async def generate(self, request: Request) -> list[Completion]:
        if request.n < 1:
            raise ValueError(f"a request must ask for at least one completion, not {request.n}")
        if self._gone is not None:
            raise self._gone
        future: asyncio.Future[list[Completion]] = asyncio.get_running_loop().create_future()
        self._ensure_workers().put_nowait((request, future))
        return await future

    async def aclose(self) -> None:
        """Stop every engine; a batch still running (the run ended on an error) is
        interrupted where the engine allows it, else awaited."""
        for worker in self._workers:
            worker.cancel()
        for engine in self._engines:
            if isinstance(engine, Interruptible):
                engine.interrupt()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers, self._queue = [], None
        loop = asyncio.get_running_loop()
        closed = await asyncio.gather(
            *(loop.run_in_executor(executor, engine.close)
              for engine, executor in zip(self._engines, self._executors, strict=True)),
            return_exceptions=True)  # every engine is closed, even after one fails to
        for executor in self._executors:
            executor.shutdown(wait=True)
        for outcome in closed:
            if isinstance(outcome, BaseException):
                raise outcome

    def _ensure_workers(self) -> asyncio.Queue[_Pending]:
        if self._queue is None or not self._workers or all(w.done() for w in self._workers):
            self._queue = asyncio.Queue()
            self._busy = 0
            self._workers = [
                asyncio.create_task(self._serve(self._queue, index))
                for index in range(len(self._engines))
            ]
        return self._queue

    async def _serve(self, queue: asyncio.Queue[_Pending], index: int) -> None:
        """Engine ``index``: run its share of the requests waiting as one batch, until
        cancelled or its engine is gone."""
        while True:
            batch = [await queue.get()]
            free = self._alive - self._busy  # this one included
            share = -(-(queue.qsize() + 1) // max(free, 1))
            while len(batch) < share and not queue.empty():
                batch.append(queue.get_nowait())
            self._busy += 1
            try:
                lost = await self._run(batch, index)
            finally:
                self._busy -= 1
            if lost is not None:
                self._lose(queue, lost)
                return

    def _lose(self, queue: asyncio.Queue[_Pending], error: OutOfRotation) -> None:
        """An engine is gone: its batch was requeued; with no engine left, fail everything."""
        self._alive -= 1
        if self._alive > 0:
            return
        self._gone = EndpointError(
            f"every engine of {self._identity['model']} ended (last: {error}); "
            "everything received is saved: run the same command again to resume")
        while not queue.empty():
            _settle(queue.get_nowait()[1], self._gone)

    async def _run(self, batch: list[_Pending], index: int) -> OutOfRotation | None:
        """Run ``batch`` on engine ``index``; the ``OutOfRotation`` of an engine that is gone,
        its unanswered requests back in the queue (or failed, when it was the last)."""
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(
                self._executors[index], self._generate, index,
                [request for request, _ in batch])
        except OutOfRotation as error:
            assert self._queue is not None
            for pending in batch:
                self._queue.put_nowait(pending)
            return error
        except RequestFailed as error:
            if len(batch) == 1:
                _settle(batch[0][1], error)
                return None
            return await self._run_singly(batch, index)
        except Exception as error:  # not swallowed: re-raised by each waiting generate()
            for _, future in batch:
                _settle(future, error)
            return None
        for (_, future), completions in zip(batch, results, strict=True):
            _settle(future, completions)
        return None

    async def _run_singly(self, batch: list[_Pending], index: int) -> OutOfRotation | None:
        """``batch`` one request at a time, so that only the request at fault fails."""
        for position, pending in enumerate(batch):
            lost = await self._run([pending], index)
            if lost is not None:
                assert self._queue is not None
                for rest in batch[position + 1:]:
                    self._queue.put_nowait(rest)
                return lost
        return None

    def _generate(self, index: int, requests: list[Request]) -> list[list[Completion]]:
        engine = self._engines[index]
        engine.load()
        return engine.generate_batch(requests)


def _settle(
    future: asyncio.Future[list[Completion]], outcome: list[Completion] | BaseException
) -> None:
    if future.done():  # the caller gave up (cancelled)
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def existing_model(kind: str, spec: str) -> str:
    """The model's path (or Hub id) to load; an ``EndpointError`` for a missing local folder,
    rather than the library's complaint that it is no valid Hub id."""
    if spec.startswith(("/", ".", "~")) and not Path(spec).expanduser().exists():
        raise EndpointError(f"{kind}:{spec}: no such model folder")
    return resolve_model_path(spec)


def load_failed(kind: str, spec: str, error: BaseException) -> EndpointError:
    """A one-line error for a model that cannot be loaded (missing folder, bad config...)."""
    detail = " ".join(str(error).split())[:300]
    return EndpointError(f"cannot load {kind}:{spec}: {type(error).__name__}: {detail}")
