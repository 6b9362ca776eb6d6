"""``--model hf:PATH`` on the CPU, with tiny Llama checkpoints built here (no download).

Two models share a byte-level tokenizer and the scripted chat template: the scripted model
(``scripted_model``: its answer to every prompt is known) drives a whole run, with exact
scores; a randomly initialised one, whose attention is real, shows that left-padded batches
generate exactly what each prompt generates alone.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from r1eval.backends.factory import backend_for, identity_for
from r1eval.backends.hf import TransformersEngine, generation_kwargs
from r1eval.backends.local import LocalModelOptions
from r1eval.cli import main
from r1eval.store.folder import LOG, read_log
from r1eval.types import Completion, Request, SamplingParams

import scripted_model
from local_models import build_hf_model, require, write_small_data

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require("torch", "transformers")
    root = tmp_path_factory.mktemp("hf")
    return {
        "scripted": build_hf_model(root / "scripted", scripted=True),
        "random": build_hf_model(root / "random", scripted=False),
    }


def ask(text: str, n: int = 1, **sampling: float | int | None) -> Request:
    return Request(({"role": "user", "content": text},), n, SamplingParams(**sampling))  # type: ignore[arg-type]


def generate(model: Path, requests: list[Request]) -> list[list[Completion]]:
    async def go() -> list[list[Completion]]:
        backend = backend_for(f"hf:{model}", None, None)
        try:
            return list(await asyncio.gather(*(backend.generate(r) for r in requests)))
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_chat_template_samples_finish_reasons_and_token_counts(models: dict[str, Path]) -> None:
    prompts = [f"Problem {'#' * i}: what is it?" for i in range(4)]
    requests = [ask(p, 3, temperature=0.6, max_tokens=50) for p in prompts]
    done = generate(models["scripted"], requests)
    for prompt, completions in zip(prompts, done, strict=True):
        assert len(completions) == 3
        for completion in completions:
            assert completion.text in scripted_model.responses(prompt)  # the template's letter
            assert completion.finish_reason == "stop"
            assert completion.usage.prompt_tokens == scripted_model.prompt_tokens(
                [{"role": "user", "content": prompt}]
            )
            assert completion.usage.completion_tokens == 4  # three pieces and the end token
            assert completion.model == f"hf:{models['scripted']}"
    [[cut]] = generate(models["scripted"], [ask(prompts[0], temperature=0, max_tokens=2)])
    first, middle, _ = scripted_model.steps(scripted_model.letter_for(prompts[0]))
    assert (cut.text, cut.finish_reason) == (first + middle[0], "length")
    assert cut.usage.completion_tokens == 2


def test_a_seed_makes_sampling_reproducible(models: dict[str, Path]) -> None:
    request = ask("Same prompt", 8, temperature=1.0, max_tokens=20, seed=7)
    first, again = (generate(models["scripted"], [request])[0] for _ in range(2))
    assert [c.text for c in first] == [c.text for c in again]
    assert {c.text for c in first} == scripted_model.responses("Same prompt")  # both coins


def test_batches_generate_what_each_prompt_generates_alone(models: dict[str, Path]) -> None:
    """Left padding and attention masks are right: a real-attention model, greedy."""
    requests = [ask("x" * length, 2, temperature=0, max_tokens=12) for length in (1, 9, 30, 4)]
    together = generate(models["random"], requests)
    alone = [generate(models["random"], [request])[0] for request in requests]
    assert [[c.text for c in cs] for cs in together] == [[c.text for c in cs] for cs in alone]
    assert all(c.finish_reason in ("stop", "length") for cs in together for c in cs)
    assert len({cs[0].text for cs in together}) > 1  # the prompts really differ


def test_small_batch_size_and_an_overlong_prompt(models: dict[str, Path]) -> None:
    engine = TransformersEngine(str(models["scripted"]), LocalModelOptions(batch_size=1))
    engine.load()
    [completions] = engine.generate_batch([ask("Hi", 3, temperature=0, max_tokens=10)])
    assert [c.text for c in completions] == [scripted_model.response("Hi")] * 3
    from r1eval.errors import RequestFailed

    with pytest.raises(RequestFailed, match="exceed the model's context of 4096"):
        engine.generate_batch([ask("y" * 4100, 1, max_tokens=10)])
    engine.close()


def test_generation_kwargs_greedy_and_defaults() -> None:
    assert generation_kwargs(SamplingParams(temperature=0, top_p=0.9), True)["do_sample"] is False
    assert generation_kwargs(SamplingParams(), False)["do_sample"] is False  # the model's own
    assert generation_kwargs(SamplingParams(), True) == {"do_sample": True}
    assert generation_kwargs(SamplingParams(temperature=0.6, top_p=0.95), False) == {
        "do_sample": True, "temperature": 0.6, "top_p": 0.95,
    }


def run(model: Path, data: Path, run_dir: Path, *flags: str) -> dict[str, dict[str, object]]:
    """``r1eval run --model hf:PATH`` (no --base-url), through the command line."""
    args = ["run", "--model", f"hf:{model}", "--tasks", "aime24,mmlu", "--data-dir", str(data),
            "--run-dir", str(run_dir), "--samples", "2", "--temperature", "0.6",
            "--grader-workers", "1", "--concurrency", "4", "--dtype", "float32"]
    if flags:
        args += ["--max-tokens", flags[0]]
    assert main(args) == 0
    scores = json.loads((run_dir / "scores.json").read_text())
    return scores["tasks"]  # type: ignore[no-any-return]


@pytest.mark.slow
def test_a_whole_run_scores_exactly_and_resumes(models: dict[str, Path], tmp_path: Path) -> None:
    correct = write_small_data(tmp_path / "data")
    run_dir = tmp_path / "run"
    scores = run(models["scripted"], tmp_path / "data", run_dir)
    for task, right in correct.items():
        assert scores[task]["pass@1"] == pytest.approx(sum(right) / len(right))
        assert scores[task]["n_samples"] == 2 * len(right) and scores[task]["n_errors"] == 0
        assert scores[task]["truncated_rate"] == 0
    records = list(read_log(run_dir / LOG))
    completions = [r for r in records if r["type"] == "completion"]
    assert {r["finish_reason"] for r in completions} == {"stop"}
    assert all(r["usage"]["completion_tokens"] == 4 for r in completions)
    manifest = json.loads((run_dir / "run.json").read_text())
    options = LocalModelOptions(dtype="float32")
    assert manifest["identity"]["endpoint"] == identity_for(f"hf:{models['scripted']}", None,
                                                            local=options)

    assert run(models["scripted"], tmp_path / "data", run_dir) == scores  # resumed: nothing new
    assert len(list(read_log(run_dir / LOG))) == len(records)

    cut = run(models["scripted"], tmp_path / "data", tmp_path / "cut", "2")
    assert cut["aime24"]["truncated_rate"] == 1 and cut["aime24"]["pass@1"] == 0


def test_a_missing_model_fails_before_the_run_in_one_line(tmp_path: Path) -> None:
    require("torch", "transformers")
    from r1eval.errors import EndpointError

    async def go() -> None:
        backend = backend_for(f"hf:{tmp_path / 'nowhere'}", None, None)
        try:
            await backend.preflight()  # type: ignore[attr-defined]
        finally:
            await backend.aclose()

    with pytest.raises(EndpointError, match="no such model folder") as raised:
        asyncio.run(go())
    assert "\n" not in str(raised.value)
