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
from r1eval.run.schedule import Chunk, LongestFirst, SendQueue, expected_tokens, order_groups
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
        self.n: list[int] = []

    def identity(self) -> dict[str, str]:
        return {"model": "m"}

    async def generate(self, request: Request) -> list[Completion]:
        self.asked.append(request.messages[0]["content"])
        self.n.append(request.n)
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


def test_without_history_the_run_starts_every_question_first(
    data: Path, tmp_path: Path
) -> None:
    """8 questions x 4 samples, 16 in flight: the first requests are two samples of each
    question (the old plan order sent questions 0 to 3 whole: a long question 7 started
    last); the rest follow, every sample asked for once."""
    items = plan(data, samples=4)
    question = {item.prompt.messages[0]["content"]: item.sample.id for item in items}
    backend = Recorder()
    with RunFolder(tmp_path / "run") as folder, GraderPool(workers=0) as pool:
        runner = Runner(folder, backend, pool, {"aime24": grade_nothing}, SamplingParams(),
                        Progress(), concurrency=16)
        asyncio.run(runner.run(items))
    asked = [question[prompt] for prompt in backend.asked]
    first = list(zip(asked, backend.n, strict=True))[:8]
    assert first == [(str(q), 2) for q in range(8)]
    assert sum(backend.n) == 32


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


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sizes(chunks: list[Chunk]) -> list[tuple[str, int]]:
    return [(chunk.items[0].sample.id, chunk.request.n) for chunk in chunks]


def test_without_history_every_question_gets_its_share_before_any_gets_more(
    data: Path,
) -> None:
    """8 questions x 4 samples, room for 16 in flight: two samples each (the room split between
    the questions), not four questions' 4 samples in the plan's order. With room for fewer
    than two each, or for more than half of each, each question whole (a request of n is not
    split for little to learn)."""
    queue = SendQueue(group_requests(plan(data, samples=4), SamplingParams()), {}, 16, Clock())
    first = [queue.take(16 - 2 * taken) for taken in range(8)]
    assert sizes(first) == [(str(q), 2) for q in range(8)]
    rest = []
    while queue:
        rest.append(queue.take(16))
    assert sum(chunk.request.n for chunk in rest) == 16
    queue = SendQueue(group_requests(plan(data, samples=4), SamplingParams()), {}, 15, Clock())
    assert sizes([queue.take(15), queue.take(11)]) == [("0", 4), ("1", 4)]
    # nor when the share is more than half a question's samples (3 of 4 with room for 24)
    queue = SendQueue(group_requests(plan(data, samples=4), SamplingParams()), {}, 24, Clock())
    assert sizes([queue.take(24), queue.take(20)]) == [("0", 4), ("1", 4)]


def test_a_server_that_ignores_n_gets_each_share_one_sample_at_a_time(data: Path) -> None:
    """One request a sample (``most=1``): the first wave is still two samples of each of the
    8 questions, not one each and then the rest of the room to the first questions."""
    queue = SendQueue(group_requests(plan(data, samples=4), SamplingParams()), {}, 16, Clock())
    first = [queue.take(16 - taken, most=1) for taken in range(16)]
    assert sizes(first) == [(str(q), 1) for q in range(8) for _ in range(2)]


def test_then_the_question_that_has_generated_longest_goes_first(data: Path) -> None:
    """Every question started; question 5's samples are still generating when the others'
    have come back: the room that frees goes to question 5's other samples, as much as there
    is, and once they run long the other questions follow, by how long they took."""
    clock = Clock()
    queue = SendQueue(group_requests(plan(data, samples=4), SamplingParams()), {}, 16, clock)
    first = {chunk.items[0].sample.id: chunk for chunk in (queue.take(2) for _ in range(8))}
    for question, chunk in first.items():
        clock.now = 1.0 + int(question) / 100  # question 7 took longest of those back
        if question != "5":
            queue.finished(chunk)
            queue.finished(chunk)
    clock.now = 2.0
    assert sizes([queue.take(14)]) == [("5", 2)]  # still running at 2 s: the longest
    assert sizes([queue.take(1), queue.take(2)]) == [("7", 1), ("6", 2)]


def test_known_lengths_send_each_question_whole_longest_first(data: Path) -> None:
    expected = {("aime24", str(q)): float(q) for q in range(8)}
    queue = SendQueue(group_requests(plan(data, samples=4), SamplingParams()), expected, 8)
    assert sizes([queue.take(8), queue.take(3), queue.take(8)]) == [("7", 4), ("6", 3),
                                                                     ("6", 1)]


def test_samples_put_back_are_sent_again(data: Path) -> None:
    """A server that ignores n answered one of the four asked for: the other three go next
    when the question is known to be long, else once every question has started."""
    queue = SendQueue(group_requests(plan(data, samples=4), SamplingParams()),
                      {("aime24", "7"): 9.0, ("aime24", "0"): 1.0}, 32)
    chunk = queue.take(32)
    assert sizes([chunk]) == [("7", 4)]
    queue.finished(chunk)
    queue.lost(chunk, 3)
    queue.put_back(chunk, chunk.items[1:])
    again = queue.take(32)
    assert sizes([again]) == [("7", 3)] and again.items == chunk.items[1:]
    unknown = queue.take(32)
    assert sizes([unknown]) == [("1", 4)]  # 32 in flight split between 8 questions: 4 each
    queue.lost(unknown, 4)
    queue.put_back(unknown, unknown.items)
    rest = [queue.take(32) for _ in range(7)]
    assert sizes(rest) == [(str(q), 4) for q in (2, 3, 4, 5, 6, 0, 1)]
