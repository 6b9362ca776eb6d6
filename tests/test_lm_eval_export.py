"""r1eval's tasks exported for lm-evaluation-harness: the same prompts, graded by r1eval.

The end-to-end tests run lm-eval's ``simple_evaluate`` with ``local-chat-completions`` on the
exported tasks against llama-cpp-python's server (the scripted GGUF model, greedy), then
``r1eval run`` against the same server, and require the same verdict on every document and
the same score. Everything runs offline; GPQA's exported file lives in a temporary folder that
is removed at the end, and nothing compared or printed holds its text.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from r1eval.cli import main
from r1eval.export.lm_eval import CACHE, SHIM, task_name
from r1eval.export.lm_eval_hooks import METRIC, grade_response, process_results
from r1eval.run.plan import build_plan
from r1eval.store.folder import LOG, read_log
from r1eval.task.data import load_task
from r1eval.task.registry import resolve
from r1eval.types import SamplingParams

from local_models import require, write_small_data
from openai_server import OpenAIServer, last_user_text


def export(out: Path, data: Path, tasks: str, *flags: str) -> None:
    args = ["export-lm-eval", str(out), "--tasks", tasks, "--data-dir", str(data), *flags]
    assert main(args) == 0


def documents(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_export_holds_r1evals_prompts_and_golds(tmp_path: Path) -> None:
    write_small_data(tmp_path / "data")
    export(tmp_path / "out", tmp_path / "data", "aime24,mmlu", "--samples", "2", "--protocol",
           "r1")
    loaded = [load_task(task, tmp_path / "data") for task in resolve(["aime24", "mmlu"])]
    items = build_plan(loaded, {"aime24": 2, "mmlu": 2}, {"model": "x"}, SamplingParams())
    for name in ("aime24", "mmlu"):
        docs = documents(tmp_path / "out" / f"{task_name(name)}.jsonl")
        mine = [i for i in items if i.task == name]
        keys = [(i.sample.id, i.repeat) for i in mine]
        assert [(d["question"], d["repeat"]) for d in docs] == keys
        assert [d["prompt"] for d in docs] == [i.prompt.messages[0]["content"] for i in mine]
        assert [d["gold"] for d in docs] == [i.prompt.gold for i in mine]
        config = (tmp_path / "out" / f"{task_name(name)}.yaml").read_text()
        assert f"task: {task_name(name)}\n" in config
        assert f"process_results: !function {SHIM}.process_results\n" in config
        assert "  seed: null\n" in config
        assert "  temperature: 0.6\n  top_p: 0.95\n  max_gen_toks: 32768\n" in config
        assert f"cache_dir: {json.dumps(str((tmp_path / 'out' / CACHE).resolve()))}" in config
    assert (tmp_path / "out" / f"{SHIM}.py").read_text().count("import") == 1


def test_process_results_grades_as_a_run_does() -> None:
    math = {"task": "aime24", "gold": "25"}
    choice = {"task": "mmlu", "gold": "C"}
    cases = [
        (math, "<think>\nMaybe \\boxed{7}.\n</think>\nSo \\boxed{25}.", 1.0),
        (math, "Hmm \\boxed{25}. Wait.\n</think>\n\\boxed{7}", 0.0),  # reasoning's box ignored
        (math, "<think>\nSo far \\boxed{25} but", 0.0),  # unterminated reasoning: no answer
        (math, None, 0.0),  # a reasoning-only response: lm-eval keeps no content
        (choice, "Answer: B\n</think>\nAnswer: C", 1.0),
        (choice, "I pick (D).", 0.0),
    ]
    for doc, response, expected in cases:
        assert process_results(doc, [response]) == {METRIC: expected}
        assert grade_response(doc["task"], response, doc["gold"]).correct == bool(expected)
    assert process_results(math, [["\\boxed{25}", "\\boxed{3}"]]) == {METRIC: 0.5}  # K at once


@pytest.mark.lm_eval
def test_lm_eval_reads_the_exported_tasks(tmp_path: Path) -> None:
    require("lm_eval")
    from lm_eval.tasks import TaskManager

    write_small_data(tmp_path / "data")
    export(tmp_path / "out", tmp_path / "data", "aime24,mmlu")
    manager = TaskManager(include_path=str(tmp_path / "out"), include_defaults=False)
    assert {"r1eval_aime24", "r1eval_mmlu"} <= set(manager.all_tasks)
    tasks = manager.load(["r1eval"])["tasks"]  # the tag names them all
    assert sorted(tasks) == ["r1eval_aime24", "r1eval_mmlu"]
    assert len(list(tasks["r1eval_aime24"].test_docs())) == 8


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    require("lm_eval", "llama_cpp", "gguf", "fastapi", "uvicorn")
    from tiny_gguf import LlamaServer, write_tiny_gguf

    root = tmp_path_factory.mktemp("llama")
    with LlamaServer(write_tiny_gguf(root / "tiny.gguf"), root / "server.log") as running:
        yield running


def lm_eval_verdicts(
    server: Any, out: Path, tasks: list[str]
) -> dict[tuple[str, str, int], float]:
    """(task, question, repeat) -> lm-eval's pass@1, checking lm-eval sent r1eval's prompt."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    results = simple_evaluate(
        model="local-chat-completions",
        model_args={"model": "tiny", "base_url": f"{server.base_url}/chat/completions",
                    "num_concurrent": 2, "max_retries": 1},
        tasks=[task_name(t) for t in tasks],
        task_manager=TaskManager(include_path=str(out), include_defaults=False),
        apply_chat_template=True,
        log_samples=True,
    )
    assert results is not None
    verdicts = {}
    for name in tasks:
        for sample in results["samples"][task_name(name)]:
            doc = sample["doc"]
            [(context, _)] = sample["arguments"]  # (JSON string of the chat messages,)
            sent = json.loads(context[0] if isinstance(context, tuple) else context)
            if sent != [{"role": "user", "content": doc["prompt"]}]:  # no GPQA text in output
                pytest.fail(f"lm-eval did not send r1eval's prompt for {doc['question']}")
            verdicts[(name, doc["question"], doc["repeat"])] = sample[METRIC]
        docs = len(results["samples"][task_name(name)])
        mean = sum(v for (t, _, _), v in verdicts.items() if t == name) / docs
        assert results["results"][task_name(name)][f"{METRIC},none"] == pytest.approx(mean)
    return verdicts


class SeededServer:
    """A responder that honours ``seed`` as vLLM does: a seed fixes the answer; without one
    each response is a new draw. Remembers the answers it gave, per prompt."""

    def __init__(self) -> None:
        self.given: dict[str, list[str]] = {}

    def __call__(self, body: dict[str, Any], index: int) -> dict[str, Any]:
        prompt = last_user_text(body)
        drawn = self.given.setdefault(prompt, [])
        seed = body.get("seed")
        drawn.append(f"\\boxed{{{seed if seed is not None else len(drawn)}}}")
        return {"content": drawn[-1], "finish_reason": "stop"}


@pytest.mark.lm_eval
def test_lm_eval_draws_each_repeat_anew_from_a_server_that_honours_seeds(
    tmp_path: Path
) -> None:
    """lm-eval sends seed 1234 with every request: the K repeats of a question came back
    identical from a server that honours seeds. Exported, they are K draws."""
    require("lm_eval")
    write_small_data(tmp_path / "data")
    export(tmp_path / "out", tmp_path / "data", "aime24", "--limit", "2", "--samples", "3",
           "--temperature", "0.6", "--max-tokens", "64")
    responder = SeededServer()
    with OpenAIServer(responder=responder) as server:
        lm_eval_verdicts(server, tmp_path / "out", ["aime24"])
        requests = server.requests
    assert len(requests) == 6 and all(body.get("seed") is None for body in requests)
    assert [len(set(answers)) for answers in responder.given.values()] == [3, 3]


def r1eval_verdicts(
    server: Any, data: Path, run_dir: Path, tasks: list[str], *flags: str
) -> dict[tuple[str, str, int], float]:
    args = [
        "run", "--model", "tiny", "--base-url", server.base_url, "--tasks", ",".join(tasks),
        "--data-dir", str(data), "--run-dir", str(run_dir), "--temperature", "0",
        "--max-tokens", "64", "--grader-workers", "1", "--concurrency", "2", *flags,
    ]
    assert main(args) == 0
    return {
        (r["task"], r["sample_id"], r["repeat"]): float(r["correct"])
        for r in read_log(run_dir / LOG)
        if r["type"] == "grade"
    }


@pytest.mark.lm_eval
@pytest.mark.llama_cpp
@pytest.mark.slow
def test_lm_eval_scores_the_same_samples_the_same_way(server: Any, tmp_path: Path) -> None:
    tasks = ["aime24", "mmlu"]
    correct = write_small_data(tmp_path / "data")
    flags = ("--samples", "2", "--temperature", "0", "--max-tokens", "64")
    export(tmp_path / "out", tmp_path / "data", ",".join(tasks), *flags)
    theirs = lm_eval_verdicts(server, tmp_path / "out", tasks)
    ours = r1eval_verdicts(server, tmp_path / "data", tmp_path / "run", tasks, "--samples", "2")
    assert theirs == ours and len(ours) == 32
    for name in tasks:  # and both are what the scripted model deserves
        got = [v for (t, _, _), v in sorted(ours.items()) if t == name]
        assert sum(got) / len(got) == pytest.approx(sum(correct[name]) / len(correct[name]))


@pytest.mark.lm_eval
@pytest.mark.llama_cpp
@pytest.mark.data
@pytest.mark.slow
def test_gpqa_on_the_real_data_scores_the_same(
    server: Any, data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "private"
    try:
        export(out, data_dir, "gpqa_diamond", "--limit", "6", "--samples", "2",
               "--temperature", "0", "--max-tokens", "64")
        theirs = lm_eval_verdicts(server, out, ["gpqa_diamond"])
        ours = r1eval_verdicts(server, data_dir, tmp_path / "run", ["gpqa_diamond"],
                               "--limit", "6", "--samples", "2")
        assert sorted(theirs) == sorted(ours) and len(ours) == 12
        assert [theirs[k] for k in sorted(ours)] == [ours[k] for k in sorted(ours)]
        assert 0 < sum(ours.values()) < 12  # the letters vary with the shuffled options
    finally:
        shutil.rmtree(out, ignore_errors=True)  # GPQA's questions in plain text


@pytest.mark.data
def test_the_newer_benchmarks_export_with_r1evals_prompts_and_golds(
    tmp_path: Path, data_dir: Path
) -> None:
    names = ["aime25", "hmmt_feb25", "amc23", "mmlu_pro"]
    export(tmp_path / "out", data_dir, ",".join(names), "--limit", "5", "--samples", "2")
    loaded = [load_task(task, data_dir, 5) for task in resolve(names)]
    items = build_plan(loaded, dict.fromkeys(names, 2), {"model": "x"}, SamplingParams())
    for name in names:
        docs = documents(tmp_path / "out" / f"{task_name(name)}.jsonl")
        mine = [i for i in items if i.task == name]
        assert [(d["question"], d["repeat"]) for d in docs] == [(i.sample.id, i.repeat)
                                                                 for i in mine]
        assert [d["prompt"] for d in docs] == [i.prompt.messages[0]["content"] for i in mine]
        assert [d["gold"] for d in docs] == [i.prompt.gold for i in mine]
        for doc in docs:  # the gold, as the task's reference prompt asks for it, scores 1
            right = (f"</think>The answer is ({doc['gold']})" if name == "mmlu_pro"
                     else f"</think>\\boxed{{{doc['gold']}}}")
            assert process_results(doc, [right]) == {METRIC: 1.0}
    mmlu_pro = documents(tmp_path / "out" / f"{task_name('mmlu_pro')}.jsonl")[0]
    assert mmlu_pro["gold"] == "I"  # question 70: a letter past D
    assert process_results(mmlu_pro, ["</think>Answer: J"]) == {METRIC: 0.0}
