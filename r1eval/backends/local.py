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
from typing import Protocol

from r1eval.errors import EndpointError, RequestFailed, UsageError
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
    ``vllm.LLM`` as they are.
    """

    dtype: str = "auto"
    device: str | None = None
    batch_size: int = 16
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.tensor_parallel_size < 1:
            raise UsageError("batch_size and tensor_parallel_size must be at least 1")
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


_Pending = tuple[Request, "asyncio.Future[list[Completion]]"]


class BatchingBackend:
    """A ``Backend`` over a ``LocalEngine`` (see the module docstring)."""

    def __init__(self, engine: LocalEngine, identity: dict[str, str]) -> None:
        self._engine = engine
        self._identity = identity
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="r1eval-model")
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task[None] | None = None

    def identity(self) -> dict[str, str]:
        return dict(self._identity)

    async def preflight(self) -> None:
        """Load the model now, so that a bad path fails before the run starts."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._engine.load)

    async def generate(self, request: Request) -> list[Completion]:
        if request.n < 1:
            raise ValueError(f"a request must ask for at least one completion, not {request.n}")
        future: asyncio.Future[list[Completion]] = asyncio.get_running_loop().create_future()
        self._ensure_worker().put_nowait((request, future))
        return await future

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = self._queue = None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._engine.close)
        self._executor.shutdown(wait=True)

    def _ensure_worker(self) -> asyncio.Queue[_Pending]:
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._serve(self._queue))
        return self._queue

    async def _serve(self, queue: asyncio.Queue[_Pending]) -> None:
        """Run every request waiting at once as one batch, until cancelled."""
        while True:
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            await self._run(batch)

    async def _run(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(
                self._executor, self._generate, [request for request, _ in batch]
            )
        except RequestFailed as error:
            if len(batch) == 1:
                _settle(batch[0][1], error)
                return
            for pending in batch:  # one at a time: only the request at fault fails
                await self._run([pending])
            return
        except Exception as error:  # not swallowed: re-raised by each waiting generate()
            for _, future in batch:
                _settle(future, error)
            return
        for (_, future), completions in zip(batch, results, strict=True):
            _settle(future, completions)

    def _generate(self, requests: list[Request]) -> list[list[Completion]]:
        self._engine.load()
        return self._engine.generate_batch(requests)


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
