"""The registry of reported scores: what it holds, aliases, and errors in a user's file."""

from __future__ import annotations

from pathlib import Path

import pytest

from r1eval.claims.published import Figure, load_reported
from r1eval.cli import main
from r1eval.errors import UsageError

PUBLISHED = Path(__file__).with_name("published_tables.md")

GOOD = """
[source]
id = "my-paper"
title = "My paper (2025), Table 2"

[aliases]
"my-endpoint-name" = { model = "My-Model", note = "served quantized" }

[[figures]]
model = "My-Model"
benchmark = "aime24"
metric = "pass@1"
value = 41.0
where = "Table 2"
protocol = { samples = 16, temperature = 0.7 }

[[figures]]
model = "My-Model"
benchmark = "codeforces"
metric = "elo"
value = 1500
where = "Table 3"
"""


def write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_registry_loads_every_source_of_the_reference() -> None:
    reported = load_reported()
    assert reported.counts() == {"deepseek-r1-article": 36, "deepseek-r1-readme": 12,
                                 "open-r1": 18, "deepseek-r1-0528-card": 12, "deepscaler": 2}
    article = {(c.figure.model, c.figure.benchmark): c.figure for c in reported.claims
               if c.source.id == "deepseek-r1-article"}
    assert article["DeepSeek-R1", "aime24"].value == 79.8
    assert article["Claude 3.5", "codeforces"].shown() == "~900"  # approximate in the article
    assert article["GPT-4o", "swe_bench_verified"].value == 33.2
    readme = [c.figure for c in reported.claims if c.source.id == "deepseek-r1-readme"]
    assert {f.metric for f in readme} == {"cons@64", "pass@1"}
    open_r1 = [c.figure for c in reported.claims if c.source.id == "open-r1"]
    assert {(f.benchmark, f.protocol.samples if f.protocol else None) for f in open_r1} == {
        ("aime24", 64), ("math500", 4), ("gpqa_diamond", 8)}


def _published_cells() -> dict[tuple[str, str, str], tuple[str, str | None]]:
    """``(source, model, benchmark) -> (value as printed, metric if the header names one)``
    for every cell of tests/published_tables.md."""
    reported = load_reported()
    cells: dict[tuple[str, str, str], tuple[str, str | None]] = {}
    for section in PUBLISHED.read_text(encoding="utf-8").split("\n## ")[1:]:
        source = section.split(":", 1)[0]
        rows = [[c.strip() for c in line.strip().strip("|").split("|")]
                for line in section.splitlines()
                if line.startswith("|") and not line.startswith("|--")]
        header, body = rows[0], rows[1:]
        by_benchmark = header[0] == "benchmark"  # a row per benchmark, a column per model
        for row in body:
            for column, value in zip(header[1:], row[1:], strict=True):
                model, benchmark = (column, row[0]) if by_benchmark else (row[0], column)
                resolved = reported.resolve(model)
                assert resolved is not None, f"{model} does not resolve"
                name, *metric = benchmark.split()
                cells[source, resolved[0], name] = (value, metric[0] if metric else None)
    return cells


def test_registry_holds_exactly_the_published_tables() -> None:
    """Every cell of each source's tables, at its model and benchmark, and nothing else from
    those sources (the registry's other sources are checked by their own tests)."""
    published = _published_cells()
    sources = {source for source, _, _ in published}
    registry = {(c.source.id, c.figure.model, c.figure.benchmark): (c.figure.shown(),
                                                                   c.figure.metric)
                for c in load_reported().claims if c.source.id in sources}
    assert set(registry) == set(published)
    for key, (value, metric) in published.items():
        assert registry[key][0] == value, key
        assert metric is None or registry[key][1] == metric, key


@pytest.mark.parametrize(("name", "expected"), [
    ("deepseek-r1:7b", "DeepSeek-R1-Distill-Qwen-7B"),           # Ollama
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "DeepSeek-R1-Distill-Qwen-7B"),  # vLLM
    ("DEEPSEEK-AI/deepseek-r1-distill-qwen-7b", "DeepSeek-R1-Distill-Qwen-7B"),  # any case
    ("deepseek-reasoner", "DeepSeek-R1"),                         # the DeepSeek API
    ("deepseek-r1:70b", "DeepSeek-R1-Distill-Llama-70B"),
    ("R1-Distill-Llama-8B", "DeepSeek-R1-Distill-Llama-8B"),      # the README's short name
    ("/models/DeepSeek-R1-Distill-Qwen-14B", "DeepSeek-R1-Distill-Qwen-14B"),  # a local path
    ("openai o1", "OpenAI o1"),                                   # a registry name itself
    ("gpt-4o", "GPT-4o"),
])
def test_aliases_resolve_to_registry_names(name: str, expected: str) -> None:
    resolved = load_reported().resolve(name)
    assert resolved is not None and resolved[0] == expected


def test_unknown_models_do_not_resolve_and_alias_notes_come_along() -> None:
    reported = load_reported()
    assert reported.resolve("my-fine-tune") is None
    resolved = reported.resolve("deepseek-r1:7b")
    assert resolved is not None and resolved[1] is not None
    assert "quantized" in (resolved[1].note or "")


def test_a_user_file_adds_figures_and_aliases(tmp_path: Path) -> None:
    reported = load_reported([write(tmp_path, GOOD)])
    assert reported.counts()["my-paper"] == 2
    assert reported.resolve("MY-ENDPOINT-NAME") is not None
    assert [c.figure.value for c in reported.for_model("my-model")] == [41.0, 1500]


def test_percentages_and_fractions_are_explicit() -> None:
    figure = Figure(model="m", benchmark="aime24", metric="pass@1", value=55.5, where="t")
    assert figure.fraction == pytest.approx(0.555) and figure.is_percent
    assert Figure(model="m", benchmark="aime24", metric="cons@64", value=83.3,
                  where="t").samples_in_metric == 64
    rating = Figure(model="m", benchmark="codeforces", metric="elo", value=2029, where="t")
    assert not rating.is_percent and rating.shown() == "2029"
    with pytest.raises(ValueError, match="not a percentage"):
        _ = rating.fraction


@pytest.mark.parametrize(("text", "fragments"), [
    ("[source\nid=", ["not valid TOML"]),
    (GOOD.replace("value = 41.0", "valu = 41.0"), ["figures.0.valu", "Extra inputs"]),
    (GOOD.replace("value = 41.0", "value = 410"), ["figures.0", "write 55.5, not 0.555"]),
    (GOOD.replace('"pass@1"', '"maj@64"'), ["figures.0.metric", "unknown metric 'maj@64'"]),
    (GOOD.split("[aliases]")[0].replace("[source]", "[sauce]"), ["sauce", "Extra inputs"]),
    (GOOD.replace('id = "my-paper"\n', ""), ["source.id", "Field required"]),
    ("[[figures]]\nmodel='m'\nbenchmark='aime24'\nmetric='pass@1'\nvalue=1\nwhere='x'\n",
     ["figures need a [source] table"]),
    (GOOD + "[[figures]]\nmodel = 'my-model'\nbenchmark = 'aime24'\nmetric = 'pass@1'\n"
     "value = 40\nwhere = 'Table 4'\n", ["two figures for my-model aime24 pass@1"]),
    (GOOD.replace("temperature = 0.7", "temperature = 7"), ["protocol.temperature"]),
    (GOOD.replace('"my-endpoint-name"', '"deepseek-r1:7b"'),
     ["alias 'deepseek-r1:7b' -> My-Model conflicts", "--as NAME"]),
    (GOOD.replace('"my-paper"', '"open-r1"'), ["source id 'open-r1' is already used"]),
])
def test_a_malformed_user_file_is_one_clear_error(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as raised:
        load_reported([path])
    message = str(raised.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_bad_claims_file_on_the_command_line_is_exit_2_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, GOOD.replace("value = 41.0", "value = 'high'"))
    assert main(["compare", "--list", "--claims", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("r1eval: error: claims file")
    assert main(["compare", "--list", "--claims", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read it" in capsys.readouterr().err


def test_list_shows_benchmarks_r1eval_cannot_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compare", "--list", "--claims", str(write(tmp_path, GOOD))]) == 0
    out = capsys.readouterr().out
    codeforces = [line for line in out.splitlines() if "| Codeforces" in line]
    assert len(codeforces) == 5  # four frontier models and the user's own
    assert all("not run by r1eval" in line for line in codeforces)
    swe = [line for line in out.splitlines() if "SWE-bench Verified" in line]
    assert len(swe) == 4 and all("not run by r1eval" in line for line in swe)
    assert "| DeepSeek-R1 " in out and "samples=64" in out


def test_the_newer_benchmarks_figures_name_their_source_and_protocol() -> None:
    reported = load_reported()
    newer = {(c.figure.model, c.figure.benchmark): c for c in reported.claims
             if c.figure.benchmark in {"aime25", "hmmt_feb25", "amc23", "mmlu_pro"}}
    assert {c.source.id for c in newer.values()} == {"deepseek-r1-0528-card", "deepscaler"}
    assert all(c.source.url and c.source.url.startswith("https://") for c in newer.values())
    r1_0528 = newer["DeepSeek-R1-0528", "aime25"]
    assert r1_0528.figure.value == 87.5 and r1_0528.figure.protocol is not None
    assert (r1_0528.figure.protocol.samples, r1_0528.figure.protocol.temperature,
            r1_0528.figure.protocol.top_p) == (16, 0.6, 0.95)
    assert newer["DeepSeek-R1", "hmmt_feb25"].figure.value == 41.7
    assert newer["DeepSeek-R1-0528", "mmlu_pro"].figure.value == 85.0
    assert newer["DeepSeek-R1-0528-Qwen3-8B", "hmmt_feb25"].figure.value == 61.5
    assert newer["DeepSeek-R1-Distill-Qwen-1.5B", "amc23"].figure.value == 62.9
    assert reported.resolve("deepseek-ai/DeepSeek-R1-0528")[0] == "DeepSeek-R1-0528"
    assert reported.resolve("Qwen/Qwen3-8B")[0] == "Qwen3-8B"
