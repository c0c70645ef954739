"""The registry's refusals: one constructor per stable error code, so codes are spelled once.

Each returns an ApplicationError (or subclass) carrying the code and the HTTP status the API
maps it to; services raise them and the one exception handler renders them.
"""

from typing import Any

from mlops_site.common.errors import (
    ApplicationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
)

HASH_MISMATCH = "The declared sha256 {declared} does not match the content's sha256 {actual}."
INVALID_SHA256 = "A sha256 is 64 lower-case hexadecimal characters."
UNKNOWN_COLUMN = "Column {column!r} is not in the data set's schema."
NOT_TEAM_MEMBER = "Only members of team {team!r} may change what it owns."
ALREADY_ARCHIVED = "{obj} is already archived."
PARENT_ARCHIVED = "{obj} is archived; no new versions may be registered."
NAME_TAKEN = "A {kind} named {name!r} already exists."
PICKLE_NOTE = "pickle files are stored and hashed but never loaded"


def artifact_hash_mismatch(*, declared: str, actual: str, field: str) -> ApplicationError:
    return ApplicationError(HASH_MISMATCH.format(declared=declared, actual=actual), code="artifact_hash_mismatch",
                            status=400, fields={field: [f"expected {actual}"]})


def invalid_sha256(*, field: str) -> ApplicationError:
    return ApplicationError(INVALID_SHA256, code="invalid_sha256", status=400, fields={field: [INVALID_SHA256]})


def unknown_column(*, column: str, field: str) -> ApplicationError:
    message = UNKNOWN_COLUMN.format(column=column)
    return ApplicationError(message, code="unknown_column", status=400, fields={field: [message]})


def not_team_member(*, team: Any) -> PermissionDeniedError:
    return PermissionDeniedError(NOT_TEAM_MEMBER.format(team=str(team)), code="not_team_member")


def already_archived(*, obj: Any) -> ConflictError:
    return ConflictError(ALREADY_ARCHIVED.format(obj=obj), code="already_archived")


def parent_archived(*, obj: Any, code: str) -> ApplicationError:
    return ApplicationError(PARENT_ARCHIVED.format(obj=obj), code=code, status=400)


def name_taken(*, kind: str, name: str, code: str) -> ConflictError:
    return ConflictError(NAME_TAKEN.format(kind=kind, name=name), code=code, fields={"name": ["already taken"]})


def not_found(message: str, *, field: str | None = None) -> NotFoundError:
    return NotFoundError(message, fields={field: [message]} if field else None)


def invalid(message: str, *, code: str, field: str | None = None, status: int = 400) -> ApplicationError:
    return ApplicationError(message, code=code, status=status, fields={field: [message]} if field else None)


def insufficient_storage() -> ApplicationError:
    return ApplicationError("The artifact store is out of space; nothing was stored. Retry later.",
                            code="insufficient_storage", status=507)
