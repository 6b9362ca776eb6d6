"""The one exception tree of r1eval.

Every error a user can cause or meet derives from ``R1EvalError``; the CLI turns each into a
one-line message and an exit code (``exit_code``). Anything else that escapes is a bug and is
shown with its traceback.

    R1EvalError                  exit 2 unless noted
    ├── UsageError               bad flags or values, unknown task, malformed config file
    ├── DataError                benchmark data missing, unreadable or malformed
    ├── RunFolderError           run folder locked, or made by a different configuration
    │   └── DiskFull             no space left on the device holding the run folder
    ├── EndpointError            the endpoint cannot serve this run at all (bad URL, 401, 404)
    ├── RunStopped               exit 1: too many requests failed in a row; what was received
    │                            is saved and the same command resumes
    └── RequestFailed            one request failed for good (retries spent, or a 400);
        │                        recorded as an error sample, never graded
        └── OutOfRotation        one replica of several was taken out of rotation while
                                 serving it: the pool sends it to another replica
"""

from __future__ import annotations

from typing import Any


class R1EvalError(Exception):
    """Base of every error r1eval reports to the user."""

    exit_code = 2


class UsageError(R1EvalError):
    """The command line, a config file or an option value is wrong."""


class DataError(R1EvalError):
    """Benchmark data cannot be found, read or understood."""


class RunFolderError(R1EvalError):
    """The run folder cannot be used for this run."""


class DiskFull(RunFolderError):
    """The device holding the run folder has no space left (what was logged is intact)."""

    def __init__(self, run_dir: object) -> None:
        super().__init__(
            f"no space left on the device holding {run_dir}; everything logged so far is "
            "intact; free space and run the same command"
        )


class EndpointError(R1EvalError):
    """The endpoint rejects the whole run: wrong URL, key, or model name."""


class RunStopped(R1EvalError):
    """The run gave up on an endpoint that kept failing; everything received is saved.

    Exit code 1, like a run that ended with failed requests: running the same command again
    (once the endpoint is back) resumes it.
    """

    exit_code = 1


class RequestFailed(R1EvalError):
    """A single request failed after its retries, or was rejected (HTTP 400).

    ``transient`` tells whether running again may succeed (it is retried on the next run
    either way; the flag is informative).
    """

    exit_code = 1

    def __init__(self, message: str, *, transient: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status


class OutOfRotation(RequestFailed):
    """A request stopped on one replica of a pool because that replica is out of rotation
    (``r1eval.backends.replicas``); the pool sends what it did not deliver to another."""


def validation_problems(errors: list[Any], whole: str) -> str:
    """Pydantic's validation errors (``ValidationError.errors()``) as one line: each problem's
    place (dotted; ``whole`` when it is the entire object) and message, joined by "; "."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or whole}: {e['msg']}" for e in errors)
