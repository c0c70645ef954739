"""Monitoring refusals: one constructor per stable error code (the API renders them per CONTRACT.md)."""

from typing import Any

from mlops_site.common.errors import ApplicationError, ConflictError, NotFoundError, PermissionDeniedError

MONITOR_EXISTS = "{version} already has a drift monitor for {environment!r} (monitor #{pk})."
UNKNOWN_FEATURE = "Feature(s) not in the reference {reference}: {names}."
BATCH_EMPTY = "The batch has no rows."
BATCH_NOT_TABULAR = "The batch is not a table: send CSV, Parquet or JSON records (a list of objects)."
BATCH_UNREADABLE = "The batch cannot be read as {format}: {why}"
INVALID_TRANSITION = "Alert #{pk} is {status}; it cannot be {target}."
REASON_REQUIRED = "This step needs a reason."
SIGNATURE_REQUIRED = ("Closing critical alert #{pk} needs a compliance officer's electronic signature "
                      "(password re-authentication and a reason).")
NOT_ALLOWED = "{user} may not {action}."


def not_found(message: str, *, field: str | None = None) -> NotFoundError:
    return NotFoundError(message, fields={field: [message]} if field else None)


def invalid(message: str, *, code: str = "validation_error", field: str | None = None) -> ApplicationError:
    return ApplicationError(message, code=code, fields={field: [message]} if field else None)


def monitor_exists(*, version: Any, environment: str, pk: int) -> ConflictError:
    return ConflictError(MONITOR_EXISTS.format(version=version, environment=environment, pk=pk),
                         code="monitor_exists")


def unknown_feature(*, reference: Any, names: list[str]) -> ApplicationError:
    return invalid(UNKNOWN_FEATURE.format(reference=reference, names=", ".join(names)), code="unknown_feature",
                   field="features")


def batch_empty() -> ApplicationError:
    return invalid(BATCH_EMPTY, code="empty_batch", field="file")


def batch_not_tabular() -> ApplicationError:
    return invalid(BATCH_NOT_TABULAR, code="not_tabular", field="file")


def batch_unreadable(*, format: str, why: str) -> ApplicationError:  # noqa: A002 - the batch's format
    return invalid(BATCH_UNREADABLE.format(format=format, why=why)[:300], code="unreadable_batch", field="file")


def invalid_transition(*, pk: int, status: str, target: str) -> ConflictError:
    return ConflictError(INVALID_TRANSITION.format(pk=pk, status=status, target=target), code="invalid_transition",
                         fields={"status": [status]})


def reason_required() -> ApplicationError:
    return invalid(REASON_REQUIRED, code="reason_required", field="reason")


def signature_required(*, pk: int) -> PermissionDeniedError:
    return PermissionDeniedError(SIGNATURE_REQUIRED.format(pk=pk), code="signature_required")


def not_allowed(*, user: Any, action: str, code: str = "permission_denied") -> PermissionDeniedError:
    return PermissionDeniedError(NOT_ALLOWED.format(user=user, action=action), code=code)
