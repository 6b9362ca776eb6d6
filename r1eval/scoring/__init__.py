"""Scores of a run: per-task scores from the outcomes, pass@k/cons@k, intervals, power, regrade."""

from r1eval._moved import forward_names

__getattr__ = forward_names(__name__)
