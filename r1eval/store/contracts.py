"""The run folder's contracts, as typed models: ``run.json`` (``Manifest``), ``scores.json``
(``Scores``, one ``TaskScore`` a task) and the sample log's records (``CompletionRecord``,
``GradeRecord``, ``ErrorRecord``).

Every model keeps the fields it does not declare (``extra="allow"``) and writes back only the
fields its file held (``exclude_unset``): a file read and written again loses nothing, and a
field added by a later release is carried along. Fields added over the releases have defaults,
so every file written so far reads.

Versions: ``run.json`` records the format of each of the folder's files (``formats``); a
manifest without it is of the first formats (every folder written before it was recorded).
``scores.json`` and the log lines do not repeat it: ``scores.json`` stays byte for byte what
it always was, and the log is not made longer by 100,000 copies of a number. A folder of a
format newer than this release reads is refused (``check_formats``), never half-read.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from r1eval.errors import RunFolderError

#: The format of each run file this release writes (and the newest it reads).
FORMATS: dict[str, int] = {"run.json": 1, "scores.json": 1, "samples.jsonl": 1}

Number = int | float  # kept as written: an int stays an int, so scores.json stays byte-identical


class Contract(BaseModel):
    """A run file's object: typed where r1eval reads it, every other field kept as it was."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def record(self) -> dict[str, Any]:
        """The object as its file holds it: the fields it was given, by their JSON names."""
        return self.model_dump(mode="python", by_alias=True, exclude_unset=True)

    def __getitem__(self, name: str) -> Any:
        """``run.manifest["tasks"]``, as when the files were read as plain dicts: kept for one
        release, with a ``DeprecationWarning`` (read the typed attribute instead)."""
        warnings.warn(f"{type(self).__name__}[{name!r}] is deprecated and will be removed in the "
                      "next release: use the attribute", DeprecationWarning, stacklevel=2)
        return self.record()[name]

    def get(self, name: str, default: Any = None) -> Any:
        """``run.manifest.get("tasks")``: see ``__getitem__``."""
        warnings.warn(f"{type(self).__name__}.get({name!r}) is deprecated and will be removed in "
                      "the next release: use the attribute", DeprecationWarning, stacklevel=2)
        return self.record().get(name, default)


# ---------------------------------------------------------------------------- run.json


class Endpoint(Contract):
    """What answered: the model as the endpoint names it and where (or the local engine)."""

    model: str
    base_url: str | None = None


class Sampling(Contract):
    """The sampling parameters and thinking controls a run sent (``SamplingParams.record``)."""

    temperature: Number | None = None
    top_p: Number | None = None
    max_tokens: int | None = None
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None
    reasoning_effort: str | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    system_prompt: str | None = None
    extra_body: dict[str, Any] | None = None


class Identity(Contract):
    """What makes two runs' samples interchangeable: a folder holds one identity."""

    endpoint: Endpoint
    sampling: Sampling = Field(default_factory=Sampling)


class DataSource(Contract):
    """Where a task's data came from: a local file (with its checksum) or the Hub."""

    kind: str | None = None  # "local" or "hub"
    location: str | None = None
    sha256: str | None = None
    dataset: str | None = None
    config: str | None = None
    split: str | None = None
    revision: str | None = None

    @property
    def identity(self) -> str:
        """What identifies the data itself: the Hub dataset at its revision, or the file's
        checksum (two runs of the same data agree on it wherever the file lay)."""
        if self.kind == "hub":
            return f"hub {self.dataset}/{self.config}/{self.split}@{self.revision}"
        return f"file sha256 {self.sha256}"

    @property
    def label(self) -> str | None:
        """The identity, short (a table column): ``dataset@revision`` or ``sha256:...``."""
        if self.kind == "hub":
            return f"{self.dataset}@{self.revision}"
        return f"sha256:{self.sha256}" if self.sha256 else None


class TaskEntry(Contract):
    """One task of a run: what defines its prompts, grading and data."""

    version: str | None = None
    prompt_hash: str | None = None
    grader: str | None = None
    source: DataSource = Field(default_factory=DataSource)
    questions: int | None = None
    samples_per_question: int | None = None


class RunSettings(Contract):
    """The run's configuration (``RunConfig``) as recorded; the fields readers look into."""

    limit: int | None = None
    task_dir: str | None = None
    reasoning_delimiters: list[str] | None = None


class Prices(Contract):
    """The prices a run was costed at, USD per 1M tokens (``r1eval.scoring.prices``)."""

    input_per_1m: Number
    output_per_1m: Number
    cached_input_per_1m: Number | None = None
    source: str = ""


class Serving(Contract):
    """What the last session of a run used: samples in flight and why, and what it learned
    of the server."""

    samples_in_flight: int
    basis: str
    server_ignores_n: bool | None = None
    streamed: bool | None = None
    endpoints: list[dict[str, Any]] | None = None  # the replicas (several ``--base-url``)


class Provenance(Contract):
    packages: dict[str, str | None] = Field(default_factory=dict)
    git: dict[str, Any] | None = None
    python: str | None = None
    platform: str | None = None


class Manifest(Contract):
    """``run.json``: a run's configuration and provenance (never an API key)."""

    formats: dict[str, int] = Field(default_factory=dict)
    r1eval_version: str | None = None
    identity: Identity
    config: RunSettings = Field(default_factory=RunSettings)
    tasks: dict[str, TaskEntry] = Field(default_factory=dict)
    prices: Prices | None = None
    provenance: Provenance = Field(default_factory=Provenance)
    created: str | None = None
    server: dict[str, Any] | None = None  # the server's setup as it states it
    serving: Serving | None = None
    regrades: list[dict[str, Any]] = Field(default_factory=list)
    completions: dict[str, Any] | None = None  # graded from a file (``r1eval grade``)

    @property
    def model(self) -> str:
        """The model the run was made with, as its manifest names it."""
        return self.identity.endpoint.model


def check_formats(manifest: Manifest, where: str) -> None:
    """Refuse a folder whose files are of a format newer than this release reads."""
    for name, version in manifest.formats.items():
        if version > FORMATS.get(name, 0):
            raise RunFolderError(
                f"{where}: its {name} is of format {version}, newer than this r1eval reads "
                f"({FORMATS.get(name, 'none')}); read it with a newer r1eval"
            )


# ---------------------------------------------------------------------------- scores.json

_K_METRIC = re.compile(r"(cons|pass)@\d+")


class Spread(Contract):
    median: Number
    p90: Number


class Speed(Contract):
    streamed_samples: int = 0
    first_token_s: Spread | None = None
    decode_tokens_per_s: Spread | None = None


class TaskScore(Contract):
    """One task's scores (the README's ``scores.json`` table). ``cons@K`` and ``pass@K`` are
    named by the task's K: read them with ``at_k``."""

    pass1: Number | None = Field(default=None, alias="pass@1")
    ci_low: Number | None = None
    ci_high: Number | None = None
    ci_method: str | None = None
    n_questions: int = 0
    n_questions_planned: int | None = None
    samples_per_question: int | None = None
    n_samples: int = 0
    n_correct: int | None = None
    n_errors: int = 0
    n_not_attempted: int = 0
    complete: bool = False
    truncated_rate: Number | None = None
    no_answer_rate: Number | None = None
    accuracy_completed: Number | None = None
    # here: cons@K, pass@K (see ``_in_file_order``)
    n_questions_short_of_k: int | None = None
    extraction: dict[str, int] = Field(default_factory=dict)
    tokens: dict[str, Number] = Field(default_factory=dict)
    tokens_estimated_samples: int | None = None
    completion_tokens_per_correct: Number | None = None
    speed: Speed | None = None
    by: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    cost_usd: Number | None = None
    cost_per_correct_usd: Number | None = None

    def at_k(self, metric: Literal["cons", "pass"]) -> Number | None:
        """``cons@K`` or ``pass@K`` at the task's own K."""
        name = f"{metric}@{self.samples_per_question}"
        value = self.pass1 if name == "pass@1" else (self.model_extra or {}).get(name)
        return value if isinstance(value, int | float) else None

    @model_serializer(mode="wrap")
    def _in_file_order(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The fields in the order scores.json has always had: ``cons@K`` and ``pass@K`` right
        after ``accuracy_completed``, though they are not declared fields."""
        data: dict[str, Any] = handler(self)
        at_k = {name: value for name, value in data.items()
                if name != "pass@1" and _K_METRIC.fullmatch(name)}
        ordered: dict[str, Any] = {}
        for name, value in data.items():
            if name in at_k:
                continue
            if at_k and name not in _BEFORE_K:
                ordered.update(at_k)
                at_k = {}
            ordered[name] = value
        ordered.update(at_k)
        return ordered


_BEFORE_K = frozenset(
    ["pass@1", "ci_low", "ci_high", "ci_method", "n_questions", "n_questions_planned",
     "samples_per_question", "n_samples", "n_correct", "n_errors", "n_not_attempted",
     "complete", "truncated_rate", "no_answer_rate", "accuracy_completed"])


class Scores(Contract):
    """``scores.json``: a run's per-task scores (and costs, with prices)."""

    run_dir: str | None = None
    model: str | None = None
    complete: bool = False
    tasks: dict[str, TaskScore] = Field(default_factory=dict)
    cost_usd: Number | None = None
    prices: Prices | None = None


# ---------------------------------------------------------------------------- samples.jsonl


class Usage(Contract):
    """Token counts as logged (``r1eval.types.Usage``)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    shared_by: int = 1
    estimated: bool = False


class _ItemRecord(Contract):
    """What every record says of its request: the key and the question and repeat it is of."""

    key: str
    task: str
    sample_id: str
    repeat: int
    sample_metadata: dict[str, Any] = Field(default_factory=dict)  # logged since 0.1
    time: float | None = None


class CompletionRecord(_ItemRecord):
    """A response: what came back, the gold and per-repeat prompt details (never the prompt)."""

    type: Literal["completion"] = "completion"
    text: str
    reasoning: str | None = None
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    latency_s: float | None = None
    model: str | None = None
    first_token_s: float | None = None  # streamed responses only
    endpoint: str | None = None  # which endpoint answered, when several could
    gold: str | None = None
    prompt_metadata: dict[str, Any] = Field(default_factory=dict)


class GradeRecord(_ItemRecord):
    """How a completion was judged (``r1eval.types.Grade``)."""

    type: Literal["grade"] = "grade"
    correct: bool
    extracted: str | None = None
    canonical: str | None = None
    method: str | None = None
    failure: str | None = None
    explanation: str = ""
    regraded: bool = False  # written by ``r1eval regrade``


class ErrorRecord(_ItemRecord):
    """A request that failed for good this time: never graded, retried on the next run."""

    type: Literal["error"] = "error"
    message: str
    transient: bool = False
    status: int | None = None


Record = CompletionRecord | GradeRecord | ErrorRecord
