"""One ``r1eval run``: validate everything, then open the run folder, run, score."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1eval import __version__
from r1eval.backends.base import Backend, Capacity, Described, Incremental, Preflight
from r1eval.backends.factory import backend_for, endpoints_for, identity_for, split_model
from r1eval.backends.openai_compat import endpoint_identity
from r1eval.backends.replicas import ReplicaPool, split_slots
from r1eval.backends.server_setup import describe
from r1eval.backends.thinking import check_in_process
from r1eval.backends.vllm_ranks import check_data_parallel
from r1eval.errors import RunFolderError, UsageError
from r1eval.grading.pool import GraderPool
from r1eval.run.budget import Budget
from r1eval.run.config import DEFAULT_SEQUENCES, RunConfig
from r1eval.run.plan import build_plan
from r1eval.run.progress import Progress
from r1eval.run.protocol import leaf_differences
from r1eval.run.provenance import provenance
from r1eval.run.runner import Order, Runner
from r1eval.scoring.prices import Price, price_for, price_record
from r1eval.scoring.scores import add_costs, score_task, tally
from r1eval.store.contracts import Manifest, Scores, Serving
from r1eval.store.folder import RunFolder, read_manifest
from r1eval.task.data import LoadedTask, load_task
from r1eval.task.registry import resolve
from r1eval.types import WorkItem

DEFAULT_RESULTS = Path("results")


@dataclass(frozen=True)
class PreparedRun:
    config: RunConfig
    loaded: list[LoadedTask]
    items: list[WorkItem]
    run_dir: Path
    api_key: str | None
    manifest: Manifest
    price: Price | None = None


def api_key_from(config: RunConfig, environ: Mapping[str, str], explicit: bool) -> str | None:
    """The API key named by --api-key-env; a local server needs none.

    When the user named the variable explicitly, it must be set. Whitespace around it (the
    line end of a key read from a file) is dropped; the key is never shown.
    """
    key = (environ.get(config.api_key_env) or "").strip() or None
    if key is not None and not key.isprintable():  # a line break or control character inside
        raise UsageError(f"the API key in {config.api_key_env} (--api-key-env) holds a line "
                         "break or another control character; set it to the key alone")
    if key is None and explicit:
        raise UsageError(f"environment variable {config.api_key_env} (--api-key-env) is not set")
    return key


#: What defines a run, for its default folder: the fields of each task's manifest entry.
_DEFINING_TASK_FIELDS = ("version", "prompt_hash", "questions", "samples_per_question")


def default_run_dir(model: str, manifest: Manifest, limit: int | None) -> Path:
    """``results/<model>-<tasks>-<hash>``: named by what defines the run (model, endpoint,
    sampling, tasks with their version, prompt, question count and K, ``--limit``), never by
    the clock, so the same command finds its own folder again and resumes, and a changed
    setting gets a folder of its own."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_") or "model"
    tasks = manifest.tasks
    definition = {
        "identity": manifest.identity.record(), "limit": limit,
        "tasks": {name: {f: getattr(entry, f) for f in _DEFINING_TASK_FIELDS}
                  for name, entry in tasks.items()},
    }
    digest = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:8]
    return DEFAULT_RESULTS / f"{slug}-{'+'.join(sorted(tasks))}-{digest}"


def prepare(
    config: RunConfig,
    environ: Mapping[str, str],
    key_explicit: bool,
    endpoint: dict[str, str] | None = None,
) -> PreparedRun:
    """Everything that can fail on bad input, before any file is written or request sent.

    ``endpoint`` replaces the identity derived from the model and base URL: ``r1eval estimate``
    plans without an endpoint and keys the planned requests with a placeholder.
    """
    tasks = resolve(config.tasks, config.task_dir)
    if split_model(config.model)[0] is not None:
        check_in_process(config.model_dump(), config.model)
    check_data_parallel(split_model(config.model)[0], config.data_parallel_size,
                        config.tensor_parallel_size, os.environ)
    api_key = api_key_from(config, environ, key_explicit)
    if endpoint is None and split_model(config.model)[0] is None:
        # each URL well formed, none twice (a file of replayed responses names itself)
        identity_for(config.model, config.base_url)
    price = price_for(config.model, config.prices, config.price_in, config.price_out)
    if config.max_cost is not None and price is None:
        raise UsageError(f"--max-cost needs the price of {config.model!r}: give --price-in and "
                         "--price-out (USD per 1M tokens) or --prices FILE")
    loaded = [load_task(task, config.data_dir, config.limit) for task in tasks]
    sampling = config.sampling()
    per_task = {t.task.name: config.samples_for(t.task.r1_samples) for t in loaded}
    task_entries = {
        t.task.name: {
            "version": t.task.version,
            "prompt_hash": t.task.prompt_hash,
            "grader": f"{t.task.grader.__module__}.{t.task.grader.__qualname__}",
            "source": t.source,
            "questions": len(t.samples),
            "samples_per_question": per_task[t.task.name],
        }
        for t in loaded
    }

    def identity(endpoint: dict[str, str]) -> dict[str, Any]:
        # JSON round trip: compared with the identity read back from run.json on resume
        found: dict[str, Any] = json.loads(
            json.dumps({"endpoint": endpoint, "sampling": sampling.record()}))
        return found

    endpoint = endpoint or anchored_endpoint(
        config, lambda e: config.run_dir or default_run_dir(
            config.model, Manifest.model_validate({"identity": identity(e), "tasks": task_entries}),
            config.limit))
    items = build_plan(loaded, per_task, endpoint, sampling)
    manifest = Manifest.model_validate({
        "r1eval_version": __version__,
        "identity": identity(endpoint),
        "config": config.model_dump(mode="json", exclude={"run_dir"}),
        "tasks": task_entries,
        "prices": price_record(price),
        "provenance": provenance(),
    })
    run_dir = config.run_dir or default_run_dir(config.model, manifest, config.limit)
    return PreparedRun(config, loaded, items, run_dir, api_key, manifest, price)


def anchored_endpoint(config: RunConfig, folder_of: Callable[[dict[str, str]], Path]
                      ) -> dict[str, str]:
    """The endpoint identity of the run (``identity_for``); of several replicas, the one
    whose run folder (``folder_of`` it) already began with it, so that a replica added to a
    running evaluation resumes it (same folder, same cache keys), else the first given."""
    first = identity_for(config.model, config.base_url, local=config.local_options())
    if not isinstance(config.base_url, list):
        return first
    for spec in endpoints_for(config.model, config.base_url):
        candidate = endpoint_identity(config.model, spec.url)
        recorded = read_manifest(folder_of(candidate))
        if recorded is not None and recorded.identity.endpoint.record() == candidate:
            return candidate
    return first


def _merge_manifest(
    old: Manifest | None,
    new: Manifest,
    where: Path,
    legacy_prompt_hashes: Mapping[str, str] | None = None,
) -> Manifest:
    """Refuse to mix runs that would answer differently; keep the history of task entries.

    A folder begun before prompt hashes covered the rendered prompt recorded the hash of the
    task's template (``legacy_prompt_hashes``, by task): it resumes when that still matches,
    the guarantee such runs had, and its entry then takes the rendered prompt's hash.
    """
    if old is None:
        return new.model_copy(update={"created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    if old.identity.record() != new.identity.record():
        differences = leaf_differences(old.identity.record(), new.identity.record())
        raise RunFolderError(
            f"{where} holds a run of another model, endpoint or sampling setup "
            f"({differences}); use a new --run-dir"
        )
    for name, entry in new.tasks.items():
        before = old.tasks.get(name)
        for field in ("version", "prompt_hash"):
            if before is not None and getattr(before, field) != getattr(entry, field):
                legacy = (legacy_prompt_hashes or {}).get(name)
                if field == "prompt_hash" and legacy is not None and before.prompt_hash == legacy:
                    continue
                raise RunFolderError(
                    f"{where}: task {name} changed {field} since this run began; "
                    "use a new --run-dir"
                )
    merged = {**old.record(), **new.record(), "created": old.created}
    merged["tasks"] = {**old.record()["tasks"], **new.record()["tasks"]}
    return Manifest.model_validate(merged)


def execute(
    prepared: PreparedRun,
    on_open: Callable[[Path], None] | None = None,
    backend: Backend | None = None,
    order: Order | None = None,
) -> Scores:
    """Check the endpoint, run what is missing, and return the scores (also in scores.json).

    The endpoint is checked (``Preflight``) before the run folder is created or touched, so
    an endpoint that cannot serve the run leaves nothing behind. ``on_open`` is told the run
    folder once it is locked and its manifest accepted; ``backend`` replaces the
    OpenAI-compatible endpoint built from the configuration.
    """
    return asyncio.run(
        _execute(prepared, on_open, backend or _endpoint_backend(prepared), order)
    )


def _endpoint_backend(prepared: PreparedRun) -> Backend:
    """The backend ``--model`` names: an endpoint, or an in-process ``hf:``/``vllm:`` model."""
    config = prepared.config
    return backend_for(
        config.model,
        config.base_url,
        prepared.api_key,
        local=config.local_options(),
        anchor=prepared.manifest.identity.endpoint.base_url,
        timeout_s=config.timeout,
        max_attempts=config.max_attempts,
        max_connections=config.concurrency or MAX_CONNECTIONS,
        max_response_bytes=config.max_response_mib << 20,
        idle_timeout_s=config.idle_timeout,
        stream=config.stream,
    )


async def _execute(
    prepared: PreparedRun,
    on_open: Callable[[Path], None] | None,
    backend: Backend,
    order: Order | None,
) -> Scores:
    try:
        if isinstance(backend, Preflight):
            await backend.preflight()
        server = await backend.server_setup() if isinstance(backend, Described) else None
        secrets = [prepared.api_key] if prepared.api_key else []
        with RunFolder(prepared.run_dir, secrets) as folder:
            manifest = _merge_manifest(
                folder.read_manifest(), prepared.manifest, folder.path,
                {t.task.name: t.task.legacy_prompt_hash for t in prepared.loaded},
            )
            if server is not None:  # this session's server, as it said
                manifest = manifest.model_copy(update={"server": server})
            folder.write_manifest(manifest)
            if on_open is not None:
                on_open(folder.path)
            try:
                await _run(prepared, folder, backend, order)
            finally:
                scores = compute_scores(prepared, folder)
                folder.write_scores(scores)
    finally:
        await backend.aclose()
    return scores


#: Connections the HTTP client may open: config's ceiling on samples in flight.
MAX_CONNECTIONS = 4096


async def sequence_limit(config: RunConfig, backend: Backend) -> tuple[int, str]:
    """Samples to keep in flight, and where the number comes from: ``--concurrency``, else
    the server's own limit where it says (``Capacity``), else ``DEFAULT_SEQUENCES`` (per
    engine, with ``--data-parallel-size``)."""
    if isinstance(backend, ReplicaPool):
        total = await backend.resolve_slots(config.concurrency, DEFAULT_SEQUENCES)
        return total, f"the sum over {len(backend.endpoints())} endpoints (--base-url)"
    if config.concurrency is not None:
        return config.concurrency, "--concurrency"
    if isinstance(config.base_url, str) and (given := split_slots(config.base_url)[1]):
        return given, "--base-url URL@N"
    if isinstance(backend, Capacity) and (found := await backend.capacity()) is not None:
        return min(found, MAX_CONNECTIONS), "the server's max_running_requests"
    if config.data_parallel_size > 1:  # vllm: engines, each taking its own batch
        return (DEFAULT_SEQUENCES * config.data_parallel_size,
                f"the default {DEFAULT_SEQUENCES} per engine x --data-parallel-size")
    return (DEFAULT_SEQUENCES,
            "the default: the server does not say its capacity; --concurrency sets it")


async def _run(
    prepared: PreparedRun, folder: RunFolder, backend: Backend, order: Order | None
) -> None:
    config = prepared.config
    sequences, basis = await sequence_limit(config, backend)
    if (manifest := folder.read_manifest()) is not None and manifest.server is not None:
        print(f"r1eval: server: {describe(manifest.server)}", file=sys.stderr)
    print(f"r1eval: up to {sequences} samples in flight ({basis})", file=sys.stderr)
    _record_serving(folder, sequences, basis, backend)
    with GraderPool(workers=config.grader_workers, timeout_s=config.grade_timeout) as pool:
        runner = Runner(
            folder=folder,
            backend=backend,
            pool=pool,
            graders={t.task.name: t.task.grader for t in prepared.loaded},
            sampling=config.sampling(),
            progress=Progress(price=prepared.price),
            concurrency=sequences,
            budget=_budget(prepared),
            order=order,
            formats=config.trace_formats(),
        )
        if isinstance(backend, ReplicaPool):
            backend.follow_queue(lambda: runner.unsent)
        try:
            await runner.run(prepared.items)
        finally:
            _record_serving(folder, sequences, basis, backend)


def _record_serving(folder: RunFolder, sequences: int, basis: str, backend: Backend) -> None:
    """What the last session of the run used, in its manifest (``serving``): written before
    the first request and again only if the run learned something (the server ignores ``n``,
    or does not stream)."""
    serving: dict[str, Any] = {"samples_in_flight": sequences, "basis": basis}
    if isinstance(backend, Incremental):
        serving["server_ignores_n"] = backend.ignores_n
    if isinstance(backend, ReplicaPool):
        serving["endpoints"] = backend.endpoints()
    streams = getattr(backend, "streams", None)
    if isinstance(streams, bool):
        serving["streamed"] = streams
    manifest = folder.read_manifest()
    if manifest is not None and (manifest.serving is None
                                 or manifest.serving.record() != serving):
        folder.write_manifest(manifest.model_copy(update={"serving": Serving(**serving)}))


def _budget(prepared: PreparedRun) -> Budget | None:
    config = prepared.config
    if config.max_cost is None and config.max_tokens_total is None:
        return None
    return Budget(max_cost=config.max_cost, max_tokens=config.max_tokens_total,
                  price=prepared.price)


def compute_scores(prepared: PreparedRun, folder: RunFolder) -> Scores:
    tallies = tally(prepared.items, folder.state())
    tasks = {
        t.task.name: score_task(tallies[t.task.name], t.task.breakdown)
        for t in prepared.loaded
        if t.task.name in tallies
    }
    scores = {
        "run_dir": str(prepared.run_dir),
        "model": prepared.config.model,
        "complete": all(task["complete"] for task in tasks.values()),
        "tasks": tasks,
    }
    return Scores.model_validate(add_costs(scores, prepared.price))
