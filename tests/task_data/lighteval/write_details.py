"""Write ``details.parquet``: a lighteval details file of responses to the tests' tiny_math task.

Written by lighteval's own code: its AIME prompt function builds each ``Doc``, its AIME metric
scores each response, and its ``EvaluationTracker`` saves the details exactly as
``lighteval ... --save-details`` does. lighteval (0.13.0) pins a latex2sympy2_extended that
math-verify 0.9 cannot run with, so it lives in a venv of its own::

    python3 -m venv --system-site-packages /tmp/lighteval-venv
    /tmp/lighteval-venv/bin/pip install lighteval==0.13.0
    /tmp/lighteval-venv/bin/python tests/task_data/lighteval/write_details.py

The responses are the tests' own (scripted: right, wrong, separate reasoning, a
``<|begin_of_thought|>`` trace, unterminated, stated without a box), two per question.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from lighteval.logging.evaluation_tracker import EvaluationTracker
from lighteval.metrics.metrics import Metrics
from lighteval.models.abstract_model import ModelConfig
from lighteval.models.model_output import ModelResponse
from lighteval.tasks.tasks.aime import aime_prompt

HERE = Path(__file__).resolve().parent
TASK = "lighteval|tiny_math|0"


def responses(answer: str) -> list[tuple[str, str | None]]:
    """(response text, separate reasoning) pairs to one question."""
    return [
        (f"<think>Let me see.</think>\nTherefore, the final answer is: $\\boxed{{{answer}}}$. "
         "I hope it is correct", None),
        (f"So the answer is \\boxed{{{answer}1}}.", "A separate trace, \\boxed{0}."),
        (f"<|begin_of_thought|>\nmaybe \\boxed{{0}}\n<|end_of_thought|>\n\n"
         f"<|begin_of_solution|>\nThe final answer is {answer}.\n<|end_of_solution|>", None),
        (f"<think>\nstill thinking about \\boxed{{{answer}}}", None),
    ]


def main() -> None:
    rows = [json.loads(line) for line in
            (HERE.parent / "tiny_math" / "test.jsonl").read_text().splitlines()]
    metric = Metrics.pass_at_k_math(sample_params={"k": 1})
    with tempfile.TemporaryDirectory() as out:
        tracker = EvaluationTracker(output_dir=out, save_details=True)
        tracker.general_config_logger.log_model_info(
            model_config=ModelConfig(model_name="tiny-model"))
        for number, row in enumerate(rows):
            doc = aime_prompt({"problem": row["problem"], "answer": row["answer"]}, TASK)
            pair = responses(row["answer"])[number % 2 * 2 : number % 2 * 2 + 2]
            for text, reasoning in pair:
                response = ModelResponse(text=[text], reasonings=[reasoning])
                scores = metric.compute_sample(doc=doc, model_response=response)
                tracker.details_logger.log(TASK, doc, response, scores)
        tracker.save()
        (written,) = Path(out).rglob("details_*.parquet")
        shutil.copy(written, HERE / "details.parquet")


if __name__ == "__main__":
    main()
