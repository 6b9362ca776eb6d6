"""The analysis notebook runs top to bottom on runs built in the test, and draws its figures."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from r1eval.run.plan import WorkItem
from r1eval.types import Completion

from runs_for_tests import answer, build_run

pytestmark = [pytest.mark.data, pytest.mark.slow]

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "analysis.ipynb"


def varied(item: WorkItem) -> Completion:
    """Right, wrong or truncated by a hash of the question; longer responses for wrong ones."""
    n = hashlib.sha256(f"{item.sample.id}{item.repeat}".encode()).digest()[0] % 3
    if n == 2:
        return answer("<think>going on and on", finish_reason="length", tokens=4000)
    multiple_choice = item.task == "mmlu"
    gold = item.prompt.gold if n == 0 else ("A" if item.prompt.gold != "A" else "B")
    if not multiple_choice and n == 1:
        gold = "98765"
    text = f"</think>Answer: {gold}" if multiple_choice else f"</think>\\boxed{{{gold}}}"
    return answer(text, tokens=800 if n == 0 else 2500)


def test_notebook_executes_and_draws_its_figures(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    results = tmp_path / "results"
    build_run(results / "r7b", data_dir, "aime24,math500", varied, model="deepseek-r1:7b",
              limit=40, samples=2)
    build_run(results / "r7b-mmlu", data_dir, "mmlu", varied, model="deepseek-r1:7b",
              limit=400)
    monkeypatch.setenv("R1EVAL_RESULTS", str(results))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) == 4  # reported vs measured, MMLU categories, length, truncation
    text = "".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "STEM" in text and "other" in text  # the first 400 MMLU questions span both
    assert "AIME 2024" in text  # the registry's figures for the model were found by its alias
