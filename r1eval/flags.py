"""How a setting of a run is named on the command line: r1eval's errors name the flag.

Below both ``r1eval.run.config`` (which validates settings) and ``r1eval.backends.thinking`` (which
``config`` imports to check the thinking controls), so both name flags the same way.
"""

from __future__ import annotations

__all__ = ["flag_name"]


def flag_name(field: str) -> str:
    """The command-line flag of a setting: ``max_tokens`` -> ``--max-tokens``."""
    return "--" + field.replace("_", "-")
