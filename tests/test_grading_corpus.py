"""``bench/grading_corpus.py``: r1eval's grades beside published labels of real responses.

The converter and the grading script run on a tiny hand-written corpus every time (our own
words, built like a converted lm-evaluation-harness file). The real corpus (1,030 published
s1.1 responses, see ``tests/task_data/README.md``, "Real responses") is not in the repository:
``test_the_real_corpus_disagrees_exactly_where_documented`` runs only when ``R1EVAL_CORPUS_DIR``
points at a folder built by ``bench/corpus_sources.py``, and is skipped otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

SCRIPT = REPO / "bench" / "grading_corpus.py"
S1_DELIMITERS = "think,thought,s1"

# The disagreements of the real corpus with the s1 delimiters (README of tests/task_data).
DOCUMENTED = {
    ("s1.1-1.5B_aime24_2k", "14"),
    *(("s1.1-1.5B_math500", f"test/{name}.json") for name in (
        "algebra/1349", "number_theory/1032", "counting_and_probability/134",
        "precalculus/285", "prealgebra/951", "counting_and_probability/1114",
        "intermediate_algebra/47", "prealgebra/1733", "algebra/246",
        "intermediate_algebra/2022", "intermediate_algebra/1151", "precalculus/477",
        "counting_and_probability/803", "algebra/686", "geometry/221", "number_theory/149",
        "algebra/291", "intermediate_algebra/1555", "prealgebra/1995", "geometry/347",
        "number_theory/483", "prealgebra/1730", "precalculus/1281", "geometry/538",
        "intermediate_algebra/1014", "prealgebra/805", "intermediate_algebra/1279",
        "intermediate_algebra/1365")),
    *(("s1.1-32B_math500", f"test/{name}.json") for name in (
        "intermediate_algebra/428", "intermediate_algebra/662", "geometry/686")),
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=900, check=False)


def line(source: str, ident: str, gold: str, response: str, published: bool) -> str:
    return json.dumps({"source": source, "task": "math500", "id": ident, "problem": "p",
                       "gold": gold, "response": response, "published_correct": published,
                       "published_extracted": None, "finish_reason": None}) + "\n"


def test_agreement_table_and_every_disagreement(tmp_path: Path) -> None:
    (tmp_path / "toy.jsonl").write_text(
        line("toy", "a", "7", "So the total is \\boxed{7}.", True)
        + line("toy", "b", "7", "We try 3 + 4 and get \\boxed{7}.", False)
        + line("toy", "c", "\\frac{2}{5}", "Collecting terms, q = \\frac{2}{5} - \\frac", True)
        + line("toy", "d", "5", "a draft \\boxed{5}\n<|im_start|>answer\nAnswer: so we", False),
        encoding="utf-8")
    done = run(str(tmp_path), "--json", str(tmp_path / "out.json"))
    assert done.returncode == 0, done.stderr
    assert "| toy " in done.stdout and "| 4 " in done.stdout
    assert "1/4 (25.0%)" in done.stdout  # only a agrees; d: the thinking draft is graded
    assert "toy b: gold '7'; published wrong" in done.stdout
    assert "toy c: gold '\\\\frac{2}{5}'; published correct" in done.stdout
    graded = {item["id"]: item for item in json.loads((tmp_path / "out.json").read_text())}
    assert graded["c"]["failure"] == "no_answer"
    assert graded["d"]["r1eval_correct"] is True
    with_s1 = run(str(tmp_path), "--json", str(tmp_path / "s1.json"),
                  "--reasoning-delimiters", S1_DELIMITERS)
    assert with_s1.returncode == 0, with_s1.stderr
    graded = {item["id"]: item for item in json.loads((tmp_path / "s1.json").read_text())}
    assert graded["d"]["failure"] == "no_answer"  # only the answer section is graded


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = run(str(tmp_path / "missing"))
    assert done.returncode == 2 and "is not a folder" in done.stderr
    done = run(str(tmp_path), "--reasoning-delimiters", "nope")
    assert done.returncode == 2 and "--reasoning-delimiters" in done.stderr


def test_the_converter_reads_a_pinned_commit_of_a_git_repository(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import corpus_sources
    finally:
        sys.path.remove(str(REPO / "bench"))
    repo = tmp_path / "repo"
    sample = {"doc_id": 0, "doc": {"problem": "p", "unique_id": "test/x/1.json"},
              "target": "7", "resps": [["\\boxed{7}"]], "exact_match": 1,
              "extracted_answers": ["7"]}
    (repo / "out").mkdir(parents=True)
    (repo / "out" / "samples.jsonl").write_text(json.dumps(sample) + "\n", encoding="utf-8")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    source = corpus_sources.Source("toy", "math500", "m", commit, "out/samples.jsonl", "")
    lines = corpus_sources.corpus_lines(
        source, corpus_sources.read_at(repo, commit, "out/samples.jsonl"))
    assert lines == [{"source": "toy", "task": "math500", "id": "test/x/1.json", "problem": "p",
                      "gold": "7", "response": "\\boxed{7}", "published_correct": True,
                      "published_extracted": "7", "finish_reason": None}]
    with pytest.raises(SystemExit, match=r"has no out/other\.jsonl"):
        corpus_sources.read_at(repo, commit, "out/other.jsonl")


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("R1EVAL_CORPUS_DIR"),
                    reason="R1EVAL_CORPUS_DIR is not set (build it: bench/corpus_sources.py)")
def test_the_real_corpus_disagrees_exactly_where_documented(tmp_path: Path) -> None:
    out = tmp_path / "compared.json"
    done = run(os.environ["R1EVAL_CORPUS_DIR"], "--json", str(out),
               "--reasoning-delimiters", S1_DELIMITERS)
    assert done.returncode == 0, done.stderr
    compared = json.loads(out.read_text(encoding="utf-8"))
    assert len(compared) == 1030
    disagreements = {(item["source"], item["id"]) for item in compared
                     if item["published_correct"] != item["r1eval_correct"]}
    assert disagreements == DOCUMENTED
