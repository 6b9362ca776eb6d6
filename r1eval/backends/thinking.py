"""Thinking controls: a reasoning effort (OpenAI o-series), chat-template arguments (e.g.
Qwen3's ``enable_thinking`` on vLLM/SGLang), a system prompt and a generic extra body.

They are passed through to the server as given and recorded with the sampling parameters
(``SamplingParams``): a changed control is a different run, and ``compare``/``regress`` say
when two runs, or a run and a source's protocol, used different ones.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from typing import Any

from r1eval.errors import UsageError
from r1eval.flags import flag_name
from r1eval.types import THINKING_CONTROLS

#: The flag of each control, for messages.
FLAGS = {name: flag_name(name) for name in THINKING_CONTROLS}

#: OpenAI's reasoning efforts (o-series and GPT-5 models).
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")

#: Body fields r1eval sets itself: ``--extra-body`` may not replace them.
OWN_FIELDS = ("model", "messages", "n", "stream", "stream_options", "temperature", "top_p",
              "max_tokens", "seed", "stop", "reasoning_effort", "chat_template_kwargs")


def parse_json_controls(settings: MutableMapping[str, Any], origin: Mapping[str, str]) -> None:
    """Turn ``--chat-template-kwargs``/``--extra-body`` given as JSON text (a flag, the
    environment, a config string) into objects, in place; ``UsageError`` naming where the
    value came from (``origin``: the flag, variable or config key, by setting)."""
    for name in ("chat_template_kwargs", "extra_body"):
        value, where = settings.get(name), origin.get(name, FLAGS[name])
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as error:
                raise UsageError(f"{where} is not valid JSON ({error.msg} at character "
                                 f"{error.pos}); give an object, e.g. "
                                 "'{\"enable_thinking\": true}'") from None
        if value is not None and not isinstance(value, dict):
            raise UsageError(f"{where} must be a JSON object ({{...}}), not "
                             f"{type(value).__name__} {json.dumps(value)[:60]}")
        if value is not None:
            settings[name] = value
    taken = sorted(set(settings.get("extra_body") or {}) & set(OWN_FIELDS))
    if taken:
        raise UsageError(f"{origin.get('extra_body', FLAGS['extra_body'])} sets "
                         f"{', '.join(taken)}, which r1eval sends itself: use its own flag "
                         "(--temperature, --chat-template-kwargs, ...)")


#: Controls only an HTTP endpoint understands (an in-process model takes a system prompt).
ENDPOINT_ONLY = ("reasoning_effort", "chat_template_kwargs", "extra_body")


def check_in_process(settings: Mapping[str, Any], model: str) -> None:
    """``UsageError`` for an endpoint-only control given to an in-process model."""
    given = [FLAGS[name] for name in ENDPOINT_ONLY if settings.get(name) is not None]
    if given:
        raise UsageError(f"{', '.join(given)} apply to an endpoint (--base-url), not to the "
                         f"in-process model {model}")


def check_reasoning_effort(value: str | None) -> str | None:
    if value is not None and value not in REASONING_EFFORTS:
        raise ValueError(f"{value!r} is not one of {', '.join(REASONING_EFFORTS)}")
    return value


def body_fields(sampling: Mapping[str, Any]) -> dict[str, Any]:
    """What the controls add to a chat-completions body (the system prompt is a message)."""
    fields: dict[str, Any] = {}
    if sampling.get("reasoning_effort") is not None:
        fields["reasoning_effort"] = sampling["reasoning_effort"]
    if sampling.get("chat_template_kwargs") is not None:
        fields["chat_template_kwargs"] = sampling["chat_template_kwargs"]
    fields.update(sampling.get("extra_body") or {})
    return fields


def control_differences(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[str]:
    """``--flag X vs Y`` for each control set differently in two records (run manifests'
    sampling, or a source's protocol); a control not set is ``none``."""
    return [
        f"{FLAGS[name]} {_shown(ours.get(name))} vs {_shown(theirs.get(name))}"
        for name in THINKING_CONTROLS
        if ours.get(name) != theirs.get(name)
    ]


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 60 else value[:57] + "...")
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
