"""Thinking controls (--reasoning-effort, --chat-template-kwargs, --system-prompt,
--extra-body): sent to the server exactly as given, recorded in the run's identity, checked
on input, and flagged by compare and regress when two runs or a source differ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from r1eval.claims.check import TaskView, compare_views
from r1eval.claims.published import load_reported
from r1eval.cli import main
from r1eval.regress.paired import protocol_differences
from r1eval.run.config import RunConfig, build_config
from r1eval.run.evaluate import prepare
from r1eval.store.contracts import Manifest, Sampling, TaskScore

from openai_server import OpenAIServer

CONTROLS = ["--reasoning-effort", "high", "--chat-template-kwargs", '{"enable_thinking": true}',
            "--system-prompt", "Think, then answer.", "--extra-body", '{"top_k": 20}']


def run_args(server: OpenAIServer, run_dir: Path, data_dir: Path, *extra: str) -> list[str]:
    return ["run", "--model", server.model, "--base-url", server.base_url, "--tasks", "aime24",
            "--limit", "2", "--data-dir", str(data_dir), "--run-dir", str(run_dir),
            "--grader-workers", "0", "--stream", "off", "--temperature", "0.6",
            "--max-tokens", "100", *extra]


@pytest.mark.data
def test_the_controls_reach_the_server_exactly_and_are_the_runs_identity(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with OpenAIServer() as server:
        assert main(run_args(server, tmp_path / "run", data_dir, *CONTROLS)) == 0
        bodies = server.requests
        assert len(bodies) == 2
        for body in bodies:
            system, user = body.pop("messages")
            assert system == {"role": "system", "content": "Think, then answer."}
            assert user["role"] == "user"
            assert body == {"model": server.model, "temperature": 0.6, "max_tokens": 100,
                            "reasoning_effort": "high",
                            "chat_template_kwargs": {"enable_thinking": True}, "top_k": 20}
        manifest = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))
        assert manifest["identity"]["sampling"] == {
            "temperature": 0.6, "top_p": None, "max_tokens": 100, "stop": [], "seed": None,
            "reasoning_effort": "high", "chat_template_kwargs": {"enable_thinking": True},
            "system_prompt": "Think, then answer.", "extra_body": {"top_k": 20}}
        # the same command resumes its run: nothing asked again
        assert main(run_args(server, tmp_path / "run", data_dir, *CONTROLS)) == 0
        assert len(server.requests) == 2
        # another setting is another run
        capsys.readouterr()
        changed = [*CONTROLS[:3], '{"enable_thinking": false}', *CONTROLS[4:]]
        assert main(run_args(server, tmp_path / "run", data_dir, *changed)) == 2
        assert ("sampling.chat_template_kwargs.enable_thinking: True in the folder, False now"
                in capsys.readouterr().err)
        # none given: none sent, and the identity is the one runs without them always had
        assert main(run_args(server, tmp_path / "plain", data_dir)) == 0
        assert all(set(body) == {"model", "messages", "temperature", "max_tokens"}
                   for body in server.requests[2:])
    plain = json.loads((tmp_path / "plain" / "run.json").read_text(encoding="utf-8"))
    assert set(plain["identity"]["sampling"]) == {"temperature", "top_p", "max_tokens", "stop",
                                                  "seed"}


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--chat-template-kwargs", "{enable_thinking: true}"],
         "--chat-template-kwargs is not valid JSON"),
        (["--extra-body", "[1, 2]"], "--extra-body must be a JSON object"),
        (["--extra-body", '{"temperature": 0, "top_k": 5}'],
         "--extra-body sets temperature, which r1eval sends itself"),
        (["--reasoning-effort", "hgih"], "--reasoning-effort: 'hgih' is not one of"),
        (["--system-prompt", ""], "--system-prompt"),
        (["--model", "vllm:/no/such/model", "--chat-template-kwargs", "{}"],
         "--chat-template-kwargs apply to an endpoint (--base-url), not to the in-process"),
    ],
)
def test_bad_controls_are_one_line_naming_the_flag_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], fragment: str
) -> None:
    args = ["run", "--model", "m", "--base-url", "http://127.0.0.1:9/v1", "--tasks", "aime24",
            "--data-dir", str(tmp_path), "--run-dir", str(tmp_path / "run"), *extra]
    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("r1eval: error: ") and fragment in lines[0]
    assert not (tmp_path / "run").exists()


def test_a_config_file_gives_the_json_controls_as_tables(tmp_path: Path) -> None:
    path = tmp_path / "r1eval.toml"
    path.write_text('model = "m"\ntasks = ["aime24"]\nextra_body = { top_k = 20 }\n'
                    '[chat_template_kwargs]\nenable_thinking = false\n', encoding="utf-8")
    sampling = build_config({}, path, {}).sampling()
    assert sampling.chat_template_kwargs == {"enable_thinking": False}
    assert sampling.extra_body == {"top_k": 20}
    from_env = build_config({"model": "m", "tasks": "aime24"}, None,
                            {"R1EVAL_EXTRA_BODY": '{"min_p": 0.05}'})
    assert from_env.sampling().extra_body == {"min_p": 0.05}


@pytest.mark.data
def test_regress_names_each_control_that_differs(data_dir: Path) -> None:
    def manifest(**controls: object) -> Manifest:
        config = RunConfig(model="m", base_url="http://127.0.0.1:9/v1", tasks=["aime24"],
                           limit=2, data_dir=data_dir, temperature=0.6, **controls)
        return prepare(config, {}, key_explicit=False).manifest

    base = manifest()
    candidate = manifest(reasoning_effort="low", chat_template_kwargs={"enable_thinking": False},
                         system_prompt="Be brief.")
    assert protocol_differences(base, candidate, ["aime24"]) == [
        "--reasoning-effort none vs \"low\"",
        "--chat-template-kwargs none vs {\"enable_thinking\":false}",
        "--system-prompt none vs \"Be brief.\"",
    ]
    assert protocol_differences(candidate, candidate, ["aime24"]) == []


CLAIMS = """
[source]
id = "paper"
title = "A paper"
same_questions = false

[[figures]]
model = "m"
benchmark = "aime24"
metric = "pass@1"
value = 50.0
where = "Table 1"
protocol = { temperature = 0.6, reasoning_effort = "high" }
"""


def test_compare_flags_controls_that_differ_from_the_sources_protocol(tmp_path: Path) -> None:
    path = tmp_path / "claims.toml"
    path.write_text(CLAIMS, encoding="utf-8")
    reported = load_reported([path])

    def notes(sampling: dict[str, object]) -> list[str]:
        score = TaskScore.model_validate({
            "pass@1": 0.5, "ci_low": 0.3, "ci_high": 0.7, "n_questions": 2,
            "samples_per_question": 1, "truncated_rate": 0.0, "n_errors": 0})
        task = TaskView(run="run", model="m", task="aime24", score=score,
                        outcomes={"a": [True], "b": [False]},
                        sampling=Sampling.model_validate(sampling), prompt="r1",
                        questions_in_task=2, from_file=False)
        [row] = compare_views([task], reported, {"aime24"}, 0.05, "m")
        return list(row.notes)

    same = notes({"temperature": 0.6, "reasoning_effort": "high"})
    assert not any("--reasoning-effort" in n or "--system-prompt" in n for n in same), same
    other = notes({"temperature": 0.6, "reasoning_effort": "low", "system_prompt": "Hi."})
    assert "--reasoning-effort \"low\" vs \"high\"" in other
    assert "--system-prompt \"Hi.\" vs none" in other
