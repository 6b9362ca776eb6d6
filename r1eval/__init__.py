"""r1eval: evaluate reasoning models and say honestly whether a reported score reproduces."""

from r1eval.types import Completion, Grade, Prompt, Sample, Usage

__version__ = "0.1.0"

__all__ = ["Completion", "Grade", "Prompt", "Sample", "Usage", "__version__"]
