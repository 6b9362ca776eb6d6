"""Choosing the backend of a run from its ``--model``: ``hf:PATH``, ``vllm:PATH`` or an endpoint.

``hf:`` and ``vllm:`` load a model in this process (optional extras ``r1eval[hf]`` and
``r1eval[vllm]``, imported only when used); any other model name is served by the
OpenAI-compatible endpoint at ``base_url``, or by the pool of replicas when several are given
(``r1eval.backends.replicas``). A local model ignores ``base_url`` and the key. A ``base_url`` of
``file:SHA256`` names a file of responses replayed by ``r1eval grade``
(``r1eval.backends.replay``), whose backend the replay builds itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from r1eval.backends.base import Backend
from r1eval.backends.local import LocalModelOptions, local_identity
from r1eval.backends.openai_compat import OpenAICompatBackend, endpoint_identity
from r1eval.backends.replay import is_replayed
from r1eval.backends.replicas import EndpointSpec, ReplicaPool, endpoint_specs
from r1eval.errors import UsageError

__all__ = ["LOCAL_PREFIXES", "backend_for", "endpoints_for", "identity_for", "split_model"]

LOCAL_PREFIXES = ("hf", "vllm")


def split_model(model: str) -> tuple[str | None, str]:
    """``("hf", PATH)`` for ``hf:PATH``, ``("vllm", PATH)`` for ``vllm:PATH``, else
    ``(None, model)`` (Ollama's ``deepseek-r1:7b`` is an endpoint model name)."""
    prefix, colon, rest = model.partition(":")
    if colon and prefix in LOCAL_PREFIXES:
        return prefix, rest
    return None, model


def identity_for(
    model: str, base_url: str | Sequence[str] | None, *, local: LocalModelOptions | None = None
) -> dict[str, str]:
    """The identity ``backend_for(...)`` will report, without loading or contacting anything
    (of several replicas, the first's: see ``ReplicaPool``)."""
    kind, spec = split_model(model)
    if kind is not None:
        return local_identity(kind, spec, local or LocalModelOptions())
    if is_replayed(base_url):
        return {"model": model, "base_url": str(base_url)}
    return endpoint_identity(model, endpoints_for(model, base_url)[0].url)


def backend_for(
    model: str,
    base_url: str | Sequence[str] | None,
    api_key: str | None,
    *,
    local: LocalModelOptions | None = None,
    anchor: str | None = None,
    **endpoint_options: Any,
) -> Backend:
    """The backend for ``model``; ``endpoint_options`` go to ``OpenAICompatBackend``
    (``timeout_s``, ``max_attempts``, ``max_connections``), ``local`` to an in-process model,
    ``anchor`` to a pool of replicas (the endpoint that names the run)."""
    kind, spec = split_model(model)
    if kind == "hf":
        from r1eval.backends.hf import TransformersBackend

        return TransformersBackend(spec, local)
    if kind == "vllm":
        from r1eval.backends.vllm_offline import VLLMBackend

        return VLLMBackend(spec, local)
    specs = endpoints_for(model, base_url)
    if len(specs) > 1:
        return ReplicaPool(model, specs, api_key, anchor=anchor, **endpoint_options)
    return OpenAICompatBackend(model, specs[0].url, api_key, **endpoint_options)


def endpoints_for(model: str, base_url: str | Sequence[str] | None) -> list[EndpointSpec]:
    """The endpoints ``--base-url`` names (``URL`` or ``URL@N``, one or more)."""
    if not base_url:
        raise UsageError(
            f"--base-url is needed for the endpoint model {model!r} "
            "(or load a local model with --model hf:PATH or vllm:PATH)"
        )
    return endpoint_specs(base_url)
