"""Scores in percent: the one place a fraction becomes a percentage, as a number or as text.

Run scores and rates are fractions (0.5); tables, the leaderboard and the comparison rows show
percent (50.0) or percentage points of a difference (+3.3). Missing values (None, and pandas'
NaN) stay missing: None as a number, ``-`` as text.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MISSING", "as_percent", "is_missing", "percent_text", "points_text"]

#: How a missing value is shown.
MISSING = "-"


def is_missing(value: Any) -> bool:
    """None, or a float NaN (pandas' missing value in a frame of numbers)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def as_percent(fraction: Any, digits: int | None = None) -> float | None:
    """``fraction`` in percent (a float), rounded to ``digits`` when given; None when missing."""
    if is_missing(fraction):
        return None
    value = 100.0 * float(fraction)
    return value if digits is None else round(value, digits)


def points_text(value: float | None, signed: bool = False, digits: int = 1) -> str:
    """A value already in percent (or percentage points) as text; ``signed`` for a difference."""
    if is_missing(value):
        return MISSING
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def percent_text(fraction: Any, signed: bool = False, digits: int = 1) -> str:
    """A fraction shown in percent (``signed``: a difference in points); ``-`` when missing."""
    return points_text(as_percent(fraction), signed, digits)
