"""The default run folder is named by what defines the run, so the same command resumes; the
progress display says what was resumed and covers every graded sample."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from r1eval.cli import main
from r1eval.run.evaluate import DEFAULT_RESULTS
from r1eval.run.progress import Progress, TaskCounts, clock
from r1eval.types import Grade

from openai_server import OpenAIServer


def command(server: OpenAIServer, data_dir: Path, *extra: str) -> list[str]:
    return ["run", "--model", server.model, "--base-url", server.base_url, "--tasks", "aime24",
            "--limit", "6", "--data-dir", str(data_dir), "--concurrency", "2",
            "--grader-workers", "0", *extra]


@pytest.mark.data
def test_the_same_command_resumes_and_a_changed_setting_gets_a_new_folder(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The issue's case: without --run-dir the folder carried a timestamp, so the README's
    command run twice sent every request twice."""
    monkeypatch.chdir(tmp_path)
    with OpenAIServer() as server:
        assert main(command(server, data_dir)) == 0
        first = capsys.readouterr().err
        assert "resuming" not in first
        sent = len(server.requests)
        assert sent == 6
        assert main(command(server, data_dir)) == 0
        again = capsys.readouterr().err
        assert len(server.requests) == sent  # nothing re-sent
        assert "resuming: 6 of 6 samples done" in again
        folders = sorted(p.name for p in (tmp_path / DEFAULT_RESULTS).iterdir())
        assert len(folders) == 1 and folders[0].startswith(f"{server.model}-aime24-")
        # another limit, another folder (and no error)
        assert main(command(server, data_dir, "--limit", "4")) == 0
        assert len(list((tmp_path / DEFAULT_RESULTS).iterdir())) == 2


def grade(correct: bool) -> Grade:
    return Grade(correct=correct, extracted="1", canonical="1", method="boxed", failure=None)


def test_progress_covers_every_graded_sample_and_shows_time() -> None:
    """On a resumed run the accuracy was that of the new samples only."""
    out = io.StringIO()
    progress = Progress(stream=out, every_s=0.0)
    progress.start({"aime24": TaskCounts(total=10, done=4, resumed=4, graded=4, correct=4),
                    "math500": TaskCounts(total=5)})
    progress.graded(grade(False), "aime24")
    progress.failed("math500")
    lines = progress.lines()
    text = out.getvalue()
    assert text.startswith("resuming: 4 of 15 samples done\n")
    assert lines[0].startswith("aime24 ") and "5/10 (4 resumed) acc 0.800 errors 0" in lines[0]
    assert lines[1].startswith("math500") and "1/5 acc - errors 1" in lines[1]
    assert lines[2].startswith("elapsed ") and " eta " in lines[2]


def test_clock() -> None:
    assert clock(62) == "1:02" and clock(3723) == "1:02:03" and clock(0) == "0:00"
