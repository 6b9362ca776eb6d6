"""The command line: one clear line and exit 2 on bad input, with nothing written."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from r1eval.cli import main

from conftest import OUTSIDE_REPO, r1eval_process_args
from openai_server import OpenAIServer


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        r1eval_process_args(*args), cwd=OUTSIDE_REPO,
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )


def base_args(tmp_path: Path, data_dir: Path | str = "", *extra: str) -> list[str]:
    args = ["run", "--model", "m", "--base-url", "http://127.0.0.1:9/v1",
            "--run-dir", str(tmp_path / "run"), *extra]
    if data_dir:
        args += ["--data-dir", str(data_dir)]
    return args


def assert_one_line_error(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("r1eval: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], err


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--tasks", "aime26"], ["unknown task 'aime26'", "aime24", "aime25"]),
        (["--tasks", "aime24", "--limit", "0"], ["error: --limit must be at least 1"]),
        (["--tasks", "aime24", "--samples", "-3"], ["error: --samples must be at least 1"]),
        (["--tasks", "aime24", "--temperature", "7"], ["error: --temperature must be at most 2"]),
        (["--tasks", "aime24", "--concurrency", "0"], ["error: --concurrency must be at least 1"]),
        (["--tasks", ""], ["error: --tasks must not be empty"]),
        (["--tasks", "aime24", "--limit", "ten"], ["--limit", "invalid int value"]),
        (["--tasks", "aime24", "--api-key-env", "R1EVAL_TEST_NO_SUCH_VARIABLE"],
         ["R1EVAL_TEST_NO_SUCH_VARIABLE", "not set"]),
        (["--tasks", "aime24", "--config", "/nonexistent/r1eval.toml"], ["config file"]),
        (["--tasks", "aime24", "--limit", "-5"], ["error: --limit must be at least 1"]),
        (["--tasks", "aime24", "--samples", "100000"], ["error: --samples must be at most 1024"]),
        (["--tasks", "aime24", "--concurrency", "1000000"], ["--concurrency must be at most"]),
        (["--tasks", "aime24", "--max-tokens", "0"], ["error: --max-tokens must be at least 1"]),
        (["--tasks", "aime24", "--top-p", "0"], ["error: --top-p must be more than 0"]),
        (["--tasks", "aime24", "--timeout", "-1"], ["error: --timeout must be more than 0"]),
        (["--tasks", "aime24", "--timeout", "nan"], ["--timeout must be a finite number"]),
        (["--tasks", "aime24", "--timeout", "inf"], ["--timeout must be a finite number"]),
        (["--tasks", "aime24", "--max-attempts", "0"], ["error: --max-attempts must be at least"]),
        (["--tasks", "aime24", "--grader-workers", "-1"], ["--grader-workers must be at least 0"]),
        (["--tasks", "aime24", "--grade-timeout", "0"], ["--grade-timeout must be more than 0"]),
        (["--tasks", "aime24", "--no-such-flag"], ["unrecognized arguments: --no-such-flag"]),
        (["--tasks", "aime24", "--reasoning-delimiters", "nosuch"],
         ["error: --reasoning-delimiters: unknown reasoning delimiters 'nosuch'"]),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], fragments: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:  # argparse type errors exit from the parser
        raise SystemExit(main(base_args(tmp_path, tmp_path, *extra)))
    assert exited.value.code == 2
    assert_one_line_error(capsys.readouterr().err, *fragments)
    assert not (tmp_path / "run").exists()


def test_missing_model_and_unknown_config_keys_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "r1eval.toml"
    config.write_text('tasks = ["aime24"]\ntemperatur = 0.6\n')
    code = main(["run", "--base-url", "http://127.0.0.1:9/v1", "--config", str(config)])
    assert code == 2
    assert_one_line_error(
        capsys.readouterr().err,
        "error: --model is required (the model's name as the endpoint knows it)",
        f"temperatur in {config} is not a setting r1eval knows")


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (b'tasks = ["aime24"\n', ["r1eval.toml is not valid TOML"]),
        (b'tasks = ["aime24"]\nlimit = "ten"\n',
         ["error: limit in ", "r1eval.toml must be a whole number, not 'ten'"]),
        (b'tasks = "aime24"\n[sampling]\ntemperature = 0.6\n',
         ["error: sampling in ", "r1eval.toml is not a setting r1eval knows"]),
        (b'tasks = ["aime24"]\nmodel = "caf\xe9"\n', ["r1eval.toml is not UTF-8 text"]),
        (None, ["r1eval.toml cannot be read (Is a directory)"]),
    ],
    ids=["syntax", "type", "unknown-table", "not-utf8", "a-directory"],
)
def test_a_malformed_config_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: bytes | None, fragments: list[str]
) -> None:
    config = tmp_path / "r1eval.toml"
    if text is None:
        config.mkdir()
    else:
        config.write_bytes(text)
    assert main(base_args(tmp_path, tmp_path, "--config", str(config))) == 2
    assert_one_line_error(capsys.readouterr().err, *fragments)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("task", "path", "content", "fragments"),
    [
        ("aime24", "aime24/test.jsonl", b'{"id": 1, "problem": "p"}\n', ["record 1", "answer"]),
        ("aime24", "aime24/test.jsonl", b'{"id": 1, "problem"\n', ["test.jsonl:1", "not valid"]),
        ("aime24", "aime24/test.jsonl", b'{"problem": "caf\xe9"}\n', ["not UTF-8"]),
        ("aime24", "aime24/test.jsonl", None, ["cannot read", "Is a directory"]),
        ("mmlu", "mmlu/test/anatomy_test.csv", b'"q","a","b","c"\n', ["row 1 has 4 fields"]),
        ("mmlu", "mmlu/test/anatomy_test.csv", b'q,a,b,c,d,E\n', ["answer 'E' is not A-D"]),
        ("gpqa_diamond", "gpqa/dataset.zip", b"PK\x03\x04 torn", ["unreadable zip"]),
    ],
    ids=["missing-field", "bad-json", "not-utf8", "a-directory", "csv-fields", "csv-answer",
         "bad-zip"],
)
def test_malformed_local_data_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], task: str, path: str,
    content: bytes | None, fragments: list[str],
) -> None:
    target = tmp_path / "data" / path
    target.parent.mkdir(parents=True)
    if content is None:
        target.mkdir()
    else:
        target.write_bytes(content)
    assert main(base_args(tmp_path, tmp_path / "data", "--tasks", task)) == 2
    assert_one_line_error(capsys.readouterr().err, *fragments)
    assert not (tmp_path / "run").exists()


@pytest.mark.data
def test_a_wrong_zip_password_is_named(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from r1eval.tasks import gpqa_diamond

    monkeypatch.setattr(gpqa_diamond, "ZIP_PASSWORD", b"not-the-password")
    assert main(base_args(tmp_path, data_dir, "--tasks", "gpqa_diamond")) == 2
    assert_one_line_error(capsys.readouterr().err, "dataset.zip", "Bad password")
    assert not (tmp_path / "run").exists()


@pytest.mark.data
def test_a_run_dir_that_is_a_file_is_refused(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "run").write_text("notes")
    with OpenAIServer() as server:
        args = ["run", "--model", server.model, "--base-url", server.base_url, "--tasks",
                "aime24", "--limit", "2", "--data-dir", str(data_dir), "--run-dir",
                str(tmp_path / "run")]
        assert main(args) == 2
        assert server.requests == []
    assert_one_line_error(capsys.readouterr().err, "is a file, not a run folder")
    assert (tmp_path / "run").read_text() == "notes"


def test_malformed_local_data_is_a_data_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "data" / "aime24").mkdir(parents=True)
    (tmp_path / "data" / "aime24" / "test.jsonl").write_text('{"id": 1, "problem": "p"}\n')
    assert main(base_args(tmp_path, tmp_path / "data", "--tasks", "aime24")) == 2
    assert_one_line_error(capsys.readouterr().err, "malformed record 1", "answer")
    assert not (tmp_path / "run").exists()


def test_missing_local_data_names_the_expected_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(base_args(tmp_path, tmp_path, "--tasks", "math500")) == 2
    assert_one_line_error(capsys.readouterr().err, "math500/test.jsonl")


def test_offline_without_local_data_says_which_option_to_use(tmp_path: Path) -> None:
    result = run_cli(
        *base_args(tmp_path, "", "--tasks", "math500"),
        env={"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "R1EVAL_DATA_DIR": "",
             "HF_HOME": str(tmp_path / "hf")},
    )
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "Hugging Face Hub", "--data-dir", "R1EVAL_DATA_DIR")
    assert not (tmp_path / "run").exists()


@pytest.mark.data
def test_data_dir_from_the_environment(tmp_path: Path, data_dir: Path) -> None:
    with OpenAIServer() as server:
        args = ["run", "--model", server.model, "--base-url", server.base_url, "--tasks",
                "aime24", "--limit", "2", "--run-dir", str(tmp_path / "run"),
                "--grader-workers", "0"]
        result = run_cli(*args, env={"R1EVAL_DATA_DIR": str(data_dir)})
    assert result.returncode == 0, result.stderr
    assert "| aime24" in result.stdout


@pytest.mark.data
def test_endpoint_errors_stop_the_run_with_one_line(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with OpenAIServer(strict_model=True) as server:
        args = ["run", "--model", "no-such-model", "--base-url", server.base_url, "--tasks",
                "aime24", "--limit", "3", "--data-dir", str(data_dir), "--run-dir",
                str(tmp_path / "run"), "--grader-workers", "0"]
        assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("r1eval: error: model 'no-such-model' not found")


@pytest.mark.data
def test_a_run_folder_of_another_setup_is_refused(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with OpenAIServer() as server:
        args = ["run", "--model", server.model, "--base-url", server.base_url, "--tasks",
                "aime24", "--limit", "2", "--data-dir", str(data_dir), "--run-dir",
                str(tmp_path / "run"), "--grader-workers", "0"]
        assert main(args) == 0
        log = (tmp_path / "run" / "samples.jsonl").read_bytes()
        capsys.readouterr()
        assert main([*args, "--temperature", "0.3"]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err, "sampling.temperature: None in the folder, 0.3 now")
    assert (tmp_path / "run" / "samples.jsonl").read_bytes() == log  # nothing touched


def test_tasks_lists_versions_counts_and_sources() -> None:
    result = run_cli("tasks")
    assert result.returncode == 0
    rows = {line.split("|")[1].strip(): line for line in result.stdout.splitlines()[2:]}
    assert set(rows) == {"aime24", "math500", "gpqa_diamond", "mmlu", "aime25", "hmmt_feb25",
                         "amc23", "mmlu_pro"}
    assert "14042" in rows["mmlu"] and "cais/mmlu" in rows["mmlu"]
    assert "12032" in rows["mmlu_pro"] and "TIGER-Lab/MMLU-Pro@b189ec765aa7" in rows["mmlu_pro"]
    assert "| 16 " in rows["amc23"] and "AI-MO/aimo-validation-amc" in rows["amc23"]
    assert "198" in rows["gpqa_diamond"] and "gpqa/dataset.zip" in rows["gpqa_diamond"]


def test_every_command_is_listed_and_loads_its_own_flags(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Commands are imported only when chosen: each name must lead to a module whose flags
    parse (``--help`` exits 0 after printing them), and the top level lists them all."""
    from r1eval.commands import COMMANDS

    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    listing = capsys.readouterr().out
    for name, summary in COMMANDS.items():
        assert name in listing and summary.split()[0] in listing
        with pytest.raises(SystemExit) as done:
            main([name, "--help"])
        assert done.value.code == 0
        assert f"usage: r1eval {name}" in capsys.readouterr().out


def test_run_does_not_import_pandas() -> None:
    """``r1eval run`` starts without what only other commands need (half a second)."""
    code = ("import sys; from r1eval.cli import build_parser; build_parser('run'); "
            "print('pandas' in sys.modules, 'matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=OUTSIDE_REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "False"], done.stderr


TESTS = Path(__file__).resolve().parent
TINY = ["--tasks", "tiny_math", "--task-dir", str(TESTS / "task_files"), "--data-dir",
        str(TESTS / "task_data"), "--grader-workers", "0"]


def tiny_args(server: OpenAIServer, run_dir: Path, *extra: str) -> list[str]:
    return ["run", "--model", server.model, "--base-url", server.base_url, "--run-dir",
            str(run_dir), *TINY, *extra]


@pytest.mark.parametrize(
    ("source", "fragment"),
    [("TASK = (\n", "syntax error on line 1"),
     ("import no_such_module_for_r1eval\n", "ModuleNotFoundError: No module named"),
     ("raise RuntimeError('half-written')\n", "RuntimeError: half-written")],
    ids=["syntax-error", "import-error", "raises"],
)
def test_a_task_file_that_fails_to_load_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, fragment: str
) -> None:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "broken.py").write_text(source)
    args = base_args(tmp_path, tmp_path, "--tasks", "aime24", "--task-dir", str(tmp_path / "tasks"))
    assert main(args) == 2
    assert_one_line_error(capsys.readouterr().err, "broken.py (--task-dir) fails to load",
                          fragment)


@pytest.mark.parametrize(
    "manifest",
    ['{"identity": {}, "tasks": {}}'.encode("utf-16"), b'{"identity": "x", "tasks": {}}',
     b'{"identity": {"endpoint": {}}, "tasks": []}'],
    ids=["utf-16-bom", "identity-string", "tasks-list"],
)
def test_a_run_json_of_the_wrong_encoding_or_shape_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], manifest: bytes
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_bytes(manifest)
    with OpenAIServer() as server:
        assert main(tiny_args(server, run_dir)) == 2
        assert server.requests == []
    assert_one_line_error(capsys.readouterr().err, f"{run_dir}/run.json is not")
    assert (run_dir / "run.json").read_bytes() == manifest


def test_a_key_read_with_its_line_end_works_and_a_key_with_a_break_inside_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-crlf-0123456789"
    env = "R1EVAL_TEST_CRLF_KEY"
    with OpenAIServer(api_key=key) as server:
        monkeypatch.setenv(env, f"{key}\r\n")  # as read from a file saved on Windows
        assert main(tiny_args(server, tmp_path / "run", "--api-key-env", env)) == 0
        monkeypatch.setenv(env, f"{key}\r\nsecond-line")
        assert main(tiny_args(server, tmp_path / "other", "--api-key-env", env)) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err.splitlines()[-1], env, "line break")
    assert key not in err and not (tmp_path / "other").exists()


@pytest.mark.data
def test_more_responses_than_one_run_holds_is_one_line_naming_the_flag(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """MMLU x 1024 is 14.4 M responses: refused before any of them is planned."""
    assert main(base_args(tmp_path, data_dir, "--tasks", "mmlu", "--samples", "1024")) == 2
    assert_one_line_error(capsys.readouterr().err, "14,379,008 responses", "1,000,000",
                          "--samples 71")
    assert not (tmp_path / "run").exists()


def test_lone_surrogates_in_responses_are_stored_reported_and_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``run`` keeps a model's broken UTF-16 as it came; ``report`` and the tables show it."""
    def broken(body: dict[str, object], index: int) -> dict[str, str]:
        return {"reasoning_content": "caf\udce9 \ud800", "content": "\udc80 \\boxed{\ud83d}"}

    run_dir = tmp_path / "run"
    with OpenAIServer(responder=broken) as server:
        assert main(tiny_args(server, run_dir)) == 0
    assert main(["report", str(run_dir), "-o", str(tmp_path / "report.html")]) == 0
    assert "\\udc80" in (tmp_path / "report.html").read_text(encoding="utf-8")
    completed = run_cli("regrade", str(run_dir), "--task-dir", str(TESTS / "task_files"),
                        "--grader-workers", "0", "--audit")  # stdout: a pipe, strict UTF-8
    assert completed.returncode == 0 and "Traceback" not in completed.stderr, completed.stderr


def test_a_bad_value_names_the_environment_variable_it_came_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("R1EVAL_LIMIT", "0")
    monkeypatch.setenv("R1EVAL_PROTOCOL", "r2")
    assert main(base_args(tmp_path, tmp_path, "--tasks", "aime24")) == 2
    assert_one_line_error(capsys.readouterr().err, "error: R1EVAL_LIMIT must be at least 1; "
                          "R1EVAL_PROTOCOL must be one of 'r1' or 'none', not 'r2'")


@pytest.mark.parametrize("field", ["limit", "samples", "temperature", "top_p", "max_tokens",
                                   "concurrency", "timeout", "max_attempts", "grade_timeout",
                                   "price_in", "max_cost", "batch_size", "gpu_memory_utilization"])
def test_every_bound_is_said_in_our_words(field: str) -> None:
    """A value beyond each bound of each setting: the flag, then what it must be."""
    from r1eval.errors import UsageError
    from r1eval.run.config import RunConfig, build_config

    for bound in RunConfig.model_fields[field].metadata:
        for name in ("ge", "gt", "le", "lt"):
            limit = getattr(bound, name, None)
            if limit is None:
                continue
            bad = limit - 1 if name in ("ge", "gt") else limit + 1
            with pytest.raises(UsageError) as raised:
                build_config({"model": "m", "tasks": "aime24", field: bad}, None, {})
            message = str(raised.value)
            assert message.startswith(f"--{field.replace('_', '-')} must be "), message
            assert "Input should" not in message and "Field required" not in message


def subparser(name: str) -> argparse.ArgumentParser:
    """The parser of command ``name``, its flags loaded."""
    from r1eval.cli import build_parser

    commands = next(a for a in build_parser(name)._actions if a.dest == "command")
    return cast(argparse.ArgumentParser, cast(Any, commands).choices[name])


def help_text(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def with_nested(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and the parsers of its own subcommands (``data download``)."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for nested in action.choices.values():
                yield from with_nested(nested)


def test_every_flag_of_every_command_has_help_and_every_command_an_example() -> None:
    """Properties, not a list: a flag added later without help fails here."""
    from r1eval.commands import COMMANDS

    for name in COMMANDS:
        for sub in with_nested(subparser(name)):
            for action in sub._actions:
                if action.dest == "help":
                    continue
                flag = f"{sub.prog} {'/'.join(action.option_strings) or action.dest}"
                assert action.help and len(action.help) > 10, f"{flag} has no help"
                if action.choices is not None and len(action.choices) > 1:
                    for choice in action.choices:  # every choice is explained
                        assert str(choice) in action.help, f"{flag}: what is {choice}?"
            epilog = sub.epilog or ""
            assert epilog.startswith(f"example:\n  r1eval {name} "), f"{sub.prog}: no example"
            assert "\nexit codes:\n  0 " in epilog and "\n  2 bad input" in epilog, sub.prog


def test_help_says_what_was_missing(capsys: pytest.CaptureFixture[str]) -> None:
    run = " ".join(help_text("run", capsys).split())
    assert "none (the default): only what you set is sent" in run
    assert "responses per question (default 1; with --protocol r1" in run
    assert "--temperature TEMPERATURE sampling temperature" in run
    assert "exit codes: 0 every sample done 1 the run finished but some requests failed" in run
    compare = " ".join(help_text("compare", capsys).split())
    assert "--format {markdown,csv,json} markdown (the default)" in compare
    assert "--task-dir DIR also list the task files" in " ".join(
        help_text("tasks", capsys).split())


def command_flags(name: str) -> set[str]:
    return {flag for action in subparser(name)._actions for flag in action.option_strings}


def test_estimate_takes_only_what_changes_an_estimate(capsys: pytest.CaptureFixture[str]) -> None:
    flags = command_flags("estimate")
    assert flags >= {"--model", "--tasks", "--limit", "--samples", "--protocol", "--max-tokens",
                     "--data-dir", "--task-dir", "--price-in", "--price-out", "--prices",
                     "--history", "--config"}
    assert not flags & {"--base-url", "--concurrency", "--timeout", "--run-dir", "--dry-run",
                        "--api-key-env", "--temperature", "--top-p", "--max-attempts",
                        "--grader-workers", "--max-cost"}
    with pytest.raises(SystemExit) as refused:
        main(["estimate", "--model", "m", "--tasks", "aime24", "--base-url", "http://x/v1"])
    assert refused.value.code == 2
    assert_one_line_error(capsys.readouterr().err, "unrecognized arguments: --base-url")


@pytest.mark.data
def test_estimate_needs_no_endpoint(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["estimate", "--model", "deepseek-reasoner", "--tasks", "aime24", "--protocol",
                 "r1", "--data-dir", str(data_dir), "--history", str(tmp_path)])
    assert code == 0
    assert "at most 62,914,560" in capsys.readouterr().out  # 30 x 64 x 32,768 tokens
    assert list(tmp_path.iterdir()) == []
