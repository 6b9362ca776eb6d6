"""The README's commands, run verbatim, so that the README cannot drift from the program.

Every command of every ```bash block is either run here, exactly as written, or named in
``NOT_RUNNABLE`` with the reason (a GPU, a paid API, the Hub, a package install) and where it
is exercised instead. The runs go to the tests' OpenAI-compatible server, listening on the
ports the README names (11434 for Ollama, 8000 for vLLM...); the Hub is replaced by the data
folder (``R1EVAL_DATA_DIR``) and every run is cut to two questions per task
(``R1EVAL_LIMIT=2``; a command's own ``--limit`` still wins). A new README command that fits
neither list fails ``test_every_readme_command_is_classified`` with what to do.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from r1eval.task.data import load_task
from r1eval.task.registry import resolve

from openai_server import OpenAIServer

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

#: README commands this test does not run: (pattern, why, and where they are exercised).
NOT_RUNNABLE: list[tuple[str, str]] = [
    (r"^python3 -m venv \.venv$|^(\.venv/bin/)?pip install ",
     "installs packages (from an index): .ci/run installs from scratch in a clean clone"),
    (r"^source \.venv/bin/activate$",
     "activates the environment: here the tests' own r1eval is first on PATH"),
    (r"^\.venv/bin/pip install -q tox$|^\.venv/bin/tox ",
     "the test suite itself: .ci/run runs this line verbatim (test_ci_runs_the_readme_tests)"),
    (r"^(vllm serve|ollama pull|python -m llama_cpp\.server) ",
     "starts a model server: a GPU or model weights"),
    (r"--model (hf|vllm):", "loads model weights in-process: a GPU (tests/test_backend_*.py)"),
    (r"https://api\.deepseek\.com", "the DeepSeek API: a paid key"),
    (r"^export [A-Z_]+=\.\.\.$", "a placeholder for a secret"),
    (r"r1eval data download ",
     "reads the Hugging Face Hub: tests/test_data_download.py runs it against a local hub"),
    (r"^r1eval export-lm-eval .*gpqa_diamond",
     "writes GPQA questions in plain text, which this test never does "
     "(tests/test_lm_eval_export.py)"),
    (r"^lm_eval ", "lm-evaluation-harness against a served model (tests/test_lm_eval_export.py)"),
    (r"^python bench/", "benchmarks of minutes each: tests/test_bench_smoke.py runs them small"),
]
RUNNABLE = re.compile(r"^(\.venv/bin/)?r1eval ")
#: Commands that make run folders: run before the commands that read results/.
PRODUCERS = re.compile(r"^(\.venv/bin/)?r1eval (run|grade) ")
LOCAL_ENDPOINT = re.compile(r"--base-url http://localhost:(\d+)/v1")


@dataclass(frozen=True)
class Command:
    """One command of a README bash block: continuation lines joined, one part of an ``&&``
    chain; ``line`` is where it starts in README.md."""

    text: str
    line: int

    @property
    def bare(self) -> str:
        """Without its trailing comment."""
        return re.sub(r"\s+#\s.*$", "", self.text).strip()


def readme_commands(text: str) -> list[Command]:
    commands: list[Command] = []
    in_bash, pending, start = False, "", 0
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip().startswith("```"):
            in_bash = line.strip() == "```bash"
            continue
        if not in_bash or (not pending and (not line.strip() or line.lstrip().startswith("#"))):
            continue
        start = start if pending else number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1].rstrip() + " "
            continue
        whole, pending = pending + line.strip(), ""
        commands += [Command(part.strip(), start) for part in whole.split(" && ")]
    return commands


def reason_not_run(command: Command) -> str | None:
    return next((why for pattern, why in NOT_RUNNABLE if re.search(pattern, command.bare)),
                None)


def runnable(commands: list[Command]) -> list[Command]:
    return [c for c in commands if reason_not_run(c) is None and RUNNABLE.match(c.bare)]


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))


def test_every_readme_command_is_classified() -> None:
    unclassified = [c for c in COMMANDS if reason_not_run(c) is None and not RUNNABLE.match(
        c.bare)]
    assert not unclassified, (
        "README commands neither run by tests/test_readme.py nor in its NOT_RUNNABLE list:\n"
        + "\n".join(f"  README.md:{c.line}: {c.text}" for c in unclassified)
        + "\nWrite them as `r1eval ...` commands this test can run against its local server, "
        "or add a pattern to NOT_RUNNABLE saying why not and where they are exercised.")
    unused = [p for p, _ in NOT_RUNNABLE if not any(re.search(p, c.bare) for c in COMMANDS)]
    assert not unused, f"NOT_RUNNABLE patterns that match no README command: {unused}"
    assert len(runnable(COMMANDS)) >= 20  # the parse found the README's commands


def test_ci_runs_the_readme_tests() -> None:
    """The README's test command is the one .ci/run runs, verbatim."""
    test_command = next(c for c in COMMANDS if c.bare.startswith(".venv/bin/tox "))
    whole = " && ".join(c.bare for c in COMMANDS if c.line == test_command.line)
    assert whole in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()


def test_readme_commands_are_split_as_a_shell_reads_them() -> None:
    text = ("```bash\nr1eval run --model m \\\n    --tasks a   # note\n# a comment\n\n"
            "python3 -m venv .venv && .venv/bin/r1eval tasks\n```\n```json\nr1eval no\n```\n")
    assert readme_commands(text) == [Command("r1eval run --model m --tasks a   # note", 2),
                                     Command("python3 -m venv .venv", 6),
                                     Command(".venv/bin/r1eval tasks", 6)]
    assert readme_commands(text)[0].bare == "r1eval run --model m --tasks a"


def _wrapper(path: Path) -> None:
    """An ``r1eval`` executable at ``path``: this Python's installed r1eval."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m r1eval.cli "$@"\n')
    path.chmod(0o755)


def _responses(path: Path, data_dir: Path) -> None:
    """The ``responses.jsonl`` the README's grade example assumes: AIME answers made
    elsewhere, 64 per question (--protocol r1), for the questions this test keeps."""
    import json

    samples = load_task(resolve(["aime24"])[0], data_dir, limit=2).samples
    lines = [{"id": s.id, "response": f"so the answer is \\boxed{{{s.target}}}."}
             for s in samples for _ in range(64)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


@pytest.fixture
def servers() -> Iterator[None]:
    """The tests' server on each port the runnable commands name, serving their models."""
    models: dict[int, set[str]] = {}
    for command in runnable(COMMANDS):
        name = re.search(r"--model (\S+)", command.bare)
        for port in LOCAL_ENDPOINT.findall(command.bare) if name else ():  # each replica
            models.setdefault(int(port), set()).add(name.group(1))
    with ExitStack() as stack:
        for port, names in models.items():
            try:
                stack.enter_context(OpenAIServer(port=port, listed=sorted(names)))
            except RuntimeError:
                pytest.fail(f"port {port}, which the README names, is in use on 127.0.0.1")
        yield


@pytest.mark.data
@pytest.mark.slow
def test_readme_commands_run_verbatim(tmp_path: Path, data_dir: Path, servers: None) -> None:
    clone = tmp_path / "clone"  # the working directory of a user's clone
    clone.mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(data_dir)  # --data-dir ../shared/data
    (clone / "data").symlink_to(data_dir)  # what `r1eval data download --to data` makes
    _responses(clone / "responses.jsonl", data_dir)
    _wrapper(tmp_path / "bin" / "r1eval")
    _wrapper(clone / ".venv" / "bin" / "r1eval")
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "R1EVAL_DATA_DIR": str(data_dir), "R1EVAL_LIMIT": "2",
           "R1EVAL_GRADER_WORKERS": "0", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    commands = runnable(COMMANDS)
    ordered = [c for c in commands if PRODUCERS.match(c.bare)] + [
        c for c in commands if not PRODUCERS.match(c.bare)]
    for command in ordered:
        done = subprocess.run(["bash", "-c", command.text], cwd=clone, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (
            f"README.md:{command.line}: `{command.text}` exited {done.returncode}:\n"
            + "\n".join(done.stderr.splitlines()[-5:]))
