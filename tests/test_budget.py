"""Budgets: a run stops sending before it would exceed its limit, and resumes with a higher one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from r1eval.cli import main
from r1eval.run.budget import Budget
from r1eval.scoring.prices import Price
from r1eval.store.folder import LOG, read_log
from r1eval.types import Request, SamplingParams, Usage

from openai_server import OpenAIServer

PRICE = Price(input=1.0, output=10.0, source="test")


def request(n: int = 1, max_tokens: int | None = None) -> Request:
    messages = ({"role": "user", "content": "x" * 35},)  # 10 tokens at 3.5 characters a token
    return Request(messages, n, SamplingParams(max_tokens=max_tokens))


def test_projection_uses_the_token_limit_then_the_mean_so_far() -> None:
    budget = Budget(max_cost=None, max_tokens=250, price=None)
    # Nothing received yet: a request of n=2 with max_tokens 100 projects 10 + 2 x 100 = 210.
    first = request(2, 100)
    assert budget.reserve(first)
    assert not budget.reserve(request(1, 100))  # 210 in flight + 110 > 250
    budget.release(first)
    budget.charge(Usage(prompt_tokens=20, completion_tokens=60, shared_by=2))  # 10 + 30 a sample
    # Now 40 spent; the mean so far is 30 a sample: n=4 projects 10 + 120 = 130 -> 170 fits.
    assert budget.reserve(request(4, 100))


def test_cost_limit_by_hand() -> None:
    budget = Budget(max_cost=0.001, max_tokens=None, price=PRICE)
    budget.charge(Usage(prompt_tokens=100, completion_tokens=50))  # 100 x 1 + 50 x 10 = 600e-6
    # next: 10 prompt + 50 completion tokens = 10e-6 + 500e-6 -> 1,110e-6 > 1,000e-6 USD
    assert not budget.reserve(request(1, 1000))
    assert "1,100 USD" not in budget.spent() and "0.0006 USD" in budget.spent()


@pytest.mark.data
def test_a_run_stops_at_its_budget_and_resumes_with_a_higher_one(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    with OpenAIServer() as server:
        args = ["run", "--model", server.model, "--base-url", server.base_url, "--tasks",
                "aime24", "--data-dir", str(data_dir), "--run-dir", str(run_dir),
                "--grader-workers", "0", "--concurrency", "1", "--price-in", "1",
                "--price-out", "1000"]
        # the test server answers in about 20 tokens (words) a response: 0.02 USD each
        assert main([*args, "--max-cost", "0.2"]) == 1
        err = capsys.readouterr().err
        assert "budget reached (0.2 USD)" in err and "higher --max-cost" in err
        first = [r for r in read_log(run_dir / LOG) if r["type"] == "completion"]
        assert 3 <= len(first) < 30
        scores = json.loads((run_dir / "scores.json").read_text())
        assert scores["tasks"]["aime24"]["n_not_attempted"] == 30 - len(first)
        assert scores["cost_usd"] <= 0.2
        sent = len(server.requests)

        assert main([*args, "--max-cost", "5"]) == 0
        assert len(server.requests) - sent == 30 - len(first)  # only what was not sent
    scores = json.loads((run_dir / "scores.json").read_text())
    aime = scores["tasks"]["aime24"]
    assert aime["n_samples"] == 30 and scores["prices"]["output_per_1m"] == 1000

    capsys.readouterr()
    assert main(["compare", str(run_dir), "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)["rows"][0]
    assert row["cost_usd"] == pytest.approx(aime["cost_usd"])
    if aime["pass@1"]:  # cost per percentage point of the measured score
        assert row["usd_per_point"] == pytest.approx(aime["cost_usd"] / (100 * aime["pass@1"]))


def test_max_cost_needs_a_price(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--model", "my-finetune", "--base-url", "http://127.0.0.1:9/v1",
                 "--tasks", "aime24", "--data-dir", str(tmp_path), "--max-cost", "10"])
    assert code == 2
    assert "--max-cost needs the price of 'my-finetune'" in capsys.readouterr().err
