"""The runner never holds more than ``max_ungraded`` responses awaiting grading: it waits to
send when grading falls behind, so memory stays flat however fast the endpoint answers."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest

from r1eval.grading.pool import GraderPool
from r1eval.run.config import RunConfig
from r1eval.run.evaluate import prepare
from r1eval.run.progress import Progress
from r1eval.run.runner import Runner
from r1eval.store.folder import LOG, RunFolder, read_log
from r1eval.types import Completion, Grade, Request, SamplingParams

from local_models import write_small_data


class Instant:
    """A backend that answers every request at once."""

    def identity(self) -> dict[str, str]:
        return {"model": "m"}

    async def generate(self, request: Request) -> list[Completion]:
        return [Completion("\\boxed{1}", None, "stop", latency_s=0.0)] * request.n

    async def aclose(self) -> None:
        pass


def slow_grader(answer: str, gold: str) -> Grade:
    time.sleep(0.01)
    return Grade(False, "1", "1", "boxed", "wrong")


def run(tmp_path: Path, folder_type: type[RunFolder] = RunFolder) -> Path:
    """32 samples from an instant endpoint, 2 requests in flight, graded slowly."""
    write_small_data(tmp_path / "data")
    config = RunConfig(model="m", base_url="http://127.0.0.1:9/v1", tasks="aime24", samples=4,
                       data_dir=tmp_path / "data")
    items = prepare(config, {}, key_explicit=False).items
    with folder_type(tmp_path / "run") as folder, GraderPool(workers=0) as pool:
        runner = Runner(folder, Instant(), pool, {"aime24": slow_grader}, SamplingParams(),
                        Progress(), concurrency=2, max_ungraded=3)
        asyncio.run(asyncio.wait_for(runner.run(items), timeout=60))
    return tmp_path / "run"


def test_sending_waits_while_grading_is_behind(tmp_path: Path) -> None:
    kinds = [record["type"] for record in read_log(run(tmp_path) / LOG)]
    assert kinds.count("completion") == kinds.count("grade") == 32
    awaiting = itertools.accumulate(1 if kind == "completion" else -1 for kind in kinds)
    # at most max_ungraded queued, plus the responses of the requests that wait to queue theirs
    # and the one being graded
    assert max(awaiting) <= 3 + 2 * 4 + 1


class FullDisk(RunFolder):
    """A run folder whose disk fills up when the first grade is written."""

    def append(self, record: dict[str, object]) -> None:
        if record["type"] == "grade":
            raise OSError(28, "No space left on device")
        super().append(record)


def test_a_grader_that_fails_stops_the_run_instead_of_blocking_it(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="No space left"):
        run(tmp_path, FullDisk)


class NoWorkers(GraderPool):
    """A pool that must not start worker processes."""

    def start(self) -> None:
        raise AssertionError("grading workers started with nothing to grade")


def test_a_finished_run_reopened_starts_no_grading_worker(tmp_path: Path) -> None:
    run(tmp_path)
    config = RunConfig(model="m", base_url="http://127.0.0.1:9/v1", tasks="aime24", samples=4,
                       data_dir=tmp_path / "data")
    items = prepare(config, {}, key_explicit=False).items
    with RunFolder(tmp_path / "run") as folder, NoWorkers(workers=2) as pool:
        runner = Runner(folder, Instant(), pool, {"aime24": slow_grader}, SamplingParams(),
                        Progress())
        asyncio.run(runner.run(items))
    assert sum(record["type"] == "completion" for record in read_log(tmp_path / "run" / LOG)) == 32


class Watching(Instant):
    """Records, at each request it is sent, how many samples the runner had not sent yet."""

    def __init__(self) -> None:
        self.runner: Runner | None = None
        self.unsent_at_send: list[int] = []

    async def generate(self, request: Request) -> list[Completion]:
        assert self.runner is not None
        self.unsent_at_send.append(self.runner.unsent)
        await asyncio.sleep(0)
        return await super().generate(request)


def test_each_request_goes_out_before_the_next_is_built(tmp_path: Path) -> None:
    """With room for every sample at once (the start of a run on a big server), the first
    request is on its way before the other 31 are taken from the queue: the server's slots
    fill one by one as requests are built, not all after the last one is."""
    write_small_data(tmp_path / "data")
    config = RunConfig(model="m", base_url="http://127.0.0.1:9/v1", tasks="aime24", samples=4,
                       data_dir=tmp_path / "data")
    items = prepare(config, {}, key_explicit=False).items
    backend = Watching()
    with RunFolder(tmp_path / "run") as folder, GraderPool(workers=0) as pool:
        runner = Runner(folder, backend, pool, {"aime24": slow_grader}, SamplingParams(),
                        Progress(), concurrency=32)
        backend.runner = runner
        asyncio.run(asyncio.wait_for(runner.run(items), timeout=60))
    assert len(items) == 32 and backend.unsent_at_send[0] == 32 - 4  # one request of n=4 sent
