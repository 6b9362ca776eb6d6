"""What a benchmark is: the task definition, the registry that finds tasks, their data, prompts."""

from r1eval.task.definition import HubSource, LocalSource, Task

__all__ = ["HubSource", "LocalSource", "Task"]
