"""Is a candidate worse than its base? The paired test of two runs, and its rendering (CI gate)."""

from r1eval._moved import forward_names

__getattr__ = forward_names(__name__)
