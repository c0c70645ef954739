"""One mapping from every error to the contract's body: {"error": {"code", "message", "fields"}}."""

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, IntegrityError, OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from mlops_site.common.errors import ApplicationError, PayloadTooLargeError

logger = logging.getLogger(__name__)

_DRF_CODES = {
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.ValidationError: "validation_error",
}


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        # Django refuses a body past DATA_UPLOAD_MAX_MEMORY_SIZE from its Content-Length, before reading it.
        exc = PayloadTooLargeError(
            f"The request body is larger than the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
        )
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status)
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {}
        message = "; ".join(exc.messages) or "Invalid input."
        return Response(error_body("validation_error", message, fields), status=400)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, IntegrityError):
        return Response(error_body("conflict", "The change conflicts with existing data."), status=409)
    elif isinstance(exc, OperationalError):
        # Transient: a dropped connection, a deadlock, a serialization failure; the retry may pass.
        logger.exception("database unavailable")
        return Response(error_body("database_unavailable", "The database did not answer; retry."),
                        status=503)
    elif isinstance(exc, DatabaseError):
        # DataError, ProgrammingError and the like: the same request would fail again, so "retry"
        # would be a lie. It is a bug (input the validation let through): Django's 500 path logs
        # it with its traceback and answers the contract's `server_error` (urls.handler500).
        return None

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    # A permission class may name its own code (e.g. "insufficient_scope"); keep it.
    detail_code = getattr(getattr(exc, "detail", None), "code", None)
    if isinstance(exc, exceptions.PermissionDenied) and detail_code not in (None, "permission_denied"):
        code = detail_code
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        message = "Invalid input: " + _flatten(exc.detail)
    else:
        fields = {}
        message = _flatten(exc.detail) if hasattr(exc, "detail") else str(exc)
        if isinstance(exc, exceptions.APIException) and getattr(exc, "default_code", None) and code == "error":
            code = exc.default_code
    if response.status_code == status.HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        code = "payload_too_large"
    response.data = error_body(code, message, fields)
    return response


# --- Django's own error views (URLs no view matched, uncaught errors) --------------------------------

def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request, exception=None):
    """urls.handler404: a path no API route matches (e.g. /api/v1/models/-1/) gets the error contract."""
    from django.http import JsonResponse
    from django.views import defaults

    if _is_api(request):
        return JsonResponse(error_body("not_found", "No API operation at this path."), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """urls.handler500: an uncaught error under /api/ still answers the error contract."""
    from django.http import JsonResponse
    from django.views import defaults

    if _is_api(request):
        return JsonResponse(error_body("server_error", "The server failed; the request changed nothing."),
                            status=500)
    return defaults.server_error(request)
