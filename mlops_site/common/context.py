"""Per-request / per-task context that the audit writer reads (correlation id)."""

import contextvars
import uuid

_correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("attest_correlation_id", default=None)


def correlation_id_get() -> str:
    """The current request's or task's correlation id; a fresh one outside of both."""
    value = _correlation_id.get()
    if value is None:
        value = uuid.uuid4().hex
        _correlation_id.set(value)
    return value


def correlation_id_set(value: str | None = None) -> contextvars.Token:
    return _correlation_id.set(value or uuid.uuid4().hex)


def correlation_id_reset(token: contextvars.Token) -> None:
    _correlation_id.reset(token)
