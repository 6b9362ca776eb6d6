"""The validated configuration of a run: defaults < config file < environment < flags."""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from r1eval.backends.local import LocalModelOptions
from r1eval.backends.replicas import split_slots
from r1eval.backends.thinking import check_reasoning_effort, parse_json_controls
from r1eval.errors import UsageError
from r1eval.flags import flag_name
from r1eval.grading.final_answer import DEFAULT_DELIMITERS, TraceFormat, trace_formats
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

    model: str = Field(min_length=1, description="the model's name as the endpoint knows it")
    # one endpoint, or several replicas of the model (each ``URL`` or ``URL@N``)
    base_url: str | list[str] | None = None
    api_key_env: str = "OPENAI_API_KEY"
    tasks: list[str] = Field(
        min_length=1, description="comma-separated task names: see r1eval tasks")
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
    # The reasoning trace formats recognised (r1eval.grading.final_answer.TRACE_FORMATS,
    # or "OPEN CLOSE")
    reasoning_delimiters: list[str] = Field(default=list(DEFAULT_DELIMITERS), min_length=1)
    # Thinking controls (r1eval.backends.thinking), sent as given and part of the run's identity
    reasoning_effort: str | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    system_prompt: str | None = Field(default=None, min_length=1)
    extra_body: dict[str, Any] | None = None
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
    data_parallel_size: int = Field(default=1, ge=1, le=64)
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    max_model_len: int | None = Field(default=None, ge=1)
    trust_remote_code: bool = False

    def local_options(self) -> LocalModelOptions:
        """The settings of an in-process model (unused for endpoints)."""
        return LocalModelOptions(
            dtype=self.dtype, device=self.device, batch_size=self.batch_size,
            tensor_parallel_size=self.tensor_parallel_size,
            data_parallel_size=self.data_parallel_size,
            gpu_memory_utilization=self.gpu_memory_utilization,
            max_model_len=self.max_model_len, trust_remote_code=self.trust_remote_code,
        )

    @field_validator("data_dir", "task_dir", "prices")
    @classmethod
    def _resolve(cls, value: Path | None) -> Path | None:
        """Absolute, as recorded in run.json: report and regrade read them again, maybe
        from another working directory."""
        return None if value is None else value.expanduser().resolve()

    @field_validator("tasks", "reasoning_delimiters", mode="before")
    @classmethod
    def _split_tasks(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("base_url", mode="before")
    @classmethod
    def _one_or_more_urls(cls, value: Any) -> Any:
        """A list of one is that one URL (run.json and the run folder's name stay as they
        were with one endpoint); an empty one is none."""
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            value = [v.strip() for v in value if v.strip()]
            return None if not value else value[0] if len(value) == 1 else value
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("base_url")
    @classmethod
    def _known_slots(cls, value: str | list[str] | None) -> str | list[str] | None:
        for text in [value] if isinstance(value, str) else value or []:
            split_slots(text)  # a ValueError names the bad one
        return value

    @field_validator("reasoning_delimiters")
    @classmethod
    def _known_delimiters(cls, value: list[str]) -> list[str]:
        trace_formats(value)  # a ValueError names the bad one
        return value

    @field_validator("reasoning_effort")
    @classmethod
    def _known_effort(cls, value: str | None) -> str | None:
        return check_reasoning_effort(value)

    def trace_formats(self) -> tuple[TraceFormat, ...]:
        """The reasoning delimiters of this run (``r1eval.grading.final_answer``)."""
        return trace_formats(self.reasoning_delimiters)

    def sampling(self) -> SamplingParams:
        """The sampling parameters sent: the protocol's, each overridden by an explicit value."""
        base = R1_SAMPLING if self.protocol == "r1" else SamplingParams()
        return SamplingParams(
            temperature=self.temperature if self.temperature is not None else base.temperature,
            top_p=self.top_p if self.top_p is not None else base.top_p,
            max_tokens=self.max_tokens if self.max_tokens is not None else base.max_tokens,
            reasoning_effort=self.reasoning_effort,
            chat_template_kwargs=self.chat_template_kwargs,
            system_prompt=self.system_prompt,
            extra_body=self.extra_body,
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
    """Merge the layers (later wins) and validate; one clear line per problem found, naming
    the flag, environment variable or config key the bad value came from."""
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    if config_file is not None:
        from_file = read_config_file(config_file)
        merged.update(from_file)
        origin.update({key: f"{key} in {config_file}" for key in from_file})
    from_env = from_environment(environ)
    merged.update(from_env)
    origin.update({key: ENV_PREFIX + key.upper() for key in from_env})
    given = {k: v for k, v in flags.items() if v is not None}
    merged.update(given)
    origin.update({key: flag_name(key) for key in given})
    parse_json_controls(merged, origin)
    try:
        return RunConfig(**merged)
    except ValidationError as error:
        problems = "; ".join(_problem(e, origin) for e in error.errors())
        raise UsageError(problems) from None


def _problem(error: Mapping[str, Any], origin: Mapping[str, str]) -> str:
    """One validation error in r1eval's words, naming where the value came from."""
    loc = error["loc"]
    field = str(loc[0]) if loc else ""
    kind, context = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        return f"{origin.get(field, field)} is not a setting r1eval knows"
    where = origin.get(field, flag_name(field))
    if kind == "missing":
        meaning = RunConfig.model_fields[field].description
        return f"{where} is required" + (f" ({meaning})" if meaning else "")
    value = error.get("input")
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where} must be a finite number, not {value}"
    if kind == "value_error" and "error" in context:  # our own validators' words
        return f"{where}: {context['error']}"
    words = _RULES.get(kind)
    if words is None:
        return f"{where}: {error['msg']}"
    limits = {name: f"{limit:g}" if isinstance(limit, float) else limit
              for name, limit in context.items()}
    said = f"{where} must {words.format(**limits)}"
    return said if kind in _LIMITS else f"{said}, not {value!r}"


_LIMITS = ("greater_than_equal", "greater_than", "less_than_equal", "less_than", "too_short")

# pydantic's error types -> what the value must do, in r1eval's words.
_RULES = {
    "greater_than_equal": "be at least {ge}",
    "greater_than": "be more than {gt}",
    "less_than_equal": "be at most {le}",
    "less_than": "be less than {lt}",
    "too_short": "not be empty",
    "int_parsing": "be a whole number",
    "int_from_float": "be a whole number",
    "int_type": "be a whole number",
    "float_parsing": "be a number",
    "float_type": "be a number",
    "finite_number": "be a finite number",
    "bool_parsing": "be true or false",
    "bool_type": "be true or false",
    "string_type": "be text",
    "list_type": "be a list",
    "literal_error": "be one of {expected}",
}
