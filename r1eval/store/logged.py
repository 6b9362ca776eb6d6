"""The sample log's records as the readers hold them: slim, typed, read-only views
(``LoggedCompletion``, ``LoggedGrade``, ``LoggedError``), each built from a parsed record by
the one function of its kind that fills in what an older record left out.

The models of ``r1eval.store.contracts`` stay the schema and the validator (of what is
written, and of untrusted input); validating the 200,000 records of a 100,000-sample run at
every reopen would cost seconds, so the log's state holds these views instead. A test pins
every field of a view to its model's field of the same name (its default and its type), so
the two cannot drift. The views are named tuples: built from a snapshot row without a call
per field, a third of the memory of the dict they replace, immutable. A completion is kept
without its text and reasoning (``BULKY_FIELDS``: read them with ``read_responses``) and a
grade without what its completion already says (``ITEM_FIELDS``); a field a later release
writes is kept in ``extra``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple

from r1eval.types import Completion, Usage

__all__ = [
    "BULKY_FIELDS",
    "ITEM_FIELDS",
    "TOKEN_KINDS",
    "LoggedCompletion",
    "LoggedError",
    "LoggedGrade",
    "LoggedRecord",
    "LoggedUsage",
    "TokenKind",
    "completion_from_record",
    "kind_and_key",
    "logged",
    "logged_completion",
    "logged_error",
    "logged_grade",
    "logged_usage",
    "sample_tokens",
]

#: What a completion's view leaves out: its text (kept in the log only).
BULKY_FIELDS = ("text", "reasoning")
#: What a grade's view leaves out: what its completion already says.
ITEM_FIELDS = ("task", "sample_id", "repeat", "sample_metadata", "time")

TokenKind = Literal["prompt", "completion", "reasoning"]
TOKEN_KINDS: tuple[TokenKind, ...] = ("prompt", "completion", "reasoning")


class LoggedUsage(NamedTuple):
    """A completion's token counts (``contracts.Usage``)."""

    prompt_tokens: int | None
    completion_tokens: int | None
    reasoning_tokens: int | None
    shared_by: int
    estimated: bool
    extra: dict[str, Any] | None

    def per_sample(self) -> dict[str, float]:
        """The tokens of one sample, of each kind (``TOKEN_KINDS``) that has a count: its share
        when one response carried several choices (``shared_by``)."""
        share = self.shared_by or 1
        counts: dict[str, float] = {}
        if self.prompt_tokens is not None:
            counts["prompt"] = self.prompt_tokens / share
        if self.completion_tokens is not None:
            counts["completion"] = self.completion_tokens / share
        if self.reasoning_tokens is not None:
            counts["reasoning"] = self.reasoning_tokens / share
        return counts

    def as_usage(self) -> Usage:
        return Usage(self.prompt_tokens, self.completion_tokens, self.reasoning_tokens,
                     self.shared_by, self.estimated)


class LoggedCompletion(NamedTuple):
    """A response (``contracts.CompletionRecord``) without its text and reasoning."""

    key: str
    task: str
    sample_id: str
    repeat: int
    sample_metadata: dict[str, Any]
    time: float | None
    finish_reason: str | None
    usage: LoggedUsage
    latency_s: float | None
    model: str | None
    first_token_s: float | None
    endpoint: str | None
    gold: str | None
    prompt_metadata: dict[str, Any]
    extra: dict[str, Any] | None

    @property
    def option_order(self) -> list[int] | None:
        """The order its multiple-choice options were shown in (None: not shuffled)."""
        order: list[int] | None = self.prompt_metadata.get("option_order")
        return order

    def completion(self, text: str, reasoning: str | None) -> Completion:
        """The response as a backend gave it, with its ``text`` and ``reasoning``."""
        return Completion(text, reasoning, self.finish_reason, self.usage.as_usage(),
                          self.latency_s, self.model, self.first_token_s, self.endpoint)


class LoggedGrade(NamedTuple):
    """How a completion was judged (``contracts.GradeRecord``), without what the completion
    says of its request."""

    key: str
    correct: bool
    extracted: str | None
    canonical: str | None
    method: str | None
    failure: str | None
    explanation: str
    regraded: bool
    extra: dict[str, Any] | None


class LoggedError(NamedTuple):
    """A request that failed for good (``contracts.ErrorRecord``)."""

    key: str
    task: str
    sample_id: str
    repeat: int
    sample_metadata: dict[str, Any]
    time: float | None
    message: str
    transient: bool
    status: int | None
    extra: dict[str, Any] | None


LoggedRecord = LoggedCompletion | LoggedGrade | LoggedError


def _known(fields: tuple[str, ...], *kept_out: str) -> frozenset[str]:
    """The record fields a view holds or leaves out on purpose: any other (a record field
    named ``extra`` too) goes to ``extra``."""
    return frozenset(fields) - {"extra"} | set(kept_out)


_USAGE_FIELDS = _known(LoggedUsage._fields)
_COMPLETION_FIELDS = _known(LoggedCompletion._fields, "type", *BULKY_FIELDS)
_GRADE_FIELDS = _known(LoggedGrade._fields, "type", *ITEM_FIELDS)
_ERROR_FIELDS = _known(LoggedError._fields, "type")


def _extra(record: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any] | None:
    """The fields of ``record`` its view does not know (a later release's), or None."""
    if record.keys() <= known:
        return None
    return {name: value for name, value in record.items() if name not in known}


# The one place each kind's missing fields get their defaults: those of the models
# (``tests/test_logged.py`` checks them). The fields every record has ever had are required:
# a record without them is not of its kind (KeyError).


def logged_usage(usage: Mapping[str, Any]) -> LoggedUsage:
    get = usage.get
    return LoggedUsage(get("prompt_tokens"), get("completion_tokens"), get("reasoning_tokens"),
                       get("shared_by", 1), get("estimated", False),
                       _extra(usage, _USAGE_FIELDS))


def logged_completion(record: Mapping[str, Any]) -> LoggedCompletion:
    get = record.get
    return LoggedCompletion(
        record["key"], record["task"], record["sample_id"], record["repeat"],
        get("sample_metadata") or {}, get("time"), get("finish_reason"),
        logged_usage(get("usage") or {}), get("latency_s"), get("model"),
        get("first_token_s"), get("endpoint"), get("gold"), get("prompt_metadata") or {},
        _extra(record, _COMPLETION_FIELDS),
    )


def logged_grade(record: Mapping[str, Any]) -> LoggedGrade:
    get = record.get
    return LoggedGrade(record["key"], record["correct"], get("extracted"), get("canonical"),
                       get("method"), get("failure"), get("explanation", ""),
                       get("regraded", False), _extra(record, _GRADE_FIELDS))


def logged_error(record: Mapping[str, Any]) -> LoggedError:
    get = record.get
    return LoggedError(
        record["key"], record["task"], record["sample_id"], record["repeat"],
        get("sample_metadata") or {}, get("time"), record["message"], get("transient", False),
        get("status"), _extra(record, _ERROR_FIELDS),
    )


def kind_and_key(record: Mapping[str, Any]) -> tuple[object, object]:
    """What a parsed log line says it is (``type``) and of which request (``key``)."""
    return record.get("type"), record.get("key")


_BUILDERS: dict[str, Callable[[Mapping[str, Any]], LoggedRecord]] = {
    "completion": logged_completion, "grade": logged_grade, "error": logged_error}


def logged(record: Mapping[str, Any]) -> LoggedRecord | None:
    """The view of a parsed log record; None for a record of no kind r1eval reads (or of no
    request key)."""
    kind, key = kind_and_key(record)
    build = _BUILDERS.get(kind) if isinstance(kind, str) else None
    if build is None or not isinstance(key, str):
        return None
    return build(record)


def completion_from_record(record: Mapping[str, Any]) -> Completion:
    """A full completion record of the log (with its text) as the backend's ``Completion``."""
    return logged_completion(record).completion(record["text"], record.get("reasoning"))


def sample_tokens(usage: Mapping[str, Any], name: str) -> float | None:
    """A logged usage's ``name`` tokens for one sample (``LoggedUsage.per_sample``)."""
    return logged_usage(usage).per_sample().get(name)
