"""What tokens cost: the price table (data), user overrides, and the cost of token counts."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from r1eval.errors import UsageError
from r1eval.store.contracts import Prices

PER_TOKENS = 1_000_000


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    names: list[str] = Field(default_factory=list)
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    source: str = ""


class _PriceFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    price: list[_Entry]


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens, and where the figures come from."""

    input: float
    output: float
    source: str
    cached_input: float | None = None

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float:
        """USD for these token counts (reasoning tokens are billed as completion tokens)."""
        return (prompt_tokens * self.input + completion_tokens * self.output) / PER_TOKENS


def _parse(text: str, where: str) -> list[_Entry]:
    try:
        return _PriceFile(**tomllib.loads(text)).price
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"price file {where} is not valid TOML: {error}") from None
    except ValidationError as error:
        first = error.errors()[0]
        place = ".".join(map(str, first["loc"]))
        raise UsageError(f"price file {where}: {place}: {first['msg']}") from None


def load_table(user_file: Path | None = None) -> list[_Entry]:
    """The built-in table, with a user's file (if any) taking precedence."""
    builtin = resources.files("r1eval").joinpath("resources/prices.toml").read_text("utf-8")
    entries = _parse(builtin, "r1eval/resources/prices.toml")
    if user_file is not None:
        try:
            text = user_file.read_text(encoding="utf-8")
        except OSError as error:
            raise UsageError(f"price file {user_file}: {error.strerror}") from None
        entries = _parse(text, str(user_file)) + entries
    return entries


def price_for(
    model: str,
    user_file: Path | None = None,
    price_in: float | None = None,
    price_out: float | None = None,
) -> Price | None:
    """The price of ``model`` (matched case-insensitively on its names), or the explicit
    --price-in/--price-out (both needed); None when unknown."""
    if (price_in is None) != (price_out is None):
        raise UsageError("give both --price-in and --price-out, or neither")
    if price_in is not None and price_out is not None:
        return Price(input=price_in, output=price_out, source="--price-in/--price-out")
    wanted = model.lower()
    for entry in load_table(user_file):
        if wanted in {n.lower() for n in (entry.model, *entry.names)}:
            return Price(entry.input, entry.output, entry.source, entry.cached_input)
    return None


def price_record(price: Price | None) -> dict[str, Any] | None:
    """How a run records the prices it used."""
    if price is None:
        return None
    return {"input_per_1m": price.input, "output_per_1m": price.output,
            "cached_input_per_1m": price.cached_input, "source": price.source}


def price_from_record(record: Prices | None) -> Price | None:
    """The price a run recorded (``price_record``)."""
    if record is None:
        return None
    return Price(input=record.input_per_1m, output=record.output_per_1m, source=record.source,
                 cached_input=record.cached_input_per_1m)
