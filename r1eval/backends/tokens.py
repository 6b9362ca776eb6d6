"""Token counts when an endpoint reports none: a tokenizer-free approximation.

Byte-pair tokenizers of current models average about 4 characters of English per token and
fewer on LaTeX and digits; 3.5 characters per token is a middle ground. Counts made this way
are always marked as estimated.
"""

from __future__ import annotations

import math

CHARS_PER_TOKEN = 3.5


def estimate_tokens(text: str | None) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0
