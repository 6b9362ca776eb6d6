"""The validated configuration of a run: defaults < config file < environment < flags."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from r1eval.backends.local import LocalModelOptions
from r1eval.errors import UsageError
from r1eval.response import DEFAULT_DELIMITERS, TraceFormat, trace_formats
from r1eval.types import SamplingParams

ENV_PREFIX = "R1EVAL_"

#: Samples in flight when the server does not say how many it generates at once: vLLM's
#: default ``max_num_seqs`` on most GPUs (vLLM publishes no limit; SGLang does).
DEFAULT_SEQUENCES = 256

# DeepSeek-R1 paper and model card: sampling, length limit and samples per question.
R1_SAMPLING = SamplingParams(temperature=0.6, top_p=0.95, max_tokens=32768)


class RunConfig(BaseModel):
    """Everything a user can set for ``r1eval run``; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    base_url: str | None = Field(default=None, min_length=1)
    api_key_env: str = "OPENAI_API_KEY"
    tasks: list[str] = Field(min_length=1)
    limit: int | None = Field(default=None, ge=1)
    samples: int | None = Field(default=None, ge=1, le=1024)
    protocol: Literal["r1", "none"] = "none"
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    run_dir: Path | None = None
    data_dir: Path | None = None
    task_dir: Path | None = None
    # samples in flight; None: the server's capacity where it says, else DEFAULT_SEQUENCES
    concurrency: int | None = Field(default=None, ge=1, le=4096)
    timeout: float = Field(default=1800.0, gt=0, le=86_400)
    idle_timeout: float = Field(default=300.0, gt=0, le=86_400)
    stream: Literal["auto", "on", "off"] = "auto"
    max_attempts: int = Field(default=8, ge=1, le=100)
    max_response_mib: int = Field(default=32, ge=1, le=4096)
    grader_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=0, le=256)
    grade_timeout: float = Field(default=30.0, gt=0, le=3600)
    # The reasoning trace formats recognised (r1eval.response.TRACE_FORMATS, or "OPEN CLOSE")
    reasoning_delimiters: list[str] = Field(default=list(DEFAULT_DELIMITERS), min_length=1)
    price_in: float | None = Field(default=None, ge=0, le=10_000)
    price_out: float | None = Field(default=None, ge=0, le=10_000)
    prices: Path | None = None
    max_cost: float | None = Field(default=None, gt=0)
    max_tokens_total: int | None = Field(default=None, ge=1)
    # In-process models (--model hf:PATH / vllm:PATH)
    dtype: str = "auto"
    device: str | None = None
    batch_size: int = Field(default=16, ge=1, le=4096)
    tensor_parallel_size: int = Field(default=1, ge=1, le=64)
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    max_model_len: int | None = Field(default=None, ge=1)
    trust_remote_code: bool = False

    def local_options(self) -> LocalModelOptions:
        """The settings of an in-process model (unused for endpoints)."""
        return LocalModelOptions(
            dtype=self.dtype, device=self.device, batch_size=self.batch_size,
            tensor_parallel_size=self.tensor_parallel_size,
            gpu_memory_utilization=self.gpu_memory_utilization,
            max_model_len=self.max_model_len, trust_remote_code=self.trust_remote_code,
        )

    @field_validator("tasks", "reasoning_delimiters", mode="before")
    @classmethod
    def _split_tasks(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("reasoning_delimiters")
    @classmethod
    def _known_delimiters(cls, value: list[str]) -> list[str]:
        trace_formats(value)  # a ValueError names the bad one
        return value

    def trace_formats(self) -> tuple[TraceFormat, ...]:
        """The reasoning delimiters of this run (``r1eval.response``)."""
        return trace_formats(self.reasoning_delimiters)

    def sampling(self) -> SamplingParams:
        """The sampling parameters sent: the protocol's, each overridden by an explicit value."""
        base = R1_SAMPLING if self.protocol == "r1" else SamplingParams()
        return SamplingParams(
            temperature=self.temperature if self.temperature is not None else base.temperature,
            top_p=self.top_p if self.top_p is not None else base.top_p,
            max_tokens=self.max_tokens if self.max_tokens is not None else base.max_tokens,
        )

    def samples_for(self, r1_default: int) -> int:
        """Samples per question: --samples, else the protocol's per-task default, else 1."""
        if self.samples is not None:
            return self.samples
        return r1_default if self.protocol == "r1" else 1


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise UsageError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"config file {path} is not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise UsageError(f"config file {path} is not UTF-8 text") from None
    except OSError as error:  # a folder, no permission
        raise UsageError(f"config file {path} cannot be read ({error.strerror})") from None
    return data


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """``R1EVAL_<FIELD>`` variables, e.g. R1EVAL_DATA_DIR or R1EVAL_BASE_URL."""
    values = {}
    for name in RunConfig.model_fields:
        value = environ.get(ENV_PREFIX + name.upper())
        if value not in (None, ""):
            values[name] = value
    return values


def build_config(
    flags: Mapping[str, Any], config_file: Path | None, environ: Mapping[str, str]
) -> RunConfig:
    """Merge the layers (later wins) and validate; one clear line per problem found."""
    merged: dict[str, Any] = {}
    if config_file is not None:
        merged.update(read_config_file(config_file))
    merged.update(from_environment(environ))
    merged.update({k: v for k, v in flags.items() if v is not None})
    try:
        return RunConfig(**merged)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in error.errors()
        )
        raise UsageError(f"invalid configuration: {problems}") from None
