"""What a benchmark is: the task definition, the registry that finds tasks, their data, prompts."""

from r1eval.task.definition import HubSource, LocalSource, Record, Task

__all__ = ["HubSource", "LocalSource", "Record", "Task"]
