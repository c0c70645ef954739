"""Domain errors: each carries a stable snake_case code and the HTTP status the API maps it to."""

from typing import Any


class ApplicationError(Exception):
    """A refused use case. The API turns it into {"error": {"code", "message", "fields"}}."""

    code = "invalid_request"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 fields: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.fields = fields or {}


class NotFoundError(ApplicationError):
    code = "not_found"
    status = 404


class ConflictError(ApplicationError):
    code = "conflict"
    status = 409


class PermissionDeniedError(ApplicationError):
    code = "permission_denied"
    status = 403


class PayloadTooLargeError(ApplicationError):
    code = "payload_too_large"
    status = 413
