"""``r1eval data download``: Hub datasets -> the local layout, read back, with checksums.

No Hub here: each test builds a small local "hub" with ``datasets``' own writer (a dataset
folder per Hub repository, its configs declared in README.md as on the Hub) and points the
tasks at it through task files in a ``--task-dir`` that override the built-in tasks' Hub path
only. Everything else is the real path: ``datasets.load_dataset``, the tasks' writers and
readers, the command line. The GPQA rows are made up: real GPQA text is never written.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from r1eval.cli import main
from r1eval.task.data import load_task
from r1eval.task.registry import resolve

from conftest import OUTSIDE_REPO, r1eval_process_args

SECRET = "synthetic GPQA question about enzyme kinetics"

ROWS: dict[str, list[dict[str, Any]]] = {
    "aime24": [{"id": 60 + i, "problem": f"Find $x$ if $x + {i} = {2 * i}$.", "solution": "s",
                "answer": f"{i:03d}", "url": f"https://example.org/{i}"} for i in range(1, 6)],
    "math500": [{"problem": f"Compute ${i}^2$.", "solution": "s", "answer": str(i * i),
                 "subject": "Algebra", "level": 1 + i % 5, "unique_id": f"test/algebra/{i}.json"}
                for i in range(1, 8)],
    "mmlu": [{"question": f"{subject} question {i},\nwith a comma and a newline",
              "subject": subject, "choices": ["w", "x", "y, or z", "\"q\""], "answer": i % 4}
             for subject in ("anatomy", "astronomy") for i in range(3)],
    "gpqa_diamond": [{"Question": f"{SECRET} number {i}", "Correct Answer": f"right {i}",
                      "Incorrect Answer 1": "w1", "Incorrect Answer 2": "w2",
                      "Incorrect Answer 3": "w3", "Record ID": f"rec{i:04d}",
                      "High-level domain": "Biology", "Subdomain": "Molecular Biology",
                      "Writer's Difficulty Estimate": None} for i in range(4)],
}


def _task_file(name: str, hub_path: Path) -> str:
    return (
        "import dataclasses\n"
        f"from r1eval.tasks.{name} import TASK as BUILT_IN\n"
        f"TASK = dataclasses.replace(BUILT_IN, hub=dataclasses.replace(BUILT_IN.hub, "
        f"path={str(hub_path)!r}))\n"
    )


@pytest.fixture
def local_hub(tmp_path: Path) -> Path:
    """A task folder whose tasks read ROWS from a local hub; returns the task folder."""
    import datasets

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    for task in resolve(list(ROWS)):
        hub = task.hub
        repo = tmp_path / "hub" / hub.path
        config = hub.config or "default"
        data_file = f"{config}/{hub.split}-00000-of-00001.parquet"
        (repo / config).mkdir(parents=True)
        datasets.Dataset.from_list(ROWS[task.name]).to_parquet(str(repo / data_file))
        (repo / "README.md").write_text(
            f"---\nconfigs:\n- config_name: {config}\n  data_files:\n  - split: {hub.split}\n"
            f"    path: {data_file}\n---\n", encoding="utf-8")
        (tasks / f"{task.name}.py").write_text(_task_file(task.name, repo), encoding="utf-8")
    return tasks


@pytest.fixture(autouse=True)
def _private_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-home" / "datasets"))


def download(local_hub: Path, to: Path, *extra: str) -> int:
    return main(["data", "download", "--to", str(to), "--task-dir", str(local_hub),
                 "--tasks", ",".join(ROWS), *extra])


def test_download_stores_what_the_hub_serves_in_the_local_layout(
    local_hub: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    to = tmp_path / "data"
    assert download(local_hub, to) == 0
    table = capsys.readouterr().out
    for task in resolve(list(ROWS), local_hub):
        from_hub = load_task(task, None).samples  # the real Hub path, through datasets
        assert load_task(task, to).samples == from_hub, task.name
        assert len(from_hub) == len(ROWS[task.name]) and f"| {task.name}" in table
    assert sorted(p.name for p in (to / "mmlu" / "test").iterdir()) == [
        "anatomy_test.csv", "astronomy_test.csv"]
    # no staging folder or cache left behind
    assert sorted(p.name for p in to.iterdir()) == [
        "SHA256SUMS", "aime24", "gpqa", "math500", "mmlu", "r1eval-sources.json"]


def test_gpqa_is_stored_protected_like_its_authors_zip_never_in_plain_text(
    local_hub: Path, tmp_path: Path
) -> None:
    to = tmp_path / "data"
    assert download(local_hub, to, "--force") == 0
    for path in (p for p in to.rglob("*") if p.is_file()):
        assert SECRET.encode() not in path.read_bytes(), path
    assert sorted(p.name for p in (to / "gpqa").iterdir()) == ["dataset.zip"]
    if shutil.which("unzip"):  # the standard tool opens it with the authors' password
        done = subprocess.run(["unzip", "-t", "-P", "deserted-untie-orchid",
                               str(to / "gpqa" / "dataset.zip")], capture_output=True, text=True)
        assert done.returncode == 0 and "dataset/gpqa_diamond.csv" in done.stdout, done


def test_checksums_are_sha256sum_compatible_and_match_what_runs_record(
    local_hub: Path, tmp_path: Path
) -> None:
    import json

    to = tmp_path / "data"
    assert download(local_hub, to) == 0
    listed = dict(reversed(line.split("  ", 1)) for line in
                  (to / "SHA256SUMS").read_text().splitlines())
    files = {p.relative_to(to).as_posix() for p in to.rglob("*") if p.is_file()}
    assert set(listed) == files - {"SHA256SUMS", "r1eval-sources.json"}
    for name, digest in listed.items():
        assert hashlib.sha256((to / name).read_bytes()).hexdigest() == digest
    sources = json.loads((to / "r1eval-sources.json").read_text())
    for task in resolve(list(ROWS), local_hub):
        recorded = load_task(task, to).source["sha256"]  # what a run's run.json says
        assert sources[task.name]["sha256"] == recorded
        assert sources[task.name]["source"]["revision"] == task.hub.revision


def test_existing_files_are_kept_unless_forced_and_a_failure_writes_nothing(
    local_hub: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    to = tmp_path / "data"
    assert download(local_hub, to) == 0
    before = {p: p.read_bytes() for p in to.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert download(local_hub, to) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already there; --force replaces it" in err
    # a Hub dataset that cannot be read: math500's is gone; aime24 was fetched before it
    shutil.rmtree(tmp_path / "hub" / "HuggingFaceH4" / "MATH-500")
    assert download(local_hub, to, "--force") == 2
    assert "math500: cannot load" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in to.rglob("*") if p.is_file()} == before
    assert not [p for p in to.iterdir() if p.name.startswith(".")]


def test_the_hub_files_go_to_the_scratch_folder_not_the_shared_cache(
    local_hub: Path, tmp_path: Path
) -> None:
    """Where huggingface_hub puts the files it fetches, seen by a task's writer mid-download:
    inside the target's staging folder, deleted with it; the shared cache is untouched."""
    import huggingface_hub.constants

    seen = tmp_path / "seen.txt"
    (local_hub / "aime24.py").write_text(_task_file("aime24", tmp_path / "hub" / (
        "HuggingFaceH4/aime_2024")) + (
        "import huggingface_hub.constants, pathlib\n"
        "from r1eval.task.data import write_jsonl\n"
        "def spy(records, path):\n"
        f"    pathlib.Path({str(seen)!r}).write_text(huggingface_hub.constants.HF_HUB_CACHE)\n"
        "    write_jsonl(records, path)\n"
        "TASK = dataclasses.replace(TASK, local=dataclasses.replace(TASK.local, writer=spy))\n"))
    shared = huggingface_hub.constants.HF_HUB_CACHE
    to = tmp_path / "data"
    assert main(["data", "download", "--to", str(to), "--task-dir", str(local_hub), "--tasks",
                 "aime24"]) == 0
    during = Path(seen.read_text())
    assert during.parent.parent == to and during.parent.name.startswith(".r1eval-download-")
    assert not during.parent.exists() and shared == huggingface_hub.constants.HF_HUB_CACHE


def test_download_flags_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["data", "download"])
    assert exited.value.code == 2
    assert "--to" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["data", "download", "--to", str(tmp_path / "file"), "--tasks", "aime24"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(["data", "download", "--to", str(tmp_path), "--tasks", "aime23"]) == 2
    assert "unknown task 'aime23'" in capsys.readouterr().err


# The gated dataset: a stand-in for the Hub's API answering as it does for GPQA without access.


@pytest.fixture
def gated_hub() -> Iterator[str]:
    """An HTTP server on loopback that answers every request as the Hub answers for a gated
    repository the caller may not read (401 with X-Error-Code: GatedRepo)."""
    import asyncio

    from aiohttp import web

    started = threading.Event()
    state: dict[str, Any] = {}

    async def refuse(request: web.Request) -> web.Response:
        return web.json_response(
            {"error": "Access to dataset Idavidrein/gpqa is restricted. You must have access "
             "to it and be authenticated to access it. Please log in."},
            status=401, headers={"X-Error-Code": "GatedRepo",
                                 "X-Error-Message": "Access to dataset is restricted."})

    async def serve() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", refuse)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        state["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
        state["stop"] = asyncio.Event()
        state["loop"] = asyncio.get_running_loop()
        started.set()
        await state["stop"].wait()
        await runner.cleanup()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(10)
    yield state["url"]
    state["loop"].call_soon_threadsafe(state["stop"].set)
    thread.join(10)


@pytest.mark.parametrize("command", [
    ["data", "download", "--to", "{tmp}/data", "--tasks", "gpqa_diamond"],
    ["run", "--model", "m", "--base-url", "http://127.0.0.1:9/v1", "--tasks", "gpqa_diamond",
     "--run-dir", "{tmp}/run"],
], ids=["download", "run"])
def test_a_gated_dataset_says_accept_the_terms_and_set_hf_token(
    gated_hub: str, tmp_path: Path, command: list[str]
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    env = {**os.environ, "HF_ENDPOINT": gated_hub, "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_ETAG_TIMEOUT": "5", "HF_HUB_DOWNLOAD_TIMEOUT": "5", "R1EVAL_DATA_DIR": ""}
    for name in ("HF_TOKEN", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        env.pop(name, None)
    done = subprocess.run(r1eval_process_args(*args), cwd=OUTSIDE_REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("r1eval: error: gpqa_diamond: Idavidrein/gpqa is gated")
    assert "accept its terms at https://huggingface.co/datasets/Idavidrein/gpqa" in lines[0]
    assert "set HF_TOKEN" in lines[0] and "--data-dir" in lines[0]
    assert not (tmp_path / "data" / "gpqa").exists() and not (tmp_path / "run").exists()


@pytest.mark.data
def test_every_writer_is_the_inverse_of_its_reader_on_the_real_files(
    tmp_path: Path, data_dir: Path
) -> None:
    """Each task's writer stores the official files' records so that its reader gives the same
    samples back (GPQA: covered with made-up rows above, its real text is never written)."""
    from r1eval.task.registry import available_tasks

    tasks = [t for t in available_tasks().values() if t.local.writer and not t.private_text]
    assert {t.name for t in tasks} >= {"aime24", "math500", "mmlu"}
    for task in tasks:
        records = task.local.reader(data_dir / task.local.path)
        target = tmp_path / task.local.path
        target.parent.mkdir(parents=True, exist_ok=True)
        assert task.local.writer is not None
        task.local.writer(records, target)
        assert load_task(task, tmp_path).samples == load_task(task, data_dir).samples, task.name
