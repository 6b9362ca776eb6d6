"""Tokens, prices, cost, and the estimate made before a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from r1eval.cli import main
from r1eval.errors import UsageError
from r1eval.run.plan import WorkItem
from r1eval.scoring.prices import Price, price_for
from r1eval.scoring.scores import add_costs
from r1eval.store.records import completion_record
from r1eval.types import Completion, Prompt, Sample, Usage

from runs_for_tests import answer, build_run


def test_prices_by_model_name_and_overrides(tmp_path: Path) -> None:
    r1 = price_for("DeepSeek-Reasoner")  # the DeepSeek API's name, any case
    assert r1 is not None and (r1.input, r1.output) == (0.55, 2.19)
    assert price_for("o1-mini") == Price(3.0, 12.0, r1.source)
    assert price_for("my-finetune") is None
    overridden = price_for("my-finetune", price_in=1, price_out=4)
    assert overridden == Price(1, 4, "--price-in/--price-out")
    with pytest.raises(UsageError, match="both --price-in and --price-out"):
        price_for("x", price_in=1)
    own = tmp_path / "prices.toml"
    own.write_text('[[price]]\nmodel = "mine"\nnames = ["deepseek-reasoner"]\ninput = 0.1\n'
                   'output = 0.2\nsource = "our contract"\n')
    assert price_for("deepseek-reasoner", own) == Price(0.1, 0.2, "our contract")
    own.write_text('[[price]]\nmodel = "mine"\ninput = "cheap"\noutput = 1\n')
    with pytest.raises(UsageError, match=r"price\.0\.input"):
        price_for("mine", own)


def test_cost_by_hand() -> None:
    scores = {"tasks": {"t": {"tokens": {"prompt": 2_000_000, "completion": 500_000},
                              "n_correct": 10, "pass@1": 0.5, "n_samples": 20}}}
    add_costs(scores, Price(input=0.55, output=2.19, source="s"))
    # 2 M x 0.55 + 0.5 M x 2.19 = 1.10 + 1.095 = 2.195 USD; 10 correct answers
    assert scores["tasks"]["t"]["cost_usd"] == pytest.approx(2.195)
    assert scores["tasks"]["t"]["cost_per_correct_usd"] == pytest.approx(0.2195)
    assert scores["cost_usd"] == pytest.approx(2.195)
    assert scores["prices"]["source"] == "s"


def test_usage_is_estimated_and_marked_when_the_endpoint_reports_none() -> None:
    item = WorkItem("t", Sample(id="1", input="q", target="1"), 0,
                    Prompt(messages=({"role": "user", "content": "x" * 70},), gold="1"), "k")
    reported = completion_record(item, Completion("y" * 35, None, "stop", Usage(10, 20)))
    assert reported["usage"]["completion_tokens"] == 20 and not reported["usage"]["estimated"]
    estimated = completion_record(item, Completion("y" * 35, "z" * 70, "stop", Usage()))
    # 3.5 characters a token: prompt 70/3.5 = 20; answer 35/3.5 = 10 + reasoning 70/3.5 = 20
    assert estimated["usage"] == {"prompt_tokens": 20, "completion_tokens": 30,
                                  "reasoning_tokens": 20, "shared_by": 1, "estimated": True}


@pytest.mark.data
def test_estimate_from_an_earlier_run_matches_that_run(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "results"
    build_run(history / "earlier", data_dir, "aime24",
              lambda item: answer(f"</think>\\boxed{{{item.prompt.gold}}}", tokens=400),
              model="m", samples=2)
    before = sorted(tmp_path.rglob("*"))
    code = main(["estimate", "--model", "m", "--tasks", "aime24", "--samples", "4",
                 "--data-dir", str(data_dir), "--history", str(history), "--price-in", "1",
                 "--price-out", "10"])
    assert code == 0
    assert sorted(tmp_path.rglob("*")) == before  # nothing written
    out = capsys.readouterr().out
    # 30 questions x 4 samples x 400 tokens each (every earlier sample used 400)
    assert "| 30        | 120     | 30       |" in out
    assert "48,000 (48,000-48,000)" in out
    # 120 samples x 50 prompt tokens x 1 USD/M + 48,000 x 10 USD/M = 0.006 + 0.48
    assert "total: 0.49 (0.49-0.49) USD" in out


@pytest.mark.data
def test_estimate_without_history_is_an_upper_bound(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--dry-run", "--model", "deepseek-reasoner", "--base-url",
                 "http://127.0.0.1:9/v1", "--tasks", "aime24", "--protocol", "r1",
                 "--data-dir", str(data_dir), "--history", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    # R1 protocol: 30 x 64 samples, at most 32,768 tokens each = 62,914,560 tokens
    assert "at most 62,914,560" in out and "30       |" in out
    assert "0.55/2.19" in out  # the article's DeepSeek-R1 price was found by the API name
