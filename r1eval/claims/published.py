"""Reported scores: the registry of published figures that runs are compared against.

Each source (an article, a paper, a README, a reproduction) is one TOML file: r1eval's own are
package data in ``r1eval/claims/``, and a user adds theirs with ``--claims FILE``. A file holds
a ``[source]`` table, its ``[[figures]]`` and optional ``[aliases]`` (what endpoints call a
model -> the registry's name). Every file is validated (unknown keys are errors); a malformed
one is reported in one line naming the file and the field.

Units: ``pass@k`` and ``cons@k`` figures are percentages, as sources print them (55.5, never
0.555), while run scores are fractions in [0, 1]: ``Figure.fraction`` converts. ``elo`` is a
rating. Model names and aliases match case-insensitively.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from r1eval.errors import DataError, UsageError, validation_problems

__all__ = [
    "BENCHMARK_NAMES",
    "Alias",
    "Claim",
    "ClaimsFile",
    "Figure",
    "Protocol",
    "Reported",
    "Source",
    "benchmark_name",
    "builtin_claim_files",
    "load_reported",
    "parse_claims",
]

BENCHMARK_NAMES = {
    "aime24": "AIME 2024",
    "math500": "MATH-500",
    "gpqa_diamond": "GPQA Diamond",
    "mmlu": "MMLU",
    "aime25": "AIME 2025",
    "hmmt_feb25": "HMMT February 2025",
    "amc23": "AMC 2023",
    "mmlu_pro": "MMLU-Pro",
    "codeforces": "Codeforces",
    "swe_bench_verified": "SWE-bench Verified",
}
_PERCENT_METRIC = re.compile(r"(pass|cons)@([1-9][0-9]*)")
_RATING_METRICS = ("elo",)
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


def benchmark_name(benchmark: str) -> str:
    """A benchmark's display name (its id when r1eval has none)."""
    return BENCHMARK_NAMES.get(benchmark, benchmark)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """Where figures were published: ``id`` is short (``open-r1``), ``title`` is the citation.

    ``same_questions = false`` says the source measured on another question set (a filtered or
    translated version): compare then gives only the view over questions."""

    id: str = Field(pattern=_NAME)
    title: str = Field(min_length=1)
    kind: str = "other"
    url: str | None = None
    note: str | None = None
    #: The figures were measured on the benchmark's full official question set, the one
    #: r1eval's task of that name asks (so compare can test on the same questions).
    same_questions: bool = True


class Protocol(_Strict):
    """How a figure was measured, as far as a source says; None = not stated.

    ``prompt`` is ``r1`` (the DeepSeek-R1 model card's math prompt), ``simple-evals`` (the
    multiple-choice prompt) or free text; ``stated_in`` names the document that states the
    protocol when it is not the figure's own source.
    """

    samples: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    prompt: str | None = None
    # thinking controls (r1eval.backends.thinking) the source used; None: none
    reasoning_effort: str | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    system_prompt: str | None = None
    extra_body: dict[str, Any] | None = None
    harness: str | None = None
    stated_in: str | None = None
    note: str | None = None


class Figure(_Strict):
    """One reported number: ``value`` in percent for pass@k/cons@k, a rating for elo."""

    model: str = Field(min_length=1)
    benchmark: str = Field(pattern=_NAME)
    metric: str
    value: float
    where: str = Field(min_length=1)
    approximate: bool = False
    protocol: Protocol | None = None
    note: str | None = None

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        if _PERCENT_METRIC.fullmatch(metric) or metric in _RATING_METRICS:
            return metric
        raise ValueError(f"unknown metric {metric!r}: use pass@K, cons@K (majority vote) or elo")

    @model_validator(mode="after")
    def _percent_range(self) -> Figure:
        if self.is_percent and not 0 <= self.value <= 100:
            raise ValueError(
                f"{self.metric} is a percentage: {self.value} is not in 0..100 "
                "(write 55.5, not 0.555)"
            )
        return self

    @property
    def is_percent(self) -> bool:
        return _PERCENT_METRIC.fullmatch(self.metric) is not None

    @property
    def samples_in_metric(self) -> int | None:
        """The k of pass@k / cons@k."""
        match = _PERCENT_METRIC.fullmatch(self.metric)
        return int(match.group(2)) if match else None

    @property
    def fraction(self) -> float:
        """The value as a fraction in [0, 1], comparable with run scores."""
        if not self.is_percent:
            raise ValueError(f"{self.metric} is not a percentage")
        return self.value / 100.0

    def shown(self) -> str:
        """The value as the source prints it: ``79.8``, ``~900``."""
        text = f"{self.value:.1f}" if self.is_percent else f"{self.value:g}"
        return f"~{text}" if self.approximate else text


class Alias(_Strict):
    """What an endpoint calls a model, and what to know about that name (e.g. quantized)."""

    model: str = Field(min_length=1)
    note: str | None = None


class ClaimsFile(_Strict):
    """One source file: ``[source]``, ``[[figures]]``, ``[aliases]`` (an alias file may hold
    aliases only)."""

    source: Source | None = None
    aliases: dict[str, str | Alias] = Field(default_factory=dict)
    figures: list[Figure] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> ClaimsFile:
        if self.figures and self.source is None:
            raise ValueError("figures need a [source] table (id and title)")
        seen: set[tuple[str, str, str]] = set()
        for figure in self.figures:
            key = (figure.model.lower(), figure.benchmark, figure.metric)
            if key in seen:
                raise ValueError(f"two figures for {figure.model} {figure.benchmark} "
                                 f"{figure.metric}")
            seen.add(key)
        return self

    def alias_table(self) -> dict[str, Alias]:
        return {
            name: value if isinstance(value, Alias) else Alias(model=value)
            for name, value in self.aliases.items()
        }


@dataclass(frozen=True)
class Claim:
    """A figure together with its source and the file it came from."""

    figure: Figure
    source: Source
    file: str


@dataclass(frozen=True)
class Reported:
    """Every loaded figure and alias. ``aliases`` is keyed by the lower-cased alias."""

    claims: tuple[Claim, ...]
    aliases: Mapping[str, Alias]
    sources: tuple[Source, ...]

    def model_names(self) -> dict[str, str]:
        """Lower-cased -> displayed name of every model with figures or an alias."""
        names: dict[str, str] = {}
        for name in [c.figure.model for c in self.claims] + [a.model for a in
                                                             self.aliases.values()]:
            names.setdefault(name.lower(), name)
        return names

    def resolve(self, name: str) -> tuple[str, Alias | None] | None:
        """The registry's name for ``name`` (an alias or a registry name, any case; for
        ``org/Name`` also ``Name``), with the alias used; None when unknown."""
        canonical = self.model_names()
        key = name.strip().lower()
        for candidate in dict.fromkeys((key, key.rsplit("/", 1)[-1])):
            if candidate in self.aliases:
                alias = self.aliases[candidate]
                return canonical.get(alias.model.lower(), alias.model), alias
            if candidate in canonical:
                return canonical[candidate], None
        return None

    def for_model(self, model: str) -> list[Claim]:
        return [c for c in self.claims if c.figure.model.lower() == model.lower()]

    def counts(self) -> dict[str, int]:
        """Figures per source id."""
        return {s.id: sum(c.source.id == s.id for c in self.claims) for s in self.sources}


def builtin_claim_files() -> list[Traversable]:
    """r1eval's own source files (package data), sorted by name."""
    folder = files("r1eval") / "claims"
    if not folder.is_dir():
        raise DataError("r1eval's registry of reported scores (r1eval/claims/) is missing "
                        "from this installation")
    return sorted((f for f in folder.iterdir() if f.name.endswith(".toml")),
                  key=lambda f: f.name)


def parse_claims(text: str, where: str) -> ClaimsFile:
    """Validate one source file's text; ``UsageError`` names ``where`` and the field."""
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"claims file {where} is not valid TOML: {error}") from None
    try:
        return ClaimsFile.model_validate(data)
    except ValidationError as error:
        problems = validation_problems(error.errors(), "file")
        raise UsageError(f"claims file {where}: {problems}") from None


def load_reported(extra: Iterable[Path] = ()) -> Reported:
    """r1eval's registry plus the user's files ``extra`` (``--claims``)."""
    parsed = [(f.name, parse_claims(f.read_text(encoding="utf-8"), f.name))
              for f in builtin_claim_files()]
    for path in extra:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise UsageError(f"claims file {path}: cannot read it ({error.strerror})") from None
        parsed.append((str(path), parse_claims(text, str(path))))
    return _merge(parsed)


def _merge(parsed: list[tuple[str, ClaimsFile]]) -> Reported:
    claims: list[Claim] = []
    aliases: dict[str, tuple[Alias, str]] = {}
    sources: dict[str, str] = {}
    for where, content in parsed:
        if content.source is not None:
            if content.source.id in sources:
                raise UsageError(f"claims file {where}: source id {content.source.id!r} is "
                                 f"already used by {sources[content.source.id]}")
            sources[content.source.id] = where
            claims += [Claim(f, content.source, where) for f in content.figures]
        for name, alias in content.alias_table().items():
            _add_alias(aliases, name, alias, where)
    return Reported(
        claims=tuple(claims),
        aliases={name: alias for name, (alias, _) in aliases.items()},
        sources=tuple(c.source for _, c in parsed if c.source is not None),
    )


def _add_alias(aliases: dict[str, tuple[Alias, str]], name: str, alias: Alias, where: str) -> None:
    key = name.strip().lower()
    if key in aliases and aliases[key][0].model.lower() != alias.model.lower():
        earlier, file = aliases[key]
        raise UsageError(f"claims file {where}: alias {name!r} -> {alias.model} conflicts with "
                         f"{earlier.model} in {file} (use --as NAME instead)")
    aliases.setdefault(key, (alias, where))
