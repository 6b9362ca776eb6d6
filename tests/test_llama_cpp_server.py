"""A real inference server: llama-cpp-python's OpenAI-compatible server, on the CPU, serving
the scripted model as a GGUF file written by the test (``tiny_gguf``; no download).

What only a real server shows: its chat template (from the GGUF metadata), its SentencePiece
tokenisation (counted exactly), ``finish_reason: length`` at a small token limit, one choice
whatever ``n`` asks (so r1eval tops up), and ``seed``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from r1eval.backends.openai_compat import OpenAICompatBackend
from r1eval.cli import main
from r1eval.store.folder import LOG, read_log
from r1eval.types import Completion, Request, SamplingParams

import scripted_model
from local_models import require, write_small_data

pytestmark = pytest.mark.llama_cpp


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    require("llama_cpp", "gguf", "fastapi", "uvicorn")
    from tiny_gguf import LlamaServer, write_tiny_gguf

    root = tmp_path_factory.mktemp("llama")
    with LlamaServer(write_tiny_gguf(root / "tiny.gguf"), root / "server.log") as running:
        yield running


def chat(server: object, request: Request) -> list[Completion]:
    async def go() -> list[Completion]:
        backend = OpenAICompatBackend("tiny", server.base_url, None, max_attempts=1)  # type: ignore[attr-defined]
        try:
            return await backend.generate(request)
        finally:
            await backend.aclose()

    return asyncio.run(go())


def posts(server: object) -> int:
    """Chat requests the server has answered so far (from its access log)."""
    log: Path = server.log  # type: ignore[attr-defined]
    return log.read_text().count('"POST /v1/chat/completions HTTP/1.1" 200')


def ask(text: str, n: int = 1, **sampling: float | int | None) -> Request:
    return Request(({"role": "user", "content": text},), n, SamplingParams(**sampling))  # type: ignore[arg-type]


def test_template_tokenisation_and_finish_reasons(server: object) -> None:
    prompt = "What is 2 + 2? Think é."
    [done] = chat(server, ask(prompt, temperature=0, max_tokens=50))
    assert done.text == scripted_model.response(prompt)  # the letter the template appended
    assert done.finish_reason == "stop"
    messages = [{"role": "user", "content": prompt}]
    assert done.usage.prompt_tokens == scripted_model.prompt_tokens(messages, spaces_escaped=True)
    assert done.usage.completion_tokens == 3
    [cut] = chat(server, ask(prompt, temperature=0, max_tokens=2))
    first, middle, _ = scripted_model.steps(scripted_model.letter_for(prompt))
    assert (cut.text, cut.finish_reason) == (first + middle[0], "length")


def test_n_is_ignored_so_the_backend_tops_up(server: object) -> None:
    before = posts(server)
    done = chat(server, ask("Three answers, please", 3, temperature=1.0, max_tokens=50))
    assert len(done) == 3 and posts(server) - before == 3  # one choice per request
    assert all(c.text in scripted_model.responses("Three answers, please") for c in done)


def test_a_seed_fixes_the_sample(server: object) -> None:
    def sample(seed: int) -> str:
        [done] = chat(server, ask("Toss a coin", temperature=1.0, max_tokens=50, seed=seed))
        return done.text

    seen = {seed: sample(seed) for seed in range(10)}
    assert all(sample(seed) == text for seed, text in list(seen.items())[:3])
    assert set(seen.values()) == scripted_model.responses("Toss a coin")  # the coin is real


def run_args(server: object, data: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        "run", "--model", "tiny", "--base-url", server.base_url, "--tasks", "aime24,mmlu",  # type: ignore[attr-defined]
        "--samples", "2", "--temperature", "0.6", "--data-dir", str(data),
        "--run-dir", str(run_dir), "--grader-workers", "1", "--concurrency", "4", *extra,
    ]


@pytest.mark.slow
def test_a_whole_run_against_the_server(server: object, tmp_path: Path) -> None:
    correct = write_small_data(tmp_path / "data")
    assert main(run_args(server, tmp_path / "data", tmp_path / "run")) == 0
    scores = json.loads((tmp_path / "run" / "scores.json").read_text())["tasks"]
    for task, right in correct.items():
        assert scores[task]["pass@1"] == pytest.approx(sum(right) / len(right))
        assert scores[task]["n_samples"] == 2 * len(right) and scores[task]["n_errors"] == 0
    completions = [r for r in read_log(tmp_path / "run" / LOG) if r["type"] == "completion"]
    assert all(r["usage"]["prompt_tokens"] > 100 for r in completions)

    before = posts(server)
    assert main(run_args(server, tmp_path / "data", tmp_path / "run")) == 0
    assert posts(server) == before  # resumed: nothing left to ask

    assert main(run_args(server, tmp_path / "data", tmp_path / "cut", "--max-tokens", "2")) == 0
    cut = json.loads((tmp_path / "cut" / "scores.json").read_text())["tasks"]
    assert cut["aime24"]["truncated_rate"] == 1 and cut["aime24"]["pass@1"] == 0
