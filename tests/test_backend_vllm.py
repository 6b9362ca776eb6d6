"""``--model vllm:PATH`` without vLLM: a stand-in ``vllm`` module that records what the
backend asks of ``vllm.LLM`` and answers as the scripted model would, and the one-line error
when vLLM is not installed.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from r1eval.backends.factory import backend_for, identity_for, split_model
from r1eval.backends.local import LocalModelOptions
from r1eval.backends.vllm_offline import engine_kwargs, sampling_kwargs
from r1eval.errors import UsageError
from r1eval.run.config import RunConfig
from r1eval.run.evaluate import execute, prepare
from r1eval.types import Request, SamplingParams

import scripted_model
from local_models import write_small_data


@dataclass
class FakeSamplingParams:
    """What ``vllm.SamplingParams`` was given; its defaults stand for a model's own."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 20
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    max_tokens: int | None = 16
    seed: int | None = None
    stop: list[str] | None = None


@dataclass
class FakeLLM:
    """``vllm.LLM``: each ``chat`` call is recorded and answered like the scripted model."""

    kwargs: dict[str, Any]
    calls: list[tuple[list[Any], list[FakeSamplingParams]]] = field(default_factory=list)
    closed: bool = False

    def get_default_sampling_params(self) -> FakeSamplingParams:
        return FakeSamplingParams(temperature=0.7, top_p=0.8)  # generation_config.json

    def chat(
        self, messages: list[Any], sampling_params: list[FakeSamplingParams], use_tqdm: bool
    ) -> list[Any]:
        assert use_tqdm is False and len(messages) == len(sampling_params)
        self.calls.append((messages, sampling_params))
        return [self._output(m, p) for m, p in zip(messages, sampling_params, strict=True)]

    def _output(self, conversation: list[dict[str, str]], params: FakeSamplingParams) -> Any:
        text = scripted_model.response(conversation[-1]["content"])
        samples = [
            SimpleNamespace(text=text, token_ids=[0] * 4, finish_reason="stop")
            for _ in range(params.n)
        ]
        return SimpleNamespace(prompt_token_ids=[0] * 40, outputs=samples)

    def shutdown(self) -> None:
        self.closed = True


@pytest.fixture()
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> list[FakeLLM]:
    engines: list[FakeLLM] = []
    module = ModuleType("vllm")
    module.LLM = lambda **kwargs: engines.append(FakeLLM(kwargs)) or engines[-1]  # type: ignore[attr-defined]
    module.SamplingParams = FakeSamplingParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)
    return engines


def request(n: int = 1, **sampling: Any) -> Request:
    return Request(({"role": "user", "content": "Q?"},), n, SamplingParams(**sampling))


def test_the_prefix_picks_the_backend() -> None:
    assert split_model("vllm:/models/r1") == ("vllm", "/models/r1")
    assert split_model("hf:org/name") == ("hf", "org/name")
    assert split_model("deepseek-r1:7b") == (None, "deepseek-r1:7b")  # an Ollama name
    assert identity_for("m", "http://h:1/v1/") == {"model": "m", "base_url": "http://h:1/v1"}
    with pytest.raises(UsageError, match="--base-url is needed"):
        identity_for("m", None)


def test_k_samples_are_one_request_with_n_and_the_model_defaults_fill_the_rest() -> None:
    defaults = FakeSamplingParams(temperature=0.7, top_p=0.8, top_k=20)
    given = sampling_kwargs(request(4, temperature=0.6, max_tokens=100, seed=3), defaults)
    assert given == {
        "n": 4, "temperature": 0.6, "top_p": 0.8, "top_k": 20, "min_p": 0.0,
        "repetition_penalty": 1.0, "max_tokens": 100, "seed": 3, "stop": None,
    }
    unset = sampling_kwargs(request(1, stop=("###",)), defaults)
    assert unset["temperature"] == 0.7 and unset["max_tokens"] is None  # up to the context
    assert unset["stop"] == ["###"]


def test_engine_options_pass_through(tmp_path: Path) -> None:
    options = LocalModelOptions(tensor_parallel_size=4, dtype="bfloat16", max_model_len=8192)
    assert engine_kwargs(str(tmp_path), options) == {
        "model": str(tmp_path.resolve()), "dtype": "bfloat16", "tensor_parallel_size": 4,
        "gpu_memory_utilization": 0.9, "trust_remote_code": False, "max_model_len": 8192,
    }
    identity = identity_for(f"vllm:{tmp_path}", None, local=options)
    assert identity == {
        "model": f"vllm:{tmp_path.resolve()}", "base_url": "local:vllm", "dtype": "bfloat16",
        "max_model_len": "8192",
    }


def test_requests_in_flight_together_are_one_chat_call(
    fake_vllm: list[FakeLLM], tmp_path: Path
) -> None:
    options = LocalModelOptions(tensor_parallel_size=2)

    async def go() -> list[Any]:
        backend = backend_for(f"vllm:{tmp_path}", None, None, local=options)
        await backend.preflight()  # type: ignore[attr-defined]
        done = await asyncio.gather(*(backend.generate(request(3, seed=i)) for i in range(5)))
        await backend.aclose()
        return list(done)

    done = asyncio.run(go())
    [engine] = fake_vllm
    assert engine.kwargs["tensor_parallel_size"] == 2
    assert engine.kwargs["model"] == str(tmp_path.resolve())
    [(conversations, params)] = engine.calls
    assert conversations == [[{"role": "user", "content": "Q?"}]] * 5
    assert [p.n for p in params] == [3] * 5 and [p.seed for p in params] == list(range(5))
    assert all(len(completions) == 3 for completions in done)
    completion = done[0][0]
    assert completion.text == scripted_model.response("Q?") and completion.finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (40, 4)
    assert completion.model == f"vllm:{tmp_path.resolve()}" and engine.closed


def test_a_run_through_vllm(fake_vllm: list[FakeLLM], tmp_path: Path) -> None:
    correct = write_small_data(tmp_path / "data")
    spec = "vllm:org/r1-distill"  # a Hub id: vLLM would fetch it
    config = RunConfig(
        model=spec, base_url="local", tasks=["aime24", "mmlu"], data_dir=tmp_path / "data",
        run_dir=tmp_path / "run", samples=4, grader_workers=1, concurrency=64,
    )
    prepared = prepare(config, {}, False, endpoint=identity_for(spec, None))
    scores = execute(prepared, backend=backend_for(spec, None, None)).tasks
    for task, right in correct.items():
        assert scores[task].pass1 == pytest.approx(sum(right) / len(right))
    [engine] = fake_vllm
    assert all(p.n == 4 for _, params in engine.calls for p in params)  # K in one request
    assert sum(len(params) for _, params in engine.calls) == 16  # one per question


def test_without_vllm_the_error_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError

    async def go() -> None:
        backend = backend_for("vllm:/models/r1", None, None)
        try:
            await backend.generate(request())
        finally:
            await backend.aclose()

    with pytest.raises(UsageError, match=r"pip install 'r1eval\[vllm\]'") as raised:
        asyncio.run(go())
    assert "\n" not in str(raised.value)


def test_a_missing_folder_is_named(fake_vllm: list[FakeLLM], tmp_path: Path) -> None:
    from r1eval.errors import EndpointError

    async def go() -> None:
        backend = backend_for(f"vllm:{tmp_path / 'nowhere'}", None, None)
        try:
            await backend.generate(request())
        finally:
            await backend.aclose()

    with pytest.raises(EndpointError, match="no such model folder"):
        asyncio.run(go())
    assert fake_vllm == []  # vLLM was never started
