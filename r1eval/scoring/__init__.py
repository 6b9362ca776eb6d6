"""Scores of a run: outcomes per question, accuracy, pass@k/cons@k, intervals, power, regrading."""

from r1eval._moved import forward_names

__getattr__ = forward_names(__name__)
