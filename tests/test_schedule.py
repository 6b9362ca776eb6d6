"""The order of a run's requests: longest first from earlier runs, else the plan's order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from r1eval.grading.pool import GraderPool
from r1eval.run.config import RunConfig
from r1eval.run.evaluate import prepare
from r1eval.run.plan import WorkItem, group_requests
from r1eval.run.progress import Progress
from r1eval.run.runner import Runner
from r1eval.run.schedule import LongestFirst, expected_tokens, order_groups
from r1eval.store.folder import RunFolder
from r1eval.types import Completion, Grade, Request, SamplingParams, Usage

from local_models import write_small_data
from runs_for_tests import build_run


def plan(data: Path, tasks: str = "aime24", samples: int = 2) -> list[WorkItem]:
    config = RunConfig(model="m", base_url="http://127.0.0.1:9/v1", tasks=tasks,
                       samples=samples, data_dir=data)
    return prepare(config, {}, key_explicit=False).items


def question_order(groups: list[tuple[Request, list[WorkItem]]]) -> list[str]:
    return [items[0].sample.id for _, items in groups]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    write_small_data(tmp_path / "data")  # aime24 and mmlu, 8 questions each
    return tmp_path / "data"


def test_without_history_the_plan_order_is_kept(data: Path) -> None:
    groups = group_requests(plan(data), SamplingParams())
    assert order_groups(groups, {}) == groups
    assert order_groups(groups, {("mmlu", "astronomy/3"): 9.0}) == groups  # other questions


def test_longest_first_unknown_questions_at_the_median_ties_in_plan_order(data: Path) -> None:
    groups = group_requests(plan(data), SamplingParams())
    expected = {("aime24", "5"): 30.0, ("aime24", "2"): 1.0, ("aime24", "7"): 20.0,
                ("aime24", "0"): 10.0}  # median 15: the four unknown questions go in between
    ordered = order_groups(groups, expected)
    assert question_order(ordered) == ["5", "7", "1", "3", "4", "6", "0", "2"]
    assert all(len(items) == 2 for _, items in ordered)  # the repeats stay in one request


def length_by_question(tokens: float, latency_s: float = 1.0, shared_by: int = 1) -> Completion:
    """A response of ``tokens`` completion tokens (its request's count: ``shared_by`` times
    as many) that arrived ``latency_s`` after it was sent."""
    usage = Usage(completion_tokens=round(tokens * shared_by), shared_by=shared_by)
    return Completion("\\boxed{1}", None, "stop", usage=usage, latency_s=latency_s)


def number(item: WorkItem) -> float:
    """The question's number: aime24 ids are "0".."7", mmlu's "astronomy/0".."astronomy/7"."""
    return float(item.sample.id.rpartition("/")[2])


def test_expected_tokens_prefers_the_same_model(data: Path, tmp_path: Path) -> None:
    history = tmp_path / "results"
    build_run(history / "mine", data, "aime24", samples=2,
              responder=lambda item: length_by_question(number(item) + item.repeat))
    build_run(history / "theirs", data, "aime24,mmlu", model="other",
              responder=lambda item: length_by_question(100.0 - number(item)))
    build_run(history / "failed", data, "aime24", model="m", limit=2,
              responder=lambda item: None)  # errors carry no length
    expected = expected_tokens([history, tmp_path / "missing"], "m")
    assert expected[("aime24", "3")] == 3.5  # mean of the two repeats; "other" ignored
    assert expected[("mmlu", "astronomy/3")] == 97.0  # "m" never ran mmlu: the other model's runs
    assert len(expected) == 16
    assert expected_tokens([tmp_path / "missing"], "m") == {}


def test_unreadable_history_is_ignored(data: Path, tmp_path: Path) -> None:
    run = build_run(tmp_path / "results" / "run", data, "aime24",
                    responder=lambda item: length_by_question(1.0))
    (run / "run.json").write_text("{not json")
    assert expected_tokens([tmp_path / "results"], "m") == {}


class Recorder:
    """A backend that answers at once and remembers which question each request asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def identity(self) -> dict[str, str]:
        return {"model": "m"}

    async def generate(self, request: Request) -> list[Completion]:
        self.asked.append(request.messages[0]["content"])
        return [Completion("\\boxed{1}", None, "stop", latency_s=0.1)] * request.n

    async def aclose(self) -> None:
        pass


def grade_nothing(answer: str, gold: str) -> Grade:
    return Grade(False, None, None, None, "wrong")


def test_the_runner_sends_the_longest_questions_first(data: Path, tmp_path: Path) -> None:
    history = tmp_path / "results"
    build_run(history / "earlier", data, "aime24",
              responder=lambda item: length_by_question(number(item)))
    items = plan(data)
    question = {item.prompt.messages[0]["content"]: item.sample.id for item in items}
    backend = Recorder()
    with RunFolder(tmp_path / "run") as folder, GraderPool(workers=0) as pool:
        runner = Runner(folder, backend, pool, {"aime24": grade_nothing}, SamplingParams(),
                        Progress(), concurrency=2, order=LongestFirst((history,), "m"))
        asyncio.run(runner.run(items))
    assert [question[prompt] for prompt in backend.asked] == list("76543210")


def test_longest_first_ranks_by_tokens_generated_not_by_latency(
    data: Path, tmp_path: Path
) -> None:
    """An earlier run against a busy server: its latencies follow its send order (question 0
    waited least), while the tokens say which questions are long (question 7). The ranking
    follows the tokens, per sample (a response's count shared by its n choices)."""
    history = tmp_path / "results"
    build_run(history / "earlier", data, "aime24", samples=2,
              responder=lambda item: length_by_question(
                  100 * (number(item) + 1), latency_s=10.0 - number(item), shared_by=2))
    expected = expected_tokens([history], "m")
    assert expected[("aime24", "3")] == 400.0
    groups = LongestFirst((history,), "m")(group_requests(plan(data), SamplingParams()))
    assert question_order(groups) == list("76543210")


def test_a_finished_run_reads_no_history(monkeypatch: pytest.MonkeyPatch) -> None:
    def unwanted(*args: object) -> dict[tuple[str, str], float]:
        raise AssertionError("history read with nothing to send")

    monkeypatch.setattr("r1eval.run.schedule.expected_tokens", unwanted)
    assert LongestFirst((Path("results"),), "m")([]) == []
