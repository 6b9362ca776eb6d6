"""A disk that fills up: one line, exit 2, nothing half-written, and the same command resumes.

The disk is real: a small tmpfs mounted in a user and mount namespace of its own
(``unshare --map-root-user --mount``), so the test needs no privileges and leaves no mount
behind; it is skipped where the system allows no user namespaces.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import OUTSIDE_REPO, r1eval_process_args
from openai_server import Body, OpenAIServer

TESTS = Path(__file__).resolve().parent
TASK_DIR, DATA_DIR = TESTS / "task_files", TESTS / "task_data"
RESPONSES = 8 * 4  # tiny_math's eight questions, four samples each
DISK_KIB = 512
FREE_KIB = 64  # left free for the run that fills the disk: about a dozen responses

#: Run inside the namespace: mount the disk, then the same command three times (disk full from
#: the start; filling up during the run; after space was freed), keeping what each left.
SCRIPT = r"""
set -u
disk=$1; out=$2; shift 2
mount -t tmpfs -o size={disk_kib}k tmpfs "$disk" || exit 97
head -c {disk_kib}k /dev/zero > "$disk/fill" 2>/dev/null
"$@" --run-dir "$disk/run" 2> "$out/full.err"; echo $? > "$out/full.code"
ls -A "$disk" > "$out/full.ls"
rm "$disk/fill"; head -c $(( ({disk_kib} - {free_kib}) * 1024 )) /dev/zero > "$disk/fill"
"$@" --run-dir "$disk/run" 2> "$out/filled.err"; echo $? > "$out/filled.code"
cp -a "$disk/run" "$out/filled"
rm "$disk/fill"
"$@" --run-dir "$disk/run" 2> "$out/freed.err"; echo $? > "$out/freed.code"
cp -a "$disk/run" "$out/freed"
"""


def bulky(body: Body, index: int) -> dict[str, str]:
    """A right answer after 5 KB of reasoning."""
    return {"reasoning_content": "think " * 900, "content": "The answer is \\boxed{4}."}


def namespaces_allowed() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--map-root-user", "--mount", "true"],
                           capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not namespaces_allowed(), reason="no user and mount namespaces here")
def test_a_full_disk_is_one_line_exit_2_and_the_same_command_resumes(tmp_path: Path) -> None:
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir()
    out.mkdir()
    with OpenAIServer(responder=bulky) as server:
        command = r1eval_process_args(
            "run", "--model", server.model, "--base-url", server.base_url, "--tasks",
            "tiny_math", "--samples", "4", "--task-dir", str(TASK_DIR), "--data-dir",
            str(DATA_DIR), "--grader-workers", "0", "--concurrency", "1")
        script = SCRIPT.format(disk_kib=DISK_KIB, free_kib=FREE_KIB)
        done = subprocess.run(
            ["unshare", "--map-root-user", "--mount", "bash", "-c", script, "bash", str(disk),
             str(out), *command], cwd=OUTSIDE_REPO, capture_output=True, text=True,
            timeout=300, check=False,
        )
    assert done.returncode == 0, done.stderr

    def result(name: str) -> tuple[int, list[str]]:
        code = int((out / f"{name}.code").read_text())
        return code, (out / f"{name}.err").read_text().splitlines()

    # Full from the start: one line, exit 2, and no run folder.
    code, lines = result("full")
    assert code == 2 and len(lines) == 1, lines
    assert lines[0] == (f"r1eval: error: no space left on the device holding {disk}/run; "
                        "everything logged so far is intact; free space and run the same command")
    assert (out / "full.ls").read_text().split() == ["fill"]

    # Full during the run: the same line, and what was logged is whole.
    code, lines = result("filled")
    assert code == 2 and lines[-1].startswith("r1eval: error: no space left on the device"), lines
    assert not [line for line in lines if "Traceback" in line]
    filled = out / "filled"
    assert not list(filled.glob(".*.tmp")) and not list(filled.glob("*.tmp"))
    log = (filled / "samples.jsonl").read_bytes()
    whole = log[: log.rfind(b"\n") + 1].splitlines()
    received = [json.loads(line) for line in whole]
    completions = [r for r in received if r["type"] == "completion"]
    assert 0 < len(completions) < RESPONSES

    # Space freed: the same command finishes the run, each sample once.
    code, lines = result("freed")
    assert code == 0, lines
    final = [json.loads(line) for line in (out / "freed" / "samples.jsonl").read_bytes()
             .splitlines()]
    keys = [r["key"] for r in final if r["type"] == "completion"]
    assert len(keys) == len(set(keys)) == RESPONSES
    assert {r["key"] for r in completions} <= set(keys)  # nothing received was lost
    assert json.loads((out / "freed" / "scores.json").read_text())["complete"] is True
