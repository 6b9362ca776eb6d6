"""Re-grade a run's stored responses with the tasks' current graders, without generating again.

Each response goes through the grading path of a live run (``grade_completion``: reasoning
split off, then the task's grader in a ``GraderPool`` worker). The new grades are appended to
the run's log, which is append-only: the latest grade of a response wins (``LogState``) and the
old ones stay in the log for the diff. ``scores.json`` is then re-scored (``scoring.tally`` /
``score_task``) for every task whose grades changed; a task whose grades are all unchanged keeps
its scores exactly (re-scoring it would only reshuffle the bootstrap, which depends on the
order of the questions). ``run.json`` records each regrade: when, which graders, which r1eval.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1eval import __version__
from r1eval.errors import RunFolderError
from r1eval.grading.final_answer import TraceFormat, grade_completion, run_trace_formats
from r1eval.grading.pool import GraderPool
from r1eval.run.progress import Progress, TaskCounts
from r1eval.run.provenance import git_revision
from r1eval.scoring.prices import price_from_record
from r1eval.scoring.scores import add_costs, score_task, tally
from r1eval.store.contracts import Manifest, Scores, TaskScore
from r1eval.store.folder import RunFolder, is_run_folder, read_scores
from r1eval.store.log import LogState, read_responses
from r1eval.store.logged import LoggedCompletion, LoggedError, LoggedGrade
from r1eval.store.outcomes import SampleStatus, sample_status
from r1eval.store.records import grade_record
from r1eval.task.definition import Task
from r1eval.task.registry import resolve
from r1eval.types import Completion, Grade, Grader, Prompt, Sample, WorkItem

__all__ = ["RegradeResult", "Regraded", "items_from_log", "regrade_run"]

# What a score depends on: a grade that differs only in its explanation changes nothing.
_SCORED_FIELDS = ("correct", "extracted", "canonical", "method", "failure")


@dataclass(frozen=True)
class Regraded:
    """One response, its previous grade record (None if it was never graded) and its new grade."""

    task: str
    sample_id: str
    repeat: int
    key: str
    gold: str
    before: LoggedGrade | None
    after: Grade
    completion: LoggedCompletion

    @property
    def status_before(self) -> SampleStatus:
        return sample_status(self.before, self.completion)

    @property
    def status_after(self) -> SampleStatus:
        return sample_status(self.after, self.completion)

    @property
    def scored_differently(self) -> bool:
        if self.before is None:
            return True
        return any(getattr(self.before, name) != getattr(self.after, name)
                   for name in _SCORED_FIELDS)


@dataclass(frozen=True)
class RegradeResult:
    path: Path
    regraded: list[Regraded]
    pass1_before: dict[str, float | None]
    scores: Scores
    graders: dict[str, str]
    written: bool

    def changed(self, task: str | None = None) -> list[Regraded]:
        """Responses whose status (right, wrong, no answer, truncated) changed."""
        return [r for r in self.regraded if (task is None or r.task == task)
                and r.status_before != r.status_after]


def regrade_run(
    path: Path,
    task_dir: Path | None = None,
    workers: int | None = None,
    timeout_s: float = 30.0,
    dry_run: bool = False,
) -> RegradeResult:
    """Re-grade every stored response of the run at ``path`` (see the module docstring);
    ``dry_run`` computes everything and writes nothing."""
    if not is_run_folder(path):
        raise RunFolderError(f"{path} is not a run folder (no run.json)")
    with RunFolder(path) as folder:
        manifest = folder.read_manifest()
        assert manifest is not None  # a run folder: its run.json was there
        state = folder.state()
        if dry_run:  # rescored on a copy: the folder's state must stay what its log says
            state = dataclasses.replace(state, grades=dict(state.grades))
        tasks = _tasks(state, manifest, task_dir)
        responses = read_responses(path, set(state.completions))
        grades = _grade_all(state, responses, {n: t.grader for n, t in tasks.items()},
                            workers, timeout_s,
                            _run_trace_formats(manifest.config.reasoning_delimiters))
        regraded = [_regraded(state, key, grade) for key, grade in grades.items()]
        old_scores = read_scores(path)
        for item, new in zip(items_from_log(state, list(grades)), regraded, strict=True):
            record = {**grade_record(item, new.after), "regraded": True}
            if dry_run:
                state.add(record)
            else:
                folder.append(record)  # the folder's state follows its log
        scores = _rescore(state, tasks, regraded, old_scores, path, manifest)
        graders = {name: _grader_name(t.grader) for name, t in tasks.items()}
        if not dry_run:
            folder.write_scores(scores)
            folder.write_manifest(_record_regrade(manifest, graders, regraded))
    pass1 = {name: task.pass1 for name, task in old_scores.tasks.items()}
    return RegradeResult(path, regraded, pass1, scores, graders, written=not dry_run)


def _tasks(state: LogState, manifest: Manifest, task_dir: Path | None) -> dict[str, Task]:
    """The current definition of every task with responses in the log."""
    names = sorted({completion.task for completion in state.completions.values()})
    if task_dir is None:
        configured = manifest.config.task_dir
        task_dir = Path(configured) if configured and Path(configured).is_dir() else None
    return {task.name: task for task in resolve(names, task_dir)}


def _grader_name(grader: Grader) -> str:
    return f"{grader.__module__}.{grader.__qualname__}"


def _run_trace_formats(delimiters: Sequence[str] | None) -> tuple[TraceFormat, ...]:
    try:
        return run_trace_formats(delimiters)
    except ValueError as error:
        raise RunFolderError(f"run.json: {error}") from None


def _grade_all(
    state: LogState, responses: Mapping[str, Completion], graders: Mapping[str, Grader],
    workers: int | None, timeout_s: float, formats: tuple[TraceFormat, ...],
) -> dict[str, Grade]:
    """Grade every response as the runner does, in worker processes, keys in log order."""
    print(f"regrading {len(responses)} responses", file=sys.stderr)
    logged = state.completions
    progress = Progress()
    totals: dict[str, TaskCounts] = {}
    for key in responses:
        totals.setdefault(logged[key].task, TaskCounts()).total += 1
    progress.start(totals)
    with GraderPool(workers=workers, timeout_s=timeout_s) as pool, \
            ThreadPoolExecutor(max_workers=max(1, pool.workers)) as executor:
        futures: dict[Future[Grade], str] = {
            executor.submit(grade_completion, response, _gold(logged[key]),
                            functools.partial(pool.grade, graders[logged[key].task]),
                            formats): key
            for key, response in responses.items()
        }
        grades = {}
        for future in as_completed(futures):
            grades[futures[future]] = future.result()
            progress.graded(grades[futures[future]], logged[futures[future]].task)
    progress.finish()
    return {key: grades[key] for key in responses}


def _regraded(state: LogState, key: str, grade: Grade) -> Regraded:
    completion = state.completions[key]
    return Regraded(
        task=completion.task, sample_id=str(completion.sample_id),
        repeat=int(completion.repeat), key=key, gold=_gold(completion),
        before=state.grades.get(key), after=grade, completion=completion,
    )


def _gold(completion: LoggedCompletion) -> str:
    return "" if completion.gold is None else str(completion.gold)


def items_from_log(state: LogState, keys: Iterable[str] | None = None) -> list[WorkItem]:
    """Work items rebuilt from the log's completion and error records (all, or ``keys``),
    enough for grade records and ``scoring.tally``: the prompt text is never logged."""
    records: dict[str, LoggedCompletion | LoggedError] = {**state.errors, **state.completions}
    wanted = list(records) if keys is None else list(keys)
    items = []
    for key in wanted:
        record = records[key]
        logged = record if isinstance(record, LoggedCompletion) else None
        gold = "" if logged is None else _gold(logged)
        sample = Sample(id=str(record.sample_id), input="", target=gold,
                        metadata=record.sample_metadata)
        prompt = Prompt(messages=(), gold=gold,
                        metadata={} if logged is None else logged.prompt_metadata)
        items.append(WorkItem(record.task, sample, int(record.repeat), prompt, key))
    return items


def _rescore(
    state: LogState, tasks: Mapping[str, Task], regraded: list[Regraded],
    old: Scores, path: Path, manifest: Manifest,
) -> Scores:
    """scores.json after the regrade: changed tasks re-scored, the others as they were."""
    changed = {r.task for r in regraded if r.scored_differently}
    tallies = tally(items_from_log(state), state)
    scored: dict[str, TaskScore] = {}
    for name in sorted(set(old.tasks) | set(tallies)):
        if name in old.tasks and name not in changed:
            scored[name] = old.tasks[name]
        elif name in tallies:
            task = tasks.get(name)
            fresh = score_task(tallies[name], task.breakdown if task else ())
            scored[name] = _keep_plan(fresh, old.tasks.get(name))
    scores = {"run_dir": str(path), "model": manifest.model, **old.record(),
              "tasks": {name: score.record() for name, score in scored.items()},
              "complete": all(score.complete for score in scored.values())}
    return Scores.model_validate(add_costs(scores, price_from_record(old.prices)))


def _keep_plan(fresh: dict[str, Any], old: TaskScore | None) -> TaskScore:
    """Questions planned but never sent are not in the log: keep the counts of the run."""
    if old is None:
        return TaskScore.model_validate(fresh)
    planned = max(fresh["n_questions_planned"], old.n_questions_planned or 0)
    not_attempted = old.n_not_attempted
    return TaskScore.model_validate(
        {**fresh, "n_questions_planned": planned, "n_not_attempted": not_attempted,
         "complete": fresh["n_errors"] == 0 and not_attempted == 0})


def _record_regrade(
    manifest: Manifest, graders: dict[str, str], regraded: list[Regraded]
) -> Manifest:
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "r1eval_version": __version__,
        "git": git_revision(),
        "graders": graders,
        "responses": len(regraded),
        "verdicts_changed": sum(r.status_before != r.status_after for r in regraded),
    }
    tasks = {name: task.model_copy(update={"grader": graders.get(name, task.grader)})
             for name, task in manifest.tasks.items()}
    return manifest.model_copy(update={"tasks": tasks, "regrades": [*manifest.regrades, entry]})
