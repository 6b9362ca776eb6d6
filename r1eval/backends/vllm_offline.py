"""``--model vllm:PATH``: vLLM's offline engine in this process (``pip install 'r1eval[vllm]'``).

Every request waiting at a moment goes to one ``LLM.chat`` call (vLLM schedules the batch
itself), and a request's K samples are one vLLM request with ``n=K``, sharing the prompt's
prefill, exactly as ``vllm serve`` does with ``n``. The prompt is the model's chat template,
applied by ``LLM.chat``. A sampling setting left at None takes the model's
``generation_config`` default, as ``vllm serve`` does (``LLM.get_default_sampling_params``);
``max_tokens`` None generates up to the context length. ``tensor_parallel_size``,
``gpu_memory_utilization``, ``max_model_len`` and ``dtype`` are passed to ``vllm.LLM``;
``data_parallel_size`` K > 1 runs K such engines, one process each
(``r1eval.backends.vllm_ranks``).
Token counts are each sample's own (``shared_by`` 1).

Written against vLLM's documented offline API (``LLM``, ``SamplingParams``, ``LLM.chat`` with a
list of conversations, ``RequestOutput.outputs[i].text/token_ids/finish_reason``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from r1eval.backends.local import (
    BatchingBackend,
    LocalEngine,
    LocalModelOptions,
    existing_model,
    load_failed,
    local_identity,
    require,
    resolve_model_path,
)
from r1eval.errors import RequestFailed
from r1eval.types import Completion, Request, Usage

__all__ = ["VLLMBackend", "VLLMEngine", "engine_kwargs", "sampling_kwargs"]

#: Settings that ``vllm serve`` takes from the model's generation config when a request
#: leaves them out.
MODEL_DEFAULTS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")


def engine_kwargs(spec: str, options: LocalModelOptions) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM`` for a model folder (or Hub id)."""
    kwargs: dict[str, Any] = {
        "model": resolve_model_path(spec),
        "dtype": options.dtype,
        "tensor_parallel_size": options.tensor_parallel_size,
        "gpu_memory_utilization": options.gpu_memory_utilization,
        "trust_remote_code": options.trust_remote_code,
    }
    if options.max_model_len is not None:
        kwargs["max_model_len"] = options.max_model_len
    return kwargs


def sampling_kwargs(request: Request, defaults: object) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for ``request``, all K samples in one.

    ``defaults`` is ``LLM.get_default_sampling_params()``: the model's own settings.
    """
    kwargs = {name: getattr(defaults, name) for name in MODEL_DEFAULTS if hasattr(defaults, name)}
    sampling = request.sampling
    given = {"temperature": sampling.temperature, "top_p": sampling.top_p}
    kwargs.update({name: value for name, value in given.items() if value is not None})
    kwargs.update(
        n=request.n,
        max_tokens=sampling.max_tokens,
        seed=sampling.seed,
        stop=list(sampling.stop) or None,
    )
    return kwargs


def completions(output: Any, latency_s: float, model: str) -> list[Completion]:
    """The samples of one ``RequestOutput``."""
    prompt_tokens = len(output.prompt_token_ids or ())
    return [
        Completion(
            text=sample.text,
            reasoning=None,
            finish_reason=sample.finish_reason,
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=len(sample.token_ids)),
            latency_s=latency_s,
            model=model,
        )
        for sample in output.outputs
    ]


class VLLMEngine:
    """A ``vllm.LLM``, created on first use."""

    def __init__(self, spec: str, options: LocalModelOptions) -> None:
        self._spec = spec
        self._options = options
        self._name = local_identity("vllm", spec, options)["model"]
        self._vllm: Any = None
        self._llm: Any = None

    def load(self) -> None:
        if self._llm is not None:
            return
        vllm = require("vllm", "vllm")
        existing_model("vllm", self._spec)
        try:
            self._llm = vllm.LLM(**engine_kwargs(self._spec, self._options))
        except (OSError, ValueError, RuntimeError) as error:  # no such model, no GPU, ...
            raise load_failed("vllm", self._spec, error) from None
        self._vllm = vllm

    def generate_batch(self, requests: Sequence[Request]) -> list[list[Completion]]:
        defaults = self._llm.get_default_sampling_params()
        params = [self._vllm.SamplingParams(**sampling_kwargs(r, defaults)) for r in requests]
        started = time.perf_counter()
        try:
            outputs = self._llm.chat(
                [list(request.messages) for request in requests],
                sampling_params=params,
                use_tqdm=False,
            )
        except ValueError as error:  # e.g. a prompt longer than max_model_len
            detail = " ".join(str(error).split())[:300]
            raise RequestFailed(f"{self._name}: {detail}", transient=False) from None
        latency = time.perf_counter() - started
        return [completions(output, latency, self._name) for output in outputs]

    def close(self) -> None:
        shutdown = getattr(self._llm, "shutdown", None)
        if callable(shutdown):
            shutdown()
        self._llm = None


class VLLMBackend(BatchingBackend):
    """``vllm:PATH`` as a ``Backend``; the engine starts on ``preflight`` or the first request.

    Give the run a high ``--concurrency`` (the default, 256): it is the number of samples
    that vLLM can schedule together.
    """

    def __init__(self, spec: str, options: LocalModelOptions | None = None) -> None:
        options = options or LocalModelOptions()
        engines: list[LocalEngine] = [VLLMEngine(spec, options)]
        if options.data_parallel_size > 1:  # one engine per rank, each in a process
            from r1eval.backends.vllm_ranks import RankEngine, gpu_slices

            slices = gpu_slices(options.data_parallel_size, options.tensor_parallel_size,
                                os.environ)
            engines = [RankEngine(rank, spec, options, gpus) for rank, gpus in enumerate(slices)]
        super().__init__(engines, local_identity("vllm", spec, options))
