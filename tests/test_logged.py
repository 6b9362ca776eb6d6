"""The log's records as the readers hold them (``r1eval.store.logged``): views pinned to the
contracts' models field by field, a later release's fields kept, every snapshot format read."""

from __future__ import annotations

import json
import shutil
import types
import typing
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from pydantic import BaseModel

from r1eval.cli import main
from r1eval.errors import RunFolderError
from r1eval.store.contracts import CompletionRecord, ErrorRecord, GradeRecord, Usage
from r1eval.store.folder import LOG, SNAPSHOT, RunFolder, load_state, read_snapshot
from r1eval.store.loading import load_run
from r1eval.store.logged import (
    BULKY_FIELDS,
    ITEM_FIELDS,
    LoggedCompletion,
    LoggedError,
    LoggedGrade,
    LoggedUsage,
    logged_completion,
    logged_error,
    logged_grade,
    logged_usage,
)

TESTS = Path(__file__).parent
RELEASE = TESTS / "fixtures" / "release_runs" / "0.1.0"

#: view, its model, the view's constructor, the model's fields the view leaves out on purpose
KINDS: list[tuple[type[Any], type[BaseModel], Any, tuple[str, ...]]] = [
    (LoggedCompletion, CompletionRecord, logged_completion, ("type", *BULKY_FIELDS)),
    (LoggedGrade, GradeRecord, logged_grade, ("type", *ITEM_FIELDS)),
    (LoggedError, ErrorRecord, logged_error, ("type",)),
    (LoggedUsage, Usage, logged_usage, ()),
]
#: A model's nested model and the view that stands for it.
NESTED = {Usage: LoggedUsage}


def _model_fields(model: type[BaseModel]) -> dict[str, Any]:
    """The model's fields by the name the log writes them under."""
    return {field.alias or name: field for name, field in model.model_fields.items()}


def _union(annotation: Any) -> set[Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return {NESTED.get(arg, arg) for arg in typing.get_args(annotation)}
    return {NESTED.get(annotation, annotation)}


def _plain(annotation: Any) -> Any:
    """``Literal["completion"]`` as ``str``, ``dict[str, Any]`` as itself."""
    if typing.get_origin(annotation) is typing.Literal:
        return type(typing.get_args(annotation)[0])
    return annotation


@pytest.mark.parametrize(("view", "model", "build", "kept_out"), KINDS,
                         ids=[kind[0].__name__ for kind in KINDS])
def test_every_view_field_is_its_models_field_with_the_same_default_and_type(
    view: type[NamedTuple], model: type[BaseModel], build: Any, kept_out: tuple[str, ...],
) -> None:
    """The models are the schema: a field added to a model and not to its view (or left out
    on purpose) fails here, and so does a view field whose default or type is not the model's."""
    fields = _model_fields(model)
    own = [name for name in view._fields if name != "extra"]
    assert set(own) | set(kept_out) == set(fields), "a view holds its model's fields"
    assert not set(own) & set(kept_out)
    hints = typing.get_type_hints(view)
    for name in own:
        assert _union(hints[name]) == {_plain(t) for t in _union(fields[name].annotation)}, \
            f"{view.__name__}.{name}: {hints[name]} vs {fields[name].annotation}"
    # the constructor's defaults are the model's: a record of the required fields only
    required = {name: f"given {name}" for name, field in fields.items()
                if field.is_required() and name not in kept_out}
    built = build(required)
    for name in own:
        field = fields[name]
        expected = required[name] if name in required else field.get_default(
            call_default_factory=True)
        got = getattr(built, name)
        if isinstance(got, LoggedUsage):  # a nested model: its fields, without ``extra``
            got, expected = got._asdict(), expected.model_dump()
            assert got.pop("extra") is None
        assert got == expected, f"{view.__name__}.{name}: {got!r} vs the model's {expected!r}"
    assert built.extra is None


def completion(key: str, **more: Any) -> dict[str, Any]:
    return {"type": "completion", "key": key, "task": "t", "sample_id": "q", "repeat": 0,
            "text": "\\boxed{5}", "reasoning": "2 + 3", "finish_reason": "stop",
            "usage": {"completion_tokens": 7, "shared_by": 1}, **more}


def test_a_later_releases_fields_are_kept_through_the_state_and_its_snapshot(
    tmp_path: Path,
) -> None:
    """Fields this release does not know (a later release's) stay in the views' ``extra``,
    from the log and from the snapshot alike."""
    records = [
        completion("a", judge="panel", extra=1,
                   usage={"completion_tokens": 7, "cached_tokens": 3}),
        {"type": "grade", "key": "a", "task": "t", "sample_id": "q", "repeat": 0,
         "correct": True, "rubric": {"score": 2}},
        {"type": "error", "key": "b", "task": "t", "sample_id": "q", "repeat": 1,
         "message": "HTTP 503", "retry_after_s": 5},
    ]
    with RunFolder(tmp_path) as folder:
        folder.state()
        for record in records:
            folder.append(record)
    from_snapshot = load_state(tmp_path)
    assert read_snapshot(tmp_path) is not None
    (tmp_path / SNAPSHOT).unlink()
    from_log = load_state(tmp_path)
    assert from_snapshot == from_log
    assert from_log.completions["a"].extra == {"judge": "panel", "extra": 1}
    assert from_log.completions["a"].usage.extra == {"cached_tokens": 3}
    assert from_log.grades["a"].extra == {"rubric": {"score": 2}}
    assert from_log.errors["b"].extra == {"retry_after_s": 5}


def test_a_record_without_a_field_of_its_kind_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A record r1eval did not write (no ``task``) is refused in one line naming the log,
    not a traceback from deep inside the loader."""
    run = tmp_path / "run"
    shutil.copytree(RELEASE / "graded", run)
    (run / SNAPSHOT).unlink()
    broken = completion("zz")
    del broken["task"]
    with (run / LOG).open("a", encoding="utf-8") as log:
        log.write(json.dumps(broken) + "\n")
    with pytest.raises(RunFolderError, match=r"samples\.jsonl: a record has no 'task'"):
        load_run(run)
    assert main(["report", str(run), "-o", str(tmp_path / "report.html")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "samples.jsonl: a record has no 'task'" in line
    assert not (tmp_path / "report.html").exists()


def test_a_snapshot_of_the_release_format_is_read_and_written_again_as_rows(
    tmp_path: Path,
) -> None:
    """The release's snapshot (format 2: records) gives the state its log gives; the first
    process to close the folder writes it in this release's format (rows)."""
    run = tmp_path / "served"
    shutil.copytree(RELEASE / "served", run)
    assert json.loads((run / SNAPSHOT).read_text(encoding="utf-8").splitlines()[0])[
        "format"] == 2
    state = load_state(run)
    with RunFolder(run) as folder:
        assert folder.state() == state
    header = json.loads((run / SNAPSHOT).read_text(encoding="utf-8").splitlines()[0])
    assert header["format"] == 3
    assert header["fields"]["completions"] == list(LoggedCompletion._fields)
    assert load_state(run) == state
    (run / SNAPSHOT).unlink()
    assert load_state(run) == state  # and both are what the log says


def test_a_completions_usage_gives_each_sample_its_share() -> None:
    usage = logged_usage({"prompt_tokens": 10, "completion_tokens": 40, "shared_by": 4})
    assert usage.per_sample() == {"prompt": 2.5, "completion": 10}
    assert logged_usage({"completion_tokens": 6, "shared_by": 0}).per_sample() == {
        "completion": 6}
