"""What a server says about itself, read at preflight into run.json (``server``): engine,
version, quantization, context length. Scores that move between runs are most often a
server served differently (another vLLM, a quantized build, a shorter context), so
``regress`` and ``compare`` say when two runs' setups differ.

Every reader here takes a parsed JSON body (or headers) and returns only what it
recognises: a server without the route, or with another shape, is simply unknown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

#: What ``regress`` and ``compare`` compare, with the words they use.
COMPARED = {"engine": "engine", "version": "server version", "quantization": "quantization",
            "context_length": "context length", "dtype": "dtype"}

#: Response headers worth keeping (what serves the API; never accounts or keys).
HEADERS = ("server", "openai-version", "via")

#: vLLM: the routes at the server's root, beside ``/v1``.
VLLM_VERSION = "/version"
#: SGLang's server arguments and state (the capacity is read from the same answer).
SGLANG_INFO = "/get_server_info"
#: Ollama's model details (POST with the model name) and version.
OLLAMA_SHOW = "/api/show"
OLLAMA_VERSION = "/api/version"


def unknown() -> dict[str, Any]:
    """The record of a server that said nothing."""
    return {name: None for name in COMPARED}


def from_models_listing(listing: object, model: str) -> dict[str, Any]:
    """vLLM's ``/v1/models`` entry of ``model``: ``max_model_len`` and ``root`` (the weights
    it serves); vLLM says ``owned_by: vllm``."""
    entries = listing.get("data") if isinstance(listing, dict) else None
    entry = next((e for e in entries or () if isinstance(e, dict) and e.get("id") == model), None)
    if entry is None:
        return {}
    found: dict[str, Any] = {}
    if count(entry.get("max_model_len")) is not None:
        found["context_length"] = entry["max_model_len"]
    if isinstance(entry.get("root"), str):
        found["root"] = entry["root"]
    if entry.get("owned_by") == "vllm":
        found["engine"] = "vllm"
    return found


def from_vllm_version(body: object) -> dict[str, Any]:
    """vLLM's ``GET /version``: ``{"version": "0.8.5"}``."""
    if isinstance(body, dict) and isinstance(body.get("version"), str) and len(body) == 1:
        return {"engine": "vllm", "version": body["version"]}
    return {}


def from_sglang_info(info: object) -> dict[str, Any]:
    """SGLang's ``GET /get_server_info``: its server arguments and ``version``."""
    if not isinstance(info, dict) or not isinstance(info.get("model_path"), str):
        return {}
    found: dict[str, Any] = {"engine": "sglang", "root": info["model_path"]}
    for ours, theirs in (("version", "version"), ("quantization", "quantization"),
                         ("dtype", "dtype"), ("kv_cache_dtype", "kv_cache_dtype")):
        if isinstance(info.get(theirs), str):
            found[ours] = info[theirs]
    if count(info.get("context_length")) is not None:
        found["context_length"] = info["context_length"]
    for ours, theirs in (("tensor_parallel", "tp_size"), ("data_parallel", "dp_size")):
        if count(info.get(theirs)) is not None:
            found[ours] = info[theirs]
    return found


def from_ollama_show(show: object) -> dict[str, Any]:
    """Ollama's ``POST /api/show``: ``details.quantization_level``, and the context length:
    the model's ``num_ctx`` parameter when set (what it runs with), else the trained length
    in ``model_info`` (``<architecture>.context_length``)."""
    if not isinstance(show, dict) or not isinstance(show.get("details"), dict):
        return {}
    details = show["details"]
    found: dict[str, Any] = {"engine": "ollama"}
    if isinstance(details.get("quantization_level"), str):
        found["quantization"] = details["quantization_level"]
    if isinstance(details.get("parameter_size"), str):
        found["parameter_size"] = details["parameter_size"]
    info = show.get("model_info")
    info = info if isinstance(info, dict) else {}
    trained = count(info.get(f"{info.get('general.architecture')}.context_length"))
    parameters = show.get("parameters")
    parameters = parameters if isinstance(parameters, str) else ""
    num_ctx = re.search(r"^\s*num_ctx\s+(\d+)\s*$", parameters, re.MULTILINE)
    if num_ctx is not None:
        found["context_length"] = int(num_ctx.group(1))
    elif trained is not None:
        found["context_length"] = trained
    return found


def from_ollama_version(body: object) -> dict[str, Any]:
    """Ollama's ``GET /api/version``: ``{"version": "0.6.2"}``."""
    if isinstance(body, dict) and isinstance(body.get("version"), str):
        return {"version": body["version"]}
    return {}


def from_headers(headers: Mapping[str, str]) -> dict[str, Any]:
    kept = {name: headers[name] for name in HEADERS if name in headers}
    return {"headers": kept} if kept else {}


def combine(found: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One record from what each route said (``(route, fields)``, in order; the first to
    state a field wins), with the routes that answered under ``answered``."""
    record = unknown()
    answered = []
    for route, fields in found:
        if not fields:
            continue
        answered.append(route)
        for name, value in fields.items():
            if record.get(name) is None:
                record[name] = value
    return {**record, "answered": answered}


def describe(record: Mapping[str, Any]) -> str:
    """One line: ``vllm 0.8.5, context length 32768`` or ``unknown (no route answered)``."""
    engine = " ".join(str(record[n]) for n in ("engine", "version") if record.get(n))
    parts = [engine] if engine else []
    parts += [f"{words} {record[name]}" for name, words in COMPARED.items()
              if name not in ("engine", "version") and record.get(name) is not None]
    return ", ".join(parts) if parts else "unknown (it does not say how it is set up)"


def server_differences(base: Mapping[str, Any] | None, other: Mapping[str, Any] | None,
                       names: tuple[str, str] = ("the base run", "the candidate")) -> list[str]:
    """``quantization: Q4_K_M for the base run, Q8_0 for the candidate`` for each compared
    field both runs' ``server`` records state and that differs; a field one of them does not
    know is not a difference."""
    if not base or not other:
        return []
    return [
        f"served differently: {words} {base[name]} for {names[0]}, {other[name]} for {names[1]}"
        for name, words in COMPARED.items()
        if base.get(name) is not None and other.get(name) is not None
        and base[name] != other[name]
    ]


def count(value: object) -> int | None:
    """An integer JSON value (not a boolean), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
