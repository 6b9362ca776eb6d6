"""``--data-parallel-size K`` with ``--model vllm:PATH``: K independent vLLM engines, one process
each (``multiprocessing`` spawn), rank i on GPUs ``[i*tp, (i+1)*tp)`` of the visible ones.

Each rank builds ``vllm.LLM`` exactly as one engine in this process would
(``VLLMEngine``, ``tensor_parallel_size=tp``), and the rank's ``CUDA_VISIBLE_DEVICES`` is its
slice, set before vLLM is imported. The ranks do not coordinate: a dense model needs no
coordination, and vLLM's coordinated data parallelism (``VLLM_DP_RANK``/``VLLM_DP_SIZE``) is
meant for expert-parallel MoE models and waits for every rank at each step, so a rank that
finishes its work early hangs the others. ``vllm.LLM(data_parallel_size=K)`` in one process is
not supported by vLLM. The run's requests are shared by ``BatchingBackend``: whichever rank is
free takes from the one queue.

A rank whose process ends (killed, crashed) raises ``OutOfRotation`` for the batch it held:
those requests go to the other ranks, and no sample is lost.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import signal
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from r1eval.backends.local import LocalModelOptions
from r1eval.backends.vllm_offline import VLLMEngine
from r1eval.errors import EndpointError, OutOfRotation, R1EvalError, RequestFailed, UsageError
from r1eval.types import Completion, Request

__all__ = ["RankEngine", "check_data_parallel", "gpu_slices"]

#: Seconds a rank is given to shut its engine down before it is terminated.
STOP_S = 60.0


def gpu_slices(data_parallel: int, tensor_parallel: int, environ: Mapping[str, str]) -> list[str]:
    """Each rank's ``CUDA_VISIBLE_DEVICES``: ``tensor_parallel`` consecutive GPUs of those
    ``CUDA_VISIBLE_DEVICES`` lists (all of them when it is unset: 0, 1, ...)."""
    needed = data_parallel * tensor_parallel
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        visible = [str(gpu) for gpu in range(needed)]
    else:
        visible = [gpu.strip() for gpu in listed.split(",") if gpu.strip()]
        if len(visible) < needed:
            raise UsageError(
                f"--data-parallel-size {data_parallel} x --tensor-parallel-size "
                f"{tensor_parallel} needs {needed} GPUs; CUDA_VISIBLE_DEVICES lists "
                f"{len(visible)} ({listed!r})")
    return [",".join(visible[rank * tensor_parallel:(rank + 1) * tensor_parallel])
            for rank in range(data_parallel)]


def check_data_parallel(
    model_kind: str | None, data_parallel: int, tensor_parallel: int,
    environ: Mapping[str, str],
) -> None:
    """``UsageError`` for ``--data-parallel-size`` where it cannot apply."""
    if data_parallel == 1:
        return
    if model_kind != "vllm":
        raise UsageError("--data-parallel-size applies to --model vllm:PATH only (for "
                         "replicas of a served model give --base-url once per replica)")
    gpu_slices(data_parallel, tensor_parallel, environ)


def _serve_rank(
    connection: Connection, spec: str, options: LocalModelOptions, devices: str
) -> None:
    """A rank's process: load the engine on its GPUs, then answer batches until told to stop
    (``None``) or until the parent is gone."""
    os.environ["CUDA_VISIBLE_DEVICES"] = devices  # before vLLM (and torch) are imported
    engine = VLLMEngine(spec, options)
    try:
        engine.load()
    except Exception as error:  # reported to the parent, which stops the run
        connection.send(_failure(error))
        return
    except KeyboardInterrupt:  # Ctrl-C, or the parent stopping a busy rank (interrupt)
        return
    connection.send(("ok", None))
    try:
        while True:
            try:
                batch = connection.recv()
            except EOFError:  # the parent is gone
                return
            if batch is None:
                return
            try:
                connection.send(("ok", engine.generate_batch(batch)))
            except Exception as error:  # re-raised in the parent
                connection.send(_failure(error))
    except (BrokenPipeError, ConnectionResetError, KeyboardInterrupt):  # the parent is gone,
        return  # or stops the rank (Ctrl-C reaches the whole process group)
    finally:
        engine.close()


def _failure(error: BaseException) -> tuple[str, Any]:
    """An error as plain data (r1eval's errors take keyword arguments pickle would lose)."""
    if isinstance(error, RequestFailed):
        return ("request", (str(error), error.transient, error.status))
    kind = "usage" if isinstance(error, UsageError) else (
        "endpoint" if isinstance(error, R1EvalError) else "bug")
    return (kind, f"{type(error).__name__}: {error}" if kind == "bug" else str(error))


def _raise(kind: str, value: Any) -> None:
    if kind == "request":
        message, transient, status = value
        raise RequestFailed(message, transient=transient, status=status)
    if kind == "usage":
        raise UsageError(value)
    if kind == "endpoint":
        raise EndpointError(value)
    raise RuntimeError(value)


class RankEngine:
    """One data-parallel rank seen from this process: a ``LocalEngine`` whose model lives in
    a process of its own, started by ``load``."""

    def __init__(self, rank: int, spec: str, options: LocalModelOptions, devices: str) -> None:
        self.rank = rank
        self.devices = devices
        self._spec = spec
        self._options = options
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        self._busy = False

    def load(self) -> None:
        if self._process is not None:
            return
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        # not a daemon: vLLM starts processes of its own, which a daemon may not
        process = context.Process(
            target=_serve_rank, args=(theirs, self._spec, self._options, self.devices),
            name=f"r1eval-vllm-rank{self.rank}")
        process.start()
        theirs.close()  # the rank sees end of file when this process is gone
        self._process, self._connection = process, ours
        atexit.register(self.close)
        try:
            self._answer()
        except OutOfRotation as error:
            raise EndpointError(f"vllm:{self._spec}: {error}") from None

    def generate_batch(self, requests: Sequence[Request]) -> list[list[Completion]]:
        assert self._connection is not None, "load() first"
        self._busy = True
        try:
            self._connection.send(list(requests))
            answer: list[list[Completion]] = self._answer()
        except (BrokenPipeError, ConnectionResetError, OSError):
            raise self._lost() from None
        finally:
            self._busy = False
        return answer

    def interrupt(self) -> None:
        """Stop a batch in progress (from any thread): the rank shuts its engine down and
        ends, as on Ctrl-C; ``close`` then finds it ended."""
        process = self._process
        if self._busy and process is not None and process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGINT)

    def close(self) -> None:
        """Stop the rank: ask, then terminate, then kill; never leaves it running."""
        atexit.unregister(self.close)
        process, connection = self._process, self._connection
        self._process = self._connection = None
        if process is None or connection is None:
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, OSError):
            connection.send(None)
        process.join(STOP_S)
        if process.is_alive():
            process.terminate()
            process.join(5)
        if process.is_alive():
            process.kill()
            process.join()
        connection.close()

    def _answer(self) -> Any:
        """The rank's reply, or ``OutOfRotation`` when its process ends first."""
        assert self._process is not None and self._connection is not None
        ready = wait([self._connection, self._process.sentinel])
        if self._connection in ready:
            try:
                kind, value = self._connection.recv()
            except (EOFError, ConnectionResetError, OSError):
                raise self._lost() from None
            if kind != "ok":
                _raise(kind, value)
            return value
        raise self._lost()

    def _lost(self) -> OutOfRotation:
        process = self._process
        if process is not None:
            process.join(5)
        code = None if process is None else process.exitcode
        return OutOfRotation(
            f"vllm data-parallel rank {self.rank} (GPUs {self.devices}) ended "
            f"(exit code {code})", transient=True)
