"""The server's setup on record: at preflight r1eval reads what vLLM, SGLang or Ollama say
about themselves (in their own response shapes, served here by the tests' server) into
run.json, and regress and compare say when two runs were served differently."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from r1eval.backends.server_setup import from_ollama_show, server_differences
from r1eval.cli import main

from openai_server import OpenAIServer


def run(server: OpenAIServer, run_dir: Path, data_dir: Path, *extra: str) -> dict[str, Any]:
    args = ["run", "--model", server.model, "--base-url", server.base_url, "--tasks", "aime24",
            "--limit", "1", "--data-dir", str(data_dir), "--run-dir", str(run_dir),
            "--grader-workers", "0", *extra]
    assert main(args) == 0
    return json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["server"]


@pytest.mark.data
@pytest.mark.parametrize(("engine", "expected"), [
    ("vllm", {"engine": "vllm", "version": "0.8.5", "quantization": None,
              "context_length": 16384, "dtype": None, "root": "/models/test-model",
              "headers": {"server": "uvicorn"},
              "answered": ["/version", "/v1/models", "headers"]}),
    ("sglang", {"engine": "sglang", "version": "0.4.6", "quantization": "fp8",
                "context_length": 16384, "dtype": "auto", "kv_cache_dtype": "auto",
                "root": "/models/test-model", "tensor_parallel": 1, "data_parallel": 1,
                "answered": ["/get_server_info", "headers"]}),
    ("ollama", {"engine": "ollama", "version": "0.6.2", "quantization": "Q4_K_M",
                "context_length": 16384, "dtype": None, "parameter_size": "7.6B",
                "answered": ["/api/show", "/api/version", "headers"]}),
])
def test_what_each_engine_says_about_itself_is_in_run_json(
    tmp_path: Path, data_dir: Path, engine: str, expected: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    version = {"vllm": "0.8.5", "sglang": "0.4.6", "ollama": "0.6.2"}[engine]
    quantization = {"vllm": None, "sglang": "fp8", "ollama": "Q4_K_M"}[engine]
    with OpenAIServer(engine=engine, version=version, quantization=quantization,
                      context_length=16384, slots=8) as server:
        record = run(server, tmp_path / "run", data_dir)
        asked = dict(server.routes_asked)
    headers = record.pop("headers", {})
    if engine == "vllm":
        assert headers == expected.pop("headers")
    else:  # the test server's own Server header: kept, whatever it is
        assert set(headers) == {"server"}
    assert record == expected
    # SGLang's info is asked once: the capacity (samples in flight) and the setup share it
    assert asked["/get_server_info"] == 1
    assert "up to 8 samples in flight" in capsys.readouterr().err or engine != "sglang"


@pytest.mark.data
def test_a_server_that_says_nothing_is_unknown_and_the_run_goes_on(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with OpenAIServer(models_route=False) as server:
        record = run(server, tmp_path / "run", data_dir)
    assert record == {"engine": None, "version": None, "quantization": None,
                      "context_length": None, "dtype": None, "answered": []}
    assert "server: unknown (it does not say how it is set up)" in capsys.readouterr().err


@pytest.mark.data
def test_a_route_that_does_not_answer_in_time_is_unknown(tmp_path: Path, data_dir: Path) -> None:
    """Each probe has the preflight's limit (here --timeout 1): vLLM's /version answering
    after 20 s is given up, the listing still says the context, and the run goes on."""
    with OpenAIServer(engine="vllm", setup_delay_s=20.0) as server:
        record = run(server, tmp_path / "run", data_dir, "--timeout", "1")
    assert record["version"] is None and record["context_length"] == 32768
    assert "/version" not in record["answered"]


@pytest.mark.data
def test_regress_and_compare_warn_when_two_runs_were_served_differently(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, quantization in (("base", "Q8_0"), ("cand", "Q4_K_M")):
        with OpenAIServer(engine="ollama", quantization=quantization) as server:
            run(server, tmp_path / name, data_dir)
    capsys.readouterr()
    main(["regress", "--base", str(tmp_path / "base"), "--candidate", str(tmp_path / "cand")])
    assert ("served differently: quantization Q8_0 for the base run, Q4_K_M for the candidate"
            in capsys.readouterr().out)
    main(["compare", str(tmp_path / "base"), str(tmp_path / "cand")])
    assert "served differently: quantization Q8_0 for base, Q4_K_M for cand" in (
        capsys.readouterr().out)


def test_a_field_one_run_does_not_know_is_no_difference() -> None:
    vllm = {"engine": "vllm", "version": "0.8.5", "context_length": 32768}
    assert server_differences(vllm, {**vllm, "version": None}) == []
    assert server_differences(vllm, None) == []
    assert server_differences(vllm, {**vllm, "context_length": 8192}) == [
        "served differently: context length 32768 for the base run, 8192 for the candidate"]


def test_ollama_context_is_num_ctx_when_set_else_the_trained_length() -> None:
    show = {"details": {"quantization_level": "Q4_K_M"},
            "model_info": {"general.architecture": "qwen2", "qwen2.context_length": 131072}}
    assert from_ollama_show(show)["context_length"] == 131072
    with_ctx = {**show, "parameters": 'stop "<|x|>"\nnum_ctx                        8192'}
    assert from_ollama_show(with_ctx)["context_length"] == 8192
    assert from_ollama_show({"error": "model not found"}) == {}
