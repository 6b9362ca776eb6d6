"""``r1eval grade``: responses from a file are graded and scored exactly like a live run."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import r1eval
from r1eval.cli import main
from r1eval.export.lm_eval import task_name
from r1eval.store.folder import LOG, read_log
from r1eval.task.data import read_jsonl
from r1eval.task.prompts import MATH_PROMPT

from conftest import OUTSIDE_REPO
from local_models import require, write_small_data
from openai_server import OpenAIServer, last_user_text

TESTS = Path(__file__).resolve().parent
TASK_DIR, DATA_DIR = TESTS / "task_files", TESTS / "task_data"
SAMPLES = 3
# Scores that depend on the responses only: token counts and costs differ (the live server
# reports usage; a file has none, so r1eval estimates it), and a file has no timings (speed).
NOT_COMPARED = {"tokens", "tokens_estimated_samples", "completion_tokens_per_correct",
                "cost_usd", "cost_per_correct_usd", "speed"}


def behaviour(prompt: str, index: int) -> str:
    kinds = ["reasoning_field", "close_only", "fallback", "equivalent", "truncated", "wrong"]
    return kinds[hashlib.sha256(f"{prompt}|{index}".encode()).digest()[0] % len(kinds)]


class TinyModel:
    """Answers the tiny_math prompts in scripted ways (right, wrong, truncated, unboxed)."""

    def __init__(self) -> None:
        self.gold = {MATH_PROMPT.format(problem=r["problem"]): str(r["answer"])
                     for r in read_jsonl(DATA_DIR / "tiny_math" / "test.jsonl")}

    def __call__(self, body: dict[str, Any], index: int) -> dict[str, Any]:
        prompt = last_user_text(body)
        gold = self.gold[prompt]
        kind = behaviour(prompt, index)
        if kind == "reasoning_field":
            return {"reasoning_content": "Maybe \\boxed{1}", "content": f"\\boxed{{{gold}}}"}
        if kind == "close_only":
            return {"content": f"draft \\boxed{{0}} </think> So $\\boxed{{{gold}}}$."}
        if kind == "fallback":
            return {"content": f"</think> The final answer is ${gold}$"}
        if kind == "equivalent":
            return {"content": f"</think> \\boxed{{{gold}+0}}"}
        if kind == "truncated":
            return {"content": f"<think> so far \\boxed{{{gold}}} but", "finish_reason": "length"}
        return {"content": "</think> \\boxed{98765}"}


def tiny_args(run_dir: Path, *extra: str) -> list[str]:
    return [*extra, "--task-dir", str(TASK_DIR), "--data-dir", str(DATA_DIR),
            "--run-dir", str(run_dir), "--grader-workers", "0"]


def live_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "live"
    with OpenAIServer(responder=TinyModel()) as server:
        args = ["run", "--model", server.model, "--base-url", server.base_url, "--tasks",
                "tiny_math", "--samples", str(SAMPLES), "--protocol", "r1"]
        assert main(tiny_args(run_dir, *args)) == 0
    return run_dir


def export(run_dir: Path, path: Path, by: str = "id", with_repeat: bool = True) -> Path:
    """A completions file of a run's responses (what another harness would have written)."""
    samples = r1eval.load_run(run_dir, with_text=True).samples
    problems = {str(r["id"]): r["problem"]
                for r in read_jsonl(DATA_DIR / "tiny_math" / "test.jsonl")}
    with path.open("w", encoding="utf-8") as out:
        for row in samples.to_dict("records"):
            line = {"id": row["sample_id"]} if by == "id" else \
                {"problem": problems[row["sample_id"]]}
            line.update(response=row["text"], reasoning=_value(row["reasoning"]),
                        finish_reason=_value(row["finish_reason"]))
            if with_repeat:
                line["repeat"] = int(row["repeat"])
            out.write(json.dumps(line) + "\n")
    return path


def _value(cell: Any) -> Any:
    """A DataFrame cell, with pandas' missing value as None."""
    return None if isinstance(cell, float) and math.isnan(cell) else cell


def task_scores(run_dir: Path) -> dict[str, Any]:
    scores = json.loads((run_dir / "scores.json").read_text())["tasks"]["tiny_math"]
    return {k: v for k, v in scores.items() if k not in NOT_COMPARED}


def grade(completions: Path, run_dir: Path, *extra: str) -> int:
    args = ["grade", "--task", "tiny_math", "--completions", str(completions), *extra]
    return main(tiny_args(run_dir, *args))


@pytest.mark.parametrize(("by", "with_repeat"), [("id", True), ("problem", False)])
def test_grade_reproduces_the_score_of_the_live_run(
    tmp_path: Path, by: str, with_repeat: bool
) -> None:
    live = live_run(tmp_path)
    completions = export(live, tmp_path / "responses.jsonl", by, with_repeat)
    assert grade(completions, tmp_path / "replayed", "--model", "test-model") == 0
    expected = task_scores(live)
    assert expected["n_samples"] == 8 * SAMPLES and 0 < expected["pass@1"] < 1
    assert expected["truncated_rate"] > 0 and expected["extraction"].get("stated")  # not boxed
    assert task_scores(tmp_path / "replayed") == expected
    # the same verdict for every single response
    columns = ["sample_id", "repeat", "verdict", "extracted", "method"]
    live_rows = r1eval.load_run(live).samples[columns].to_dict("records")
    assert r1eval.load_run(tmp_path / "replayed").samples[columns].to_dict("records") == \
        live_rows


def test_the_run_folder_says_the_responses_came_from_a_file(tmp_path: Path) -> None:
    completions = tmp_path / "my-model.jsonl"
    completions.write_text('{"id": "q1", "response": "\\\\boxed{5}"}\n')
    assert grade(completions, tmp_path / "run", "--temperature", "0.6") == 0
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    digest = hashlib.sha256(completions.read_bytes()).hexdigest()
    assert manifest["identity"]["endpoint"] == {"model": "my-model", "base_url": f"file:{digest}"}
    assert manifest["identity"]["sampling"]["temperature"] == 0.6  # as stated, recorded
    assert manifest["completions"]["sha256"] == digest
    assert manifest["tasks"]["tiny_math"]["samples_per_question"] == 1
    scores = json.loads((tmp_path / "run" / "scores.json").read_text())["tasks"]["tiny_math"]
    assert scores["pass@1"] == 1.0 and scores["n_questions_planned"] == 1
    # a changed file is another "endpoint": the folder refuses it
    completions.write_text('{"id": "q1", "response": "\\\\boxed{6}"}\n')
    assert grade(completions, tmp_path / "run", "--temperature", "0.6") == 2


def test_grading_again_resumes_and_sends_nothing_twice(tmp_path: Path) -> None:
    live = live_run(tmp_path)
    completions = export(live, tmp_path / "responses.jsonl")
    full = tmp_path / "full"
    assert grade(completions, full, "--model", "m") == 0
    # a folder cut short (a crash after the first few responses), then resumed
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "run.json").write_bytes((full / "run.json").read_bytes())
    records = list(read_log(full / LOG))
    kept = {r["key"] for r in records if r["type"] == "completion"}
    kept = set(sorted(kept)[:7])
    (cut / LOG).write_text("".join(json.dumps(r) + "\n" for r in records if r["key"] in kept))
    assert grade(completions, cut, "--model", "m") == 0
    assert grade(completions, cut, "--model", "m") == 0  # nothing left to do
    log = list(read_log(cut / LOG))
    completions_logged = [r["key"] for r in log if r["type"] == "completion"]
    assert len(completions_logged) == len(set(completions_logged)) == 8 * SAMPLES
    texts = {r["key"]: r["text"] for r in log if r["type"] == "completion"}
    assert texts == {r["key"]: r["text"] for r in records if r["type"] == "completion"}
    assert task_scores(cut) == task_scores(full)


@pytest.mark.parametrize(("lines", "fragments"), [
    (['{"id": "q1", "response": "x"}', "{not json"], [":2: not valid JSON"]),
    (['{"id": "q1"}'], [":1: response: Field required"]),
    (['{"id": "q1", "problem": "What?", "response": "x"}'], [":1:", "exactly one of id"]),
    (['{"response": "x"}'], [":1:", "exactly one of id"]),
    (['{"id": true, "response": "x"}'], [":1: id:"]),
    (['{"id": "q9", "response": "x"}'], [":1: no question 'q9' in tiny_math"]),
    (['{"problem": "What is 2+3?", "response": "x"}'], [":1: no tiny_math question"]),
    (['{"id": "q1", "response": "x", "repeat": 0}', '{"id": "q1", "response": "y", "repeat": 0}'],
     [":2: a second response for question 'q1' repeat 0"]),
    (['{"id": "q1", "response": "x", "repeat": -1}'], [":1: repeat"]),
    (['{"id": "q1", "response": "x", "option_order": [0, 1, 2, 3]}'],
     [":1: option_order is given, but tiny_math does not present options"]),
    (['{"id": "q1", "response": "x", "option_order": [0, 0, 1, 2]}'], [":1:", "permutation"]),
    ([""], ["holds no responses"]),
])
def test_a_bad_line_is_a_one_line_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: list[str], fragments: list[str]
) -> None:
    completions = tmp_path / "bad.jsonl"
    completions.write_text("\n".join(lines) + "\n")
    assert grade(completions, tmp_path / "run") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("r1eval: error: "), err
    for fragment in fragments:
        assert fragment in err[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.data
def test_gpqa_with_option_orders_reproduces_the_live_run(tmp_path: Path, data_dir: Path) -> None:
    """Multiple choice: ids (never question text) and the order the options were shown in."""

    def answer_a(body: dict[str, Any], index: int) -> dict[str, Any]:
        return {"content": "</think>\nAnswer: " + "ABCD"[index % 4]}

    live = tmp_path / "live"
    with OpenAIServer(responder=answer_a) as server:
        assert main(["run", "--model", server.model, "--base-url", server.base_url,
                     "--tasks", "gpqa_diamond", "--limit", "6", "--samples", "2",
                     "--data-dir", str(data_dir), "--run-dir", str(live),
                     "--grader-workers", "0"]) == 0
    samples = r1eval.load_run(live, with_text=True).samples
    completions = tmp_path / "gpqa.jsonl"
    completions.write_text("".join(
        json.dumps({"id": r["sample_id"], "repeat": int(r["repeat"]), "response": r["text"],
                    "option_order": list(r["option_order"])}) + "\n"
        for r in samples.to_dict("records")))
    replayed = tmp_path / "replayed"
    assert main(["grade", "--task", "gpqa_diamond", "--completions", str(completions),
                 "--data-dir", str(data_dir), "--run-dir", str(replayed),
                 "--grader-workers", "0"]) == 0
    load = r1eval.load_run
    assert load(replayed).samples["verdict"].tolist() == load(live).samples["verdict"].tolist()
    scores = [json.loads((d / "scores.json").read_text())["tasks"]["gpqa_diamond"]
              for d in (live, replayed)]
    assert scores[0]["pass@1"] == scores[1]["pass@1"] and scores[0]["cons@2"] == scores[1]["cons@2"]

    # The correct option (index 0 in the data) shown as D: "Answer: D" is right.
    question = samples["sample_id"].iloc[0]
    reversed_file = tmp_path / "reversed.jsonl"
    reversed_file.write_text(json.dumps({"id": question, "response": "Answer: D",
                                         "option_order": [3, 2, 1, 0]}) + "\n")
    assert main(["grade", "--task", "gpqa_diamond", "--completions", str(reversed_file),
                 "--data-dir", str(data_dir), "--run-dir", str(tmp_path / "reversed"),
                 "--grader-workers", "0"]) == 0
    assert load(tmp_path / "reversed").samples["verdict"].tolist() == ["right"]


@pytest.mark.data
def test_multiple_choice_needs_ids(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    completions = tmp_path / "mmlu.jsonl"
    completions.write_text('{"problem": "any question", "response": "Answer: A"}\n')
    assert main(["grade", "--task", "mmlu", "--completions", str(completions), "--data-dir",
                 str(data_dir), "--run-dir", str(tmp_path / "run")]) == 2
    assert "mmlu is multiple choice: give the question's id" in capsys.readouterr().err


@pytest.mark.data
def test_mmlu_pro_replay_with_a_ten_option_order(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Question 70 (nine options, gold I in the data's order) shown reversed: its correct
    option sits at A; an order of the wrong length is a one-line error."""
    reversed_order = list(range(8, -1, -1))
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"id": "70", "response": "The answer is (A)",
                                "option_order": reversed_order}) + "\n")
    assert main(["grade", "--task", "mmlu_pro", "--completions", str(good), "--data-dir",
                 str(data_dir), "--run-dir", str(tmp_path / "good"),
                 "--grader-workers", "0"]) == 0
    samples = r1eval.load_run(tmp_path / "good").samples
    assert samples["verdict"].tolist() == ["right"] and samples["gold"].tolist() == ["A"]
    short = tmp_path / "short.jsonl"
    short.write_text(json.dumps({"id": "70", "response": "Answer: A",
                                 "option_order": [3, 2, 1, 0]}) + "\n")
    capsys.readouterr()
    assert main(["grade", "--task", "mmlu_pro", "--completions", str(short), "--data-dir",
                 str(data_dir), "--run-dir", str(tmp_path / "short")]) == 2
    assert "option_order has 4 entries, but the question has 9 options" in capsys.readouterr().err


def test_integer_ids_and_unknown_fields_are_accepted(tmp_path: Path) -> None:
    """Issue 14, item 15: the AIME data file itself has integer ids; any other field of a
    line is kept as the response's metadata."""
    data = tmp_path / "data"
    (data / "aime24").mkdir(parents=True)
    rows = [{"id": 60, "problem": "How many?", "answer": "204"},
            {"id": 61, "problem": "How much?", "answer": "025"}]
    (data / "aime24" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    completions = tmp_path / "theirs.jsonl"
    lines = [{"id": 60, "response": "\\boxed{204}", "model": "m", "score": 1, "tags": ["a"]},
             {"id": 61, "response": "\\boxed{26}"}]
    completions.write_text("".join(json.dumps(line) + "\n" for line in lines))
    args = ["grade", "--task", "aime24", "--completions", str(completions), "--data-dir",
            str(data), "--run-dir", str(tmp_path / "run"), "--grader-workers", "0"]
    assert main(args) == 0
    log = list(read_log(tmp_path / "run" / LOG))
    fields = {r["sample_id"]: r["prompt_metadata"].get("fields")
              for r in log if r["type"] == "completion"}
    assert fields == {"60": {"model": "m", "score": 1, "tags": ["a"]}, "61": None}
    verdicts = {r["sample_id"]: r["correct"] for r in log if r["type"] == "grade"}
    assert verdicts == {"60": True, "61": False}


LM_EVAL_TASK = """task: plain_aime
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{problem}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: []
  max_gen_toks: 64
metric_list:
  - metric: exact_match
"""


def _lm_eval_log_samples(server: OpenAIServer, tasks: Path, task: str, out: Path) -> Path:
    """Run lm-eval's own command line with ``--log_samples``: the file it writes. It runs outside
    the clone, where ``r1eval`` is the installed package (with its task plugins), not the source
    folder."""
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    model_args = (f"model={server.model},base_url={server.base_url}/chat/completions,"
                  "num_concurrent=1,max_retries=1")
    subprocess.run([sys.executable, "-m", "lm_eval", "--model", "local-chat-completions",
                    "--model_args", model_args, "--tasks", task, "--include_path", str(tasks),
                    "--apply_chat_template", "--log_samples", "--output_path", str(out)],
                   env=env, cwd=OUTSIDE_REPO, check=True, capture_output=True, timeout=600)
    (written,) = out.rglob(f"samples_{task}_*.jsonl")
    return written


@pytest.mark.lm_eval
@pytest.mark.parametrize("exported", [True, False], ids=["r1eval-export", "plain-lm-eval-task"])
def test_grade_reads_lm_evals_log_samples(tmp_path: Path, exported: bool) -> None:
    """A --log_samples file written by lm-eval itself is graded like r1eval's own run of the
    same responses: same verdict for every response; lm-eval's fields are kept."""
    require("lm_eval")
    data = tmp_path / "data"
    write_small_data(data)
    tasks = tmp_path / "tasks"
    if exported:
        assert main(["export-lm-eval", str(tasks), "--tasks", "aime24", "--data-dir", str(data),
                     "--samples", "2"]) == 0
        task = task_name("aime24")
    else:
        tasks.mkdir()
        (tasks / "plain_aime.yaml").write_text(
            LM_EVAL_TASK.format(data=json.dumps(str(data / "aime24" / "test.jsonl"))))
        task = "plain_aime"
    with OpenAIServer(responder=_answer_by_problem(data)) as server:
        samples = _lm_eval_log_samples(server, tasks, task, tmp_path / "lm-eval")
        live = tmp_path / "live"
        assert main(["run", "--model", server.model, "--base-url", server.base_url, "--tasks",
                     "aime24", "--data-dir", str(data), "--run-dir", str(live),
                     "--samples", "2" if exported else "1", "--grader-workers", "0"]) == 0
    graded = tmp_path / "graded"
    assert main(["grade", "--task", "aime24", "--completions", str(samples), "--data-dir",
                 str(data), "--run-dir", str(graded), "--grader-workers", "0"]) == 0
    assert _verdicts(graded) == _verdicts(live) and len(_verdicts(live)) == 8 * (1 + exported)
    assert 0 < sum(_verdicts(live).values()) < len(_verdicts(live))
    kept = [r["prompt_metadata"]["fields"]["lm_eval"] for r in read_log(graded / LOG)
            if r["type"] == "completion"]
    assert {k["doc_id"] for k in kept} == set(range(len(kept)))
    if exported:  # lm-eval's own verdict (r1eval's grader exported) agrees, and is kept
        assert all(k["pass@1"] in (0.0, 1.0) for k in kept)


def _answer_by_problem(data: Path) -> Any:
    """The gold of every other question, boxed; whatever the prompt wraps the problem in."""
    rows = read_jsonl(data / "aime24" / "test.jsonl")

    def respond(body: dict[str, Any], index: int) -> dict[str, Any]:
        prompt = last_user_text(body)
        number, row = next((n, r) for n, r in enumerate(rows) if r["problem"] in prompt)
        said = row["answer"] if number % 2 == 0 else f"{row['answer']}1"
        return {"content": f"<think>hmm</think> The answer is \\boxed{{{said}}}."}

    return respond


def _verdicts(run_dir: Path) -> dict[tuple[str, int], bool]:
    return {(r["sample_id"], r["repeat"]): r["correct"] for r in read_log(run_dir / LOG)
            if r["type"] == "grade"}


def test_grade_reads_a_lighteval_details_file(tmp_path: Path) -> None:
    """A details file written by lighteval's own code (tests/task_data/lighteval/
    write_details.py): each response graded by r1eval, lighteval's own metric kept."""
    details = DATA_DIR / "lighteval" / "details.parquet"
    assert grade(details, tmp_path / "run") == 0
    log = list(read_log(tmp_path / "run" / LOG))
    verdicts = {(r["sample_id"], r["repeat"]): (r["correct"], r["failure"])
                for r in log if r["type"] == "grade"}
    assert len(verdicts) == 16
    for number in range(1, 9):
        first, second = verdicts[f"q{number}", 0], verdicts[f"q{number}", 1]
        if number % 2:  # after </think>: right; with a separate trace: wrong
            assert (first, second) == ((True, None), (False, "wrong"))
        else:  # a Sky-T1 trace, answered after it: right; unterminated <think>: no answer
            assert (first, second) == ((True, None), (False, "no_answer"))
    kept = {(r["sample_id"], r["repeat"]): r["prompt_metadata"]["fields"]["lighteval"]
            for r in log if r["type"] == "completion"}
    assert all(set(k["metric"]) == {"pass@k:k=1"} for k in kept.values())
    # lighteval itself credits the draft box of an unterminated <think> (3 of 4): r1eval does not
    credited = [kept[f"q{n}", 1]["metric"]["pass@k:k=1"] for n in (2, 4, 6, 8)]
    assert credited == [1.0, 0.0, 1.0, 1.0]
    reasoning = [r["reasoning"] for r in log if r["type"] == "completion"]
    assert reasoning.count("A separate trace, \\boxed{0}.") == 4
