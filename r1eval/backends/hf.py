"""``--model hf:PATH``: a transformers checkpoint in this process (``pip install 'r1eval[hf]'``).

The prompt is the model's own chat template (``add_generation_prompt=True``), tokenised without
adding special tokens again, as vLLM does. Each request's K samples are K rows of a left-padded
batch; rows of similar length are batched together, ``batch_size`` rows per ``generate`` call,
on the GPU when there is one. Sampling follows the request: temperature 0 is greedy, a sampling
parameter left at None keeps the model's ``generation_config`` default, ``max_tokens`` None
generates up to the context length, ``seed`` seeds torch before each batch (reproducible for
the same batches). ``finish_reason`` is ``stop`` (end-of-sequence token or stop string) or
``length``; token counts are each sample's own (``shared_by`` 1), the end token included.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from r1eval.backends.local import (
    BatchingBackend,
    LocalModelOptions,
    existing_model,
    load_failed,
    local_identity,
    require,
)
from r1eval.errors import RequestFailed, UsageError
from r1eval.types import Completion, Request, SamplingParams, Usage

__all__ = ["TransformersBackend", "TransformersEngine", "generation_kwargs"]


def generation_kwargs(sampling: SamplingParams, default_do_sample: bool) -> dict[str, Any]:
    """``generate`` keyword arguments for the sampling settings of a request (no token limit).

    Greedy decoding gets no temperature or top-p (transformers warns about them when it is not
    sampling); a setting left at None is not passed, so the model's default applies.
    """
    greedy = sampling.temperature == 0 or (sampling.temperature is None and not default_do_sample)
    if greedy:
        return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    kwargs: dict[str, Any] = {"do_sample": True}
    if sampling.temperature is not None:
        kwargs["temperature"] = sampling.temperature
    if sampling.top_p is not None:
        kwargs["top_p"] = sampling.top_p
    return kwargs


@dataclass(frozen=True)
class _Row:
    """One sample to generate: ``request`` is its index in the batch."""

    request: int
    prompt: list[int]


class TransformersEngine:
    """A causal LM and its tokenizer, loaded on first use."""

    def __init__(self, spec: str, options: LocalModelOptions) -> None:
        self._spec = spec
        self._options = options
        self._name = local_identity("hf", spec, options)["model"]
        self._model: Any = None
        self._tokenizer: Any = None
        self._torch: Any = None
        self._pad = 0

    def load(self) -> None:
        if self._model is not None:
            return
        torch = require("torch", "hf")
        transformers = require("transformers", "hf")
        path, remote = existing_model("hf", self._spec), self._options.trust_remote_code
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(path, trust_remote_code=remote)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                path, dtype=self._options.dtype, trust_remote_code=remote
            )
        except (OSError, ValueError) as error:
            raise load_failed("hf", self._spec, error) from None
        if not tokenizer.chat_template:
            raise UsageError(f"hf:{self._spec} has no chat template (tokenizer_config.json)")
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        device = self._options.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._model = model.to(device).eval()
        self._tokenizer, self._torch = tokenizer, torch
        self._pad = int(tokenizer.pad_token_id)

    def close(self) -> None:
        self._model = self._tokenizer = None
        if self._torch is not None and self._torch.cuda.is_available():
            self._torch.cuda.empty_cache()

    def generate_batch(self, requests: Sequence[Request]) -> list[list[Completion]]:
        rows = [
            _Row(index, prompt)
            for index, request in enumerate(requests)
            for prompt in [self._encode(request)] * request.n
        ]
        groups: dict[SamplingParams, list[_Row]] = {}
        for row in rows:
            groups.setdefault(requests[row.request].sampling, []).append(row)
        done: list[list[Completion]] = [[] for _ in requests]
        for sampling, group in groups.items():
            group.sort(key=lambda row: -len(row.prompt))  # similar lengths, little padding
            for chunk in _chunks(group, self._options.batch_size):
                for row, completion in zip(chunk, self._generate(chunk, sampling), strict=True):
                    done[row.request].append(completion)
        return done

    def _encode(self, request: Request) -> list[int]:
        text = self._tokenizer.apply_chat_template(
            list(request.messages), add_generation_prompt=True, tokenize=False
        )
        ids: list[int] = self._tokenizer(text, add_special_tokens=False)["input_ids"]
        limit = self._context_length()
        wanted = len(ids) + (request.sampling.max_tokens or 1)
        if wanted > limit:
            raise RequestFailed(
                f"{self._name}: {len(ids)} prompt tokens + {request.sampling.max_tokens or 1} "
                f"to generate exceed the model's context of {limit} tokens",
                transient=False,
            )
        return ids

    def _context_length(self) -> int:
        config = self._model.config
        limit = getattr(config, "max_position_embeddings", None)
        if not isinstance(limit, int):
            limit = getattr(self._tokenizer, "model_max_length", None)
        return limit if isinstance(limit, int) and limit > 0 else 1 << 30

    def _generate(self, rows: list[_Row], sampling: SamplingParams) -> list[Completion]:
        torch, tokenizer = self._torch, self._tokenizer
        batch = self._left_padded([row.prompt for row in rows])
        width = batch["input_ids"].shape[1]
        limit = sampling.max_tokens or self._context_length() - max(len(r.prompt) for r in rows)
        kwargs = generation_kwargs(sampling, bool(self._model.generation_config.do_sample))
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=tokenizer)
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        started = time.perf_counter()
        try:
            with torch.inference_mode():
                output = self._model.generate(
                    **batch, max_new_tokens=limit, pad_token_id=tokenizer.pad_token_id, **kwargs
                )
        except torch.OutOfMemoryError as error:
            raise RequestFailed(f"{self._name}: out of memory ({error})", transient=True) from None
        latency = time.perf_counter() - started
        return [
            self._completion(row, generated.tolist(), limit, sampling, latency)
            for row, generated in zip(rows, output[:, width:], strict=True)
        ]

    def _left_padded(self, prompts: list[list[int]]) -> dict[str, Any]:
        """Input ids and attention mask, padded on the left (generation appends on the right)."""
        torch, width = self._torch, max(len(prompt) for prompt in prompts)
        ids = torch.full((len(prompts), width), self._tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, prompt in enumerate(prompts):
            ids[i, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[i, width - len(prompt) :] = 1
        device = self._model.device
        return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}

    def _completion(
        self, row: _Row, generated: list[int], limit: int, sampling: SamplingParams, latency: float
    ) -> Completion:
        ends = self._end_tokens()
        length = next((i + 1 for i, token in enumerate(generated) if token in ends), None)
        tokens = generated[:length] if length is not None else _unpadded(generated, self._pad)
        text = self._tokenizer.decode(tokens, skip_special_tokens=True)
        cut = min((i for s in sampling.stop if (i := text.find(s)) >= 0), default=None)
        if cut is not None:
            text = text[:cut]
        stopped = length is not None or cut is not None or len(tokens) < limit
        return Completion(
            text=text,
            reasoning=None,
            finish_reason="stop" if stopped else "length",
            usage=Usage(prompt_tokens=len(row.prompt), completion_tokens=len(tokens)),
            latency_s=latency,
            model=self._name,
        )

    def _end_tokens(self) -> set[int]:
        ends = self._model.generation_config.eos_token_id
        if ends is None:
            ends = self._tokenizer.eos_token_id
        return set(ends) if isinstance(ends, list) else {ends}


def _unpadded(tokens: list[int], pad: int) -> list[int]:
    """Without the padding that follows a row that stopped early (on a stop string)."""
    end = len(tokens)
    while end and tokens[end - 1] == pad:
        end -= 1
    return tokens[:end]


def _chunks(rows: list[_Row], size: int) -> Iterator[list[_Row]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class TransformersBackend(BatchingBackend):
    """``hf:PATH`` as a ``Backend``; the model loads on ``preflight`` or the first request."""

    def __init__(self, spec: str, options: LocalModelOptions | None = None) -> None:
        options = options or LocalModelOptions()
        super().__init__(TransformersEngine(spec, options), local_identity("hf", spec, options))
