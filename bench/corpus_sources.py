"""Build the corpus of real published responses that ``bench/grading_corpus.py`` grades.

Nothing here is data: the responses stay in the public repository that published them, and
this script only reads a local snapshot of it (no network). Rebuild the corpus with::

    # 1. a snapshot of the repository (any clone at the pinned commit works), e.g.
    git clone https://github.com/alexander-brady/guided-selfrevision /tmp/gsr
    # 2. convert its lm-evaluation-harness sample files into the corpus folder
    python bench/corpus_sources.py /tmp/gsr /tmp/corpus
    python bench/grading_corpus.py /tmp/corpus

The repository may be a normal clone or a bare one: files are read with ``git show
COMMIT:PATH``, so the pinned commit is what is read whatever is checked out.

Corpus line (one JSON object a line, ``<source>.jsonl`` in the folder)::

    {"source", "id", "problem", "gold", "response", "published_correct",
     "published_extracted", "finish_reason"}

``published_correct`` is the verdict the authors' harness wrote (``exact_match`` of their
lm-evaluation-harness fork, the s1 ``openai_math`` / ``aime24_nofigures`` tasks: the last
``\\boxed{}`` or "Answer:" line of the text after ``<|im_start|>answer``, then an exact string
comparison with the gold, or a GPT-4o-mini choice among candidate answers when their
``PROCESSOR`` was set). ``finish_reason`` is null: lm-eval does not record it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPOSITORY = "alexander-brady/guided-selfrevision"
COMMIT = "50e67fb629f3ebcfb79484d48993365514d150a8"
LICENCE = "none stated (no LICENSE file at the repository's root)"


@dataclass(frozen=True)
class Source:
    """One published sample file: who answered what, and where it lives."""

    name: str
    task: str  # r1eval's task whose grader applies
    model: str
    commit: str
    path: str
    settings: str


SOURCES = (
    Source(
        "s1.1-32B_math500", "math500", "simplescaling/s1.1-32B", COMMIT,
        "results/bradya/uncertainty_driven_reevaluation_4_35192477/simplescaling__s1.1-32B/"
        "samples_openai_math_2025-06-23T15-23-23.862503.jsonl",
        "greedy, max 32768 tokens, 4 extra 'Wait' re-evaluations",
    ),
    Source(
        "s1.1-1.5B_math500", "math500", "simplescaling/s1.1-1.5B", COMMIT,
        "results/bradya/default_0_35139109/simplescaling__s1.1-1.5B/"
        "samples_openai_math_2025-06-22T00-46-23.408945.jsonl",
        "greedy, max 32768 tokens, plain decoding",
    ),
    Source(
        "s1.1-1.5B_aime24_2k", "aime24", "simplescaling/s1.1-1.5B",
        "e3e859c2d5f80a213af9eaf27d9a0110fe89ce49",
        "eval/lm-evaluation-harness/results/simplescaling__s1.1-1.5B/"
        "samples_aime24_nofigures_2025-05-18T20-40-43.577960.jsonl",
        "greedy, max 2000 tokens (most responses cut off)",
    ),
)


def read_at(repo: Path, commit: str, path: str) -> str:
    """The text of ``path`` at ``commit`` in the git repository at ``repo``."""
    git_dir = repo / ".git" if (repo / ".git").exists() else repo
    done = subprocess.run(
        ["git", f"--git-dir={git_dir}", "show", f"{commit}:{path}"],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"corpus_sources: {repo} has no {path} at {commit[:12]} "
                         f"({done.stderr.strip()}); fetch {REPOSITORY} first")
    return done.stdout


def corpus_lines(source: Source, text: str) -> list[dict[str, Any]]:
    """The corpus lines of one lm-evaluation-harness ``--log_samples`` file."""
    lines = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        row = json.loads(raw)
        doc = row["doc"]
        extracted = row.get("extracted_answers") or [None]
        lines.append({
            "source": source.name,
            "task": source.task,
            "id": str(doc.get("unique_id") or row["doc_id"]),
            "problem": doc.get("problem") or doc.get("question"),
            "gold": str(row["target"]),
            "response": row["resps"][0][0],
            "published_correct": bool(row["exact_match"]),
            "published_extracted": extracted[0],
            "finish_reason": None,
        })
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path, help=f"a clone or snapshot of {REPOSITORY}")
    parser.add_argument("out", type=Path, help="the corpus folder to write")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for source in SOURCES:
        lines = corpus_lines(source, read_at(args.repo, source.commit, source.path))
        target = args.out / f"{source.name}.jsonl"
        target.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
        manifest.append({"source": source.name, "lines": len(lines), "model": source.model,
                         "repository": REPOSITORY, "commit": source.commit,
                         "path": source.path, "settings": source.settings,
                         "licence": LICENCE})
        print(f"{target}: {len(lines)} responses", file=sys.stderr)
    (args.out / "SOURCES.json").write_text(json.dumps(manifest, indent=2) + "\n",
                                           encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
