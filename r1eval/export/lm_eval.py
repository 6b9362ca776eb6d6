"""r1eval's tasks as lm-evaluation-harness task configs (``r1eval export-lm-eval DIR``).

For each task the export writes into ``DIR``:

- ``r1eval_<task>.jsonl``: one document per question and repeat, holding r1eval's exact prompt
  for that repeat (GPQA's options are shuffled per repeat, so repeats are separate documents
  rather than lm-eval ``repeats`` of one prompt) and its gold answer;
- ``r1eval_<task>.yaml``: a ``generate_until`` task on that file (``dataset_path: json``, read
  offline, cached in ``DIR/datasets_cache`` rather than the user's Hugging Face cache, so that
  no copy of the questions lands outside ``DIR``), zero-shot, the prompt as the user turn,
  scored by r1eval's grader through ``r1eval_lm_eval.py``, a two-line file that lm-eval loads
  by path (``!function``) and that imports ``r1eval.export.lm_eval_hooks``.

lm-eval's API models send ``seed`` 1234 with every request, so the K documents of a question
(same prompt) would come back identical from a server that honours seeds (vLLM), and pass@1
over K would be one sample K times. The export sets ``seed: null`` in ``generation_kwargs``
(lm-eval sends it in place of its own): no seed, as ``r1eval run`` sends none, and each
repeat is its own sample. (One lm-eval task per repeat, each with its own seed, would do as
well for the answers but not for the time: lm-eval sends the requests of each distinct
``generation_kwargs`` one group after another.)

Then ``lm_eval --model local-chat-completions --apply_chat_template --include_path DIR
--tasks r1eval_aime24`` sends the same messages as ``r1eval run`` and grades each response the
same way; the mean of ``pass@1`` over documents is r1eval's pass@1. The data files hold the
questions in plain text: GPQA's authors ask that its questions never be published, so keep
``DIR`` private. lm-eval itself is not needed to export.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from r1eval import __version__
from r1eval.errors import UsageError
from r1eval.export.lm_eval_hooks import METRIC
from r1eval.run.plan import build_plan
from r1eval.task.data import LoadedTask
from r1eval.types import SamplingParams, WorkItem

__all__ = ["DEFAULT_MAX_TOKENS", "SHIM", "export_lm_eval", "generation_kwargs", "task_name"]

#: lm-eval always sends a token limit (256 unless told): a reasoning model needs far more.
DEFAULT_MAX_TOKENS = 32768
SHIM = "r1eval_lm_eval"
CACHE = "datasets_cache"
_SHIM_TEXT = (
    '"""Written by r1eval export-lm-eval: lm-eval loads this file by path; the logic is '
    'r1eval\'s."""\n\nfrom r1eval.export.lm_eval_hooks import process_results\n\n'
    '__all__ = ["process_results"]\n'
)


def task_name(task: str) -> str:
    """The lm-eval name of an exported r1eval task."""
    return f"r1eval_{task}"


def generation_kwargs(sampling: SamplingParams) -> dict[str, Any]:
    """lm-eval ``generation_kwargs``: no stop sequence, the sampling settings that are set.

    With no temperature, lm-eval's chat-completions model sends 0 (greedy). ``seed`` is None
    (JSON null): no seed instead of lm-eval's fixed one (see the module docstring).
    """
    kwargs: dict[str, Any] = {"until": list(sampling.stop), "seed": None}
    if sampling.temperature is not None:
        kwargs["do_sample"] = sampling.temperature > 0
        kwargs["temperature"] = sampling.temperature
    if sampling.top_p is not None:
        kwargs["top_p"] = sampling.top_p
    kwargs["max_gen_toks"] = sampling.max_tokens or DEFAULT_MAX_TOKENS
    return kwargs


def export_lm_eval(
    out_dir: Path,
    loaded: Sequence[LoadedTask],
    samples_per_task: Mapping[str, int],
    sampling: SamplingParams,
) -> list[Path]:
    """Write the data file and the task config of each task (see the module docstring);
    returns the config files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    items = build_plan(loaded, samples_per_task, {"model": "lm-eval"}, sampling)
    (out_dir / f"{SHIM}.py").write_text(_SHIM_TEXT, encoding="utf-8")
    written = []
    for task_data in loaded:
        task = task_data.task
        data_file = out_dir / f"{task_name(task.name)}.jsonl"
        _write_jsonl(data_file, (_document(item) for item in items if item.task == task.name))
        config = _task_config(task_data, data_file.resolve(), samples_per_task[task.name], sampling)
        config_file = out_dir / f"{task_name(task.name)}.yaml"
        config_file.write_text(config, encoding="utf-8")
        written.append(config_file)
    return written


def _document(item: WorkItem) -> dict[str, Any]:
    messages = item.prompt.messages
    if len(messages) != 1 or messages[0].get("role") != "user":
        raise UsageError(
            f"{item.task}: only single user-turn prompts can be exported to lm-eval"
        )
    return {
        "task": item.task,
        "question": item.sample.id,
        "repeat": item.repeat,
        "prompt": messages[0]["content"],
        "gold": item.prompt.gold,
    }


def _write_jsonl(path: Path, documents: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for document in documents:
            out.write(json.dumps(document, ensure_ascii=False) + "\n")


def _task_config(
    task_data: LoadedTask, data_file: Path, samples: int, sampling: SamplingParams
) -> str:
    """The task's YAML, written by hand: scalars as JSON (valid YAML), plus one ``!function``."""
    task, kwargs = task_data.task, generation_kwargs(sampling)

    def scalar(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    gen = "".join(f"  {key}: {scalar(value)}\n" for key, value in kwargs.items())
    return (
        f"# Written by r1eval {__version__} export-lm-eval: {task.description}.\n"
        f"# {task.reference}. One document per question and repeat; pass@1 is their mean.\n"
        f"task: {task_name(task.name)}\n"
        "tag:\n  - r1eval\n"
        "dataset_path: json\n"
        "dataset_kwargs:\n"
        f"  data_files:\n    test: {scalar(str(data_file))}\n"
        f"  cache_dir: {scalar(str(data_file.parent / CACHE))}\n"
        "test_split: test\n"
        "output_type: generate_until\n"
        "num_fewshot: 0\n"
        "doc_to_text: prompt\n"
        "doc_to_target: gold\n"
        f"process_results: !function {SHIM}.process_results\n"
        f"generation_kwargs:\n{gen}"
        f"metric_list:\n  - metric: {scalar(METRIC)}\n    aggregation: mean\n"
        "    higher_is_better: true\n"
        "metadata:\n"
        f"  version: {float(task.version) if task.version.isdigit() else 0.0}\n"
        f"  r1eval_task_version: {scalar(task.version)}\n"
        f"  r1eval_prompt_hash: {scalar(task.prompt_hash)}\n"
        f"  source: {scalar(task_data.source.get('location'))}\n"
        f"  samples_per_question: {samples}\n"
    )
