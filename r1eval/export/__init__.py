"""r1eval's tasks for other harnesses: the lm-evaluation-harness export and its scoring hook."""
