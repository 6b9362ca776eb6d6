"""``--model vllm:PATH --data-parallel-size K``: K engine processes, faked at vLLM's ``LLM``.

A stand-in ``vllm`` package is written to a temporary folder on ``sys.path``; the spawned ranks
import it as they would import vLLM (spawned processes get the parent's ``sys.path``). It
records, per process, what ``LLM(...)`` was given and the ``CUDA_VISIBLE_DEVICES`` it saw, each
``chat`` call, and ``shutdown``; it answers as the scripted model does, and kills its own
process (SIGKILL) when its GPUs are listed in ``R1EVAL_FAKE_VLLM_KILL``, and takes two seconds
(``R1EVAL_FAKE_VLLM_SLOW_S``) per batch on those ``R1EVAL_FAKE_VLLM_SLOW`` lists.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cli import assert_one_line_error

from r1eval.backends.factory import backend_for, identity_for
from r1eval.backends.local import LocalModelOptions
from r1eval.backends.vllm_offline import engine_kwargs
from r1eval.backends.vllm_ranks import gpu_slices
from r1eval.cli import main
from r1eval.errors import EndpointError, UsageError
from r1eval.run.config import RunConfig
from r1eval.run.evaluate import execute, prepare, sequence_limit
from r1eval.store.contracts import TaskScore
from r1eval.types import Request, SamplingParams

from local_models import write_small_data

FAKE_VLLM = '''
"""A stand-in for vLLM's offline API, recording what it is asked (tests only)."""
import asyncio
import json
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from types import SimpleNamespace

import scripted_model


def _record(**event):
    event.update(pid=os.getpid(), gpus=os.environ.get("CUDA_VISIBLE_DEVICES"))
    folder = os.environ["R1EVAL_FAKE_VLLM_RECORDS"]
    with open(os.path.join(folder, f"{os.getpid()}.jsonl"), "a") as out:
        out.write(json.dumps(event) + "\\n")


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    max_tokens: int = 16
    seed: int = None
    stop: list = None


class LLM:
    def __init__(self, **kwargs):
        _record(event="llm", kwargs=kwargs)

    def get_default_sampling_params(self):
        return SamplingParams(temperature=0.7, top_p=0.8)

    def chat(self, messages, sampling_params, use_tqdm):
        _record(event="chat", requests=len(messages))
        doomed = os.environ.get("R1EVAL_FAKE_VLLM_KILL", "").split(";")
        if os.environ.get("CUDA_VISIBLE_DEVICES") in doomed:
            os.kill(os.getpid(), signal.SIGKILL)
        if os.environ.get("CUDA_VISIBLE_DEVICES") in os.environ.get(
                "R1EVAL_FAKE_VLLM_SLOW", "").split(";"):
            time.sleep(float(os.environ.get("R1EVAL_FAKE_VLLM_SLOW_S", "2")))
        return [
            SimpleNamespace(
                prompt_token_ids=[0] * 40,
                outputs=[
                    SimpleNamespace(
                        text=scripted_model.response(conversation[-1]["content"]),
                        token_ids=[0] * 4, finish_reason="stop")
                    for _ in range(params.n)
                ],
            )
            for conversation, params in zip(messages, sampling_params)
        ]

    def shutdown(self):
        _record(event="shutdown")
'''


@pytest.fixture()
def fake_vllm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The stand-in ``vllm`` importable here and in spawned ranks; yields the records folder."""
    package = tmp_path / "fake_site" / "vllm"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_VLLM)
    records = tmp_path / "records"
    records.mkdir()
    monkeypatch.syspath_prepend(str(package.parent))
    monkeypatch.setenv("R1EVAL_FAKE_VLLM_RECORDS", str(records))
    monkeypatch.delenv("R1EVAL_FAKE_VLLM_KILL", raising=False)
    monkeypatch.delenv("R1EVAL_FAKE_VLLM_SLOW", raising=False)
    monkeypatch.delenv("R1EVAL_FAKE_VLLM_SLOW_S", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    yield records
    sys.modules.pop("vllm", None)


def events(records: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted(records.glob("*.jsonl"))
            for line in path.read_text().splitlines()]


def requests_by_rank(records: Path) -> Counter[str]:
    """Requests each rank (named by its GPUs) was given, over all its ``chat`` calls."""
    done = Counter[str]()
    for event in events(records):
        if event["event"] == "chat":
            done[event["gpus"]] += event["requests"]
    return done


def assert_all_ended(records: Path) -> None:
    """No rank left behind: every process the stand-in ran in is gone (or is this one)."""
    assert multiprocessing.active_children() == []
    for pid in {e["pid"] for e in events(records)} - {os.getpid()}:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def run_with(tmp_path: Path, name: str, data_parallel: int,
             tensor_parallel: int = 1, concurrency: int = 64) -> tuple[dict[str, TaskScore], Path]:
    data = tmp_path / "data"
    if not data.exists():
        write_small_data(data)
    config = RunConfig(
        model=f"vllm:{tmp_path / 'model'}", tasks=["aime24", "mmlu"], data_dir=data,
        run_dir=tmp_path / name, samples=4, grader_workers=1, concurrency=concurrency,
        data_parallel_size=data_parallel, tensor_parallel_size=tensor_parallel,
    )
    options = config.local_options()
    prepared = prepare(config, {}, False)
    scores = execute(prepared, backend=backend_for(config.model, None, None, local=options))
    return scores.tasks, tmp_path / name


def samples(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    lines = (run_dir / "samples.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == kind]


def test_gpu_slices_are_consecutive_groups_of_the_visible_ones() -> None:
    assert gpu_slices(2, 2, {"CUDA_VISIBLE_DEVICES": "4,5,6,7"}) == ["4,5", "6,7"]
    assert gpu_slices(3, 1, {}) == ["0", "1", "2"]
    assert gpu_slices(2, 1, {"CUDA_VISIBLE_DEVICES": "GPU-a, GPU-b,GPU-c"}) == ["GPU-a", "GPU-b"]
    with pytest.raises(UsageError, match="needs 4 GPUs; CUDA_VISIBLE_DEVICES lists 3"):
        gpu_slices(2, 2, {"CUDA_VISIBLE_DEVICES": "0,1,2"})


def test_each_rank_builds_the_same_llm_on_its_gpus_and_the_scores_are_exact(
    fake_vllm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "model").mkdir()
    alone, _ = run_with(tmp_path, "one", 1, tensor_parallel=2)
    in_process = [e for e in events(fake_vllm) if e["event"] == "llm"]
    assert [e["pid"] for e in in_process] == [os.getpid()]  # K=1: in this process, as before
    for path in fake_vllm.iterdir():
        path.unlink()

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    spread, run_dir = run_with(tmp_path, "two", 2, tensor_parallel=2)
    assert spread == alone  # every score, exactly
    found = events(fake_vllm)
    llms = [e for e in found if e["event"] == "llm"]
    expected = engine_kwargs(str(tmp_path / "model"), LocalModelOptions(tensor_parallel_size=2))
    assert [e["kwargs"] for e in llms] == [expected, expected]  # vllm.LLM(...) exactly
    assert sorted(e["gpus"] for e in llms) == ["4,5", "6,7"]
    assert os.getpid() not in {e["pid"] for e in found}
    done = requests_by_rank(fake_vllm)
    assert done.total() == 16 and set(done) == {"4,5", "6,7"}  # each question once; both ranks
    assert sorted(e["gpus"] for e in found if e["event"] == "shutdown") == ["4,5", "6,7"]
    assert len(samples(run_dir, "completion")) == 64 and samples(run_dir, "error") == []
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["config"]["data_parallel_size"] == 2
    assert_all_ended(fake_vllm)


def test_a_rank_killed_mid_run_costs_no_sample(
    fake_vllm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "model").mkdir()
    correct = write_small_data(tmp_path / "data")
    monkeypatch.setenv("R1EVAL_FAKE_VLLM_KILL", "1")  # rank 1 dies in its first batch
    scores, run_dir = run_with(tmp_path, "run", 2)
    for task, right in correct.items():
        assert scores[task].pass1 == pytest.approx(sum(right) / len(right))
    completions = samples(run_dir, "completion")
    assert samples(run_dir, "error") == []
    assert len(completions) == 64 and set(Counter(c["key"] for c in completions).values()) == {1}
    died_in = [e for e in events(fake_vllm) if e["event"] == "chat" and e["gpus"] == "1"]
    assert len(died_in) == 1 and died_in[0]["requests"] > 0  # rank 1 had work when it died
    assert requests_by_rank(fake_vllm)["0"] == 16  # rank 0 then did it all
    assert_all_ended(fake_vllm)


def test_a_free_rank_takes_the_next_work_never_a_fixed_share(
    fake_vllm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "model").mkdir()
    monkeypatch.setenv("R1EVAL_FAKE_VLLM_SLOW", "0")
    run_with(tmp_path, "run", 2, concurrency=8)  # two questions (K=4) in flight
    done = requests_by_rank(fake_vllm)
    assert done.total() == 16 and done["0"] <= 2 < 14 <= done["1"]  # a fixed split: 8 and 8
    assert_all_ended(fake_vllm)


def test_every_rank_dead_stops_the_run_with_one_message(
    fake_vllm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "model").mkdir()
    monkeypatch.setenv("R1EVAL_FAKE_VLLM_KILL", "0;1")
    with pytest.raises(EndpointError, match=r"every engine of vllm:\S+ ended \(last: vllm "
                       r"data-parallel rank \d \(GPUs \d\) ended \(exit code -9\)\)") as raised:
        run_with(tmp_path, "run", 2)
    assert "\n" not in str(raised.value)
    assert_all_ended(fake_vllm)


def test_a_run_ending_on_an_error_interrupts_a_busy_rank_which_shuts_down(
    fake_vllm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "model").mkdir()
    monkeypatch.setenv("R1EVAL_FAKE_VLLM_SLOW", "0;1")
    monkeypatch.setenv("R1EVAL_FAKE_VLLM_SLOW_S", "600")  # a batch that would not end

    async def go() -> None:
        options = LocalModelOptions(data_parallel_size=2)
        backend = backend_for(f"vllm:{tmp_path / 'model'}", None, None, local=options)
        await backend.preflight()  # type: ignore[attr-defined]
        question = Request(({"role": "user", "content": "Q?"},), 1, SamplingParams())
        waiting = asyncio.create_task(backend.generate(question))
        for _ in range(600):  # until a rank is in its batch
            if any(e["event"] == "chat" for e in events(fake_vllm)):
                break
            await asyncio.sleep(0.05)
        waiting.cancel()  # what the runner does when the run stops on an error
        await backend.aclose()

    asyncio.run(go())
    found = events(fake_vllm)
    [busy] = {e["gpus"] for e in found if e["event"] == "chat"}
    assert sorted(e["gpus"] for e in found if e["event"] == "shutdown") == ["0", "1"]  # both
    assert busy in {"0", "1"}
    assert_all_ended(fake_vllm)


def test_a_rank_that_cannot_load_fails_preflight_and_leaves_nothing_running(
    fake_vllm: Path, tmp_path: Path
) -> None:
    with pytest.raises(EndpointError, match="no such model folder"):
        run_with(tmp_path, "run", 2)  # tmp_path/model does not exist
    assert not (tmp_path / "run").exists()
    assert events(fake_vllm) == []  # vLLM was never started


def test_without_concurrency_each_engine_gets_the_default_batch(tmp_path: Path) -> None:
    config = RunConfig(model=f"vllm:{tmp_path}", tasks=["aime24"], data_parallel_size=4)
    backend = backend_for(config.model, None, None, local=config.local_options())
    limit, source = asyncio.run(sequence_limit(config, backend))
    assert (limit, source) == (1024, "the default 256 per engine x --data-parallel-size")


def test_a_run_resumed_with_another_data_parallel_size_is_the_same_run(
    fake_vllm: Path, tmp_path: Path
) -> None:
    one = identity_for(f"vllm:{tmp_path}", None, local=LocalModelOptions())
    four = identity_for(f"vllm:{tmp_path}", None, local=LocalModelOptions(data_parallel_size=4))
    assert one == four  # how the model was served, not what it answers
    write_small_data(tmp_path / "data")
    folders = {
        prepare(RunConfig(model=f"vllm:{tmp_path}", tasks=["aime24"], data_parallel_size=k,
                          data_dir=tmp_path / "data"), {}, False).run_dir
        for k in (1, 2)
    }
    assert len(folders) == 1  # the same default run folder
    (tmp_path / "model").mkdir()
    first, run_dir = run_with(tmp_path, "run", 1)
    for path in fake_vllm.iterdir():
        path.unlink()
    again, _ = run_with(tmp_path, "run", 2)  # resumes: nothing left to ask
    assert again == first and [e for e in events(fake_vllm) if e["event"] == "chat"] == []
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["config"]["data_parallel_size"] == 2  # this session's setting
    assert_all_ended(fake_vllm)


def test_the_flag_runs_the_ranks_from_the_command_line(
    fake_vllm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "model").mkdir()
    write_small_data(tmp_path / "data")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    code = main(["run", "--model", f"vllm:{tmp_path / 'model'}", "--tasks", "aime24",
                 "--data-dir", str(tmp_path / "data"), "--samples", "2", "--grader-workers",
                 "0", "--data-parallel-size", "2", "--run-dir", str(tmp_path / "run")])
    assert code == 0
    llms = [e for e in events(fake_vllm) if e["event"] == "llm"]
    assert sorted(e["gpus"] for e in llms) == ["2", "3"]
    assert all(e["kwargs"]["tensor_parallel_size"] == 1 for e in llms)
    assert len(samples(tmp_path / "run", "completion")) == 16
    assert_all_ended(fake_vllm)


@pytest.mark.parametrize(
    ("model", "extra", "environ", "fragment"),
    [
        ("m", [], {}, "--data-parallel-size applies to --model vllm:PATH only"),
        ("hf:/models/x", [], {}, "--data-parallel-size applies to --model vllm:PATH only"),
        ("vllm:/models/x", ["--tensor-parallel-size", "2"], {"CUDA_VISIBLE_DEVICES": "0,1,2"},
         "--data-parallel-size 2 x --tensor-parallel-size 2 needs 4 GPUs"),
    ],
)
def test_bad_data_parallel_flags_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    model: str, extra: list[str], environ: dict[str, str], fragment: str,
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    args = ["run", "--model", model, "--tasks", "aime24", "--run-dir", str(tmp_path / "run"),
            "--data-parallel-size", "2", *extra]
    if model == "m":
        args += ["--base-url", "http://127.0.0.1:9/v1"]
    assert main(args) == 2
    assert_one_line_error(capsys.readouterr().err, fragment)
    assert not (tmp_path / "run").exists()


def test_a_data_parallel_size_below_one_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run", "--model", "vllm:/models/x", "--tasks", "aime24", "--data-parallel-size", "0",
            "--run-dir", str(tmp_path / "run")]
    assert main(args) == 2
    assert_one_line_error(capsys.readouterr().err, "--data-parallel-size must be at least 1")
