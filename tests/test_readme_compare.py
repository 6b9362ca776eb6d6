"""The README's worked example of ``r1eval compare``: its runs are built here as the README's
commands would make them (same model name, endpoint, protocol, hence the same default folders),
answered by a simulated model of about the distilled 7B's strength; then the README's compare
command runs verbatim and every row of the README's table must be in its output."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from r1eval.cli import main
from r1eval.run.plan import WorkItem
from r1eval.types import Completion

from conftest import REPO
from runs_for_tests import answer, build_run

pytestmark = [pytest.mark.data, pytest.mark.slow]

MARKER = "<!-- compare example: checked by tests/test_readme_compare.py -->"
OLLAMA = "http://localhost:11434/v1"
# Per task, question i's true rate is u_i ** GAMMA (u_i uniform from a hash of its id):
# mean 1 / (1 + GAMMA), about 0.55 on AIME, 0.92 on MATH-500 and 0.48 on GPQA Diamond.
GAMMA = {"aime24": 0.82, "math500": 0.087, "gpqa_diamond": 1.1}


def unit(*parts: object) -> float:
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def simulated_model(item: WorkItem) -> Completion:
    rate = unit("q", item.task, item.sample.id) ** GAMMA[item.task]
    right = unit("s", item.task, item.sample.id, item.repeat) < rate
    gold = item.prompt.gold
    if item.task == "gpqa_diamond":
        wrong = [letter for letter in "ABCD" if letter != gold]
        pick = gold if right else wrong[int(unit("w", item.sample.id, item.repeat) * 3)]
        return answer(f"</think>Answer: {pick}")
    # wrong answers: one of three per question, so that majority votes can go either way
    wrong_answer = 90000 + int(unit("w", item.sample.id) * 3 + unit("x", item.repeat))
    return answer(f"</think>\\boxed{{{gold if right else wrong_answer}}}")


def unhashed(run: str) -> str:
    """A default run folder's name without its hash of the settings (which moves whenever a
    task's prompt or version does): the rows are matched by model, tasks and the rest."""
    name, sep, digest = run.rpartition("-")
    assert sep and re.fullmatch(r"[0-9a-f]{8}", digest), run
    return name


def readme_rows() -> list[list[str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    table = text.split(MARKER, 1)[1].strip().split("\n\n", 1)[0]
    lines = [line for line in table.splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]


def test_the_readme_worked_example(tmp_path: Path, data_dir: Path,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    # r1eval run --model deepseek-r1:7b --base-url http://localhost:11434/v1 \
    #     --tasks aime24,math500,gpqa_diamond --protocol r1
    build_run(None, data_dir, "aime24,math500,gpqa_diamond", simulated_model,
              model="deepseek-r1:7b", samples=None, protocol="r1", base_url=OLLAMA)
    # r1eval run --model deepseek-r1:7b --base-url http://localhost:11434/v1 \
    #     --tasks aime24 --protocol r1 --samples 4
    build_run(None, data_dir, "aime24", simulated_model, model="deepseek-r1:7b", samples=4,
              protocol="r1", base_url=OLLAMA)
    capsys.readouterr()
    assert main(["compare", "results/", "--figure", "compare.png"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "compare.png").stat().st_size > 0
    measured = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("|").split(" | ")] if line.startswith("|") else []
        if len(cells) == 12 and cells[0] != "run" and not cells[0].startswith("-"):
            measured[(unhashed(cells[0]), cells[2], cells[3], cells[5])] = cells
    rows = readme_rows()
    assert len(rows) >= 8
    for row in rows:
        run, benchmark, metric, reported, source, *values, notes = row
        got = measured.get((unhashed(run), benchmark, metric, source))
        assert got is not None, (row, sorted(measured))
        assert [got[4], *got[6:11]] == [reported, *values], (row, got)
        for note in filter(None, re.split(r"; ?", notes.replace("…", "").strip("-"))):
            assert note.strip() in got[11], (note, got[11])
