"""Per-endpoint request body limits, below the global DATA_UPLOAD_MAX_MEMORY_SIZE.

`settings.ATTEST_BODY_LIMITS` maps a path prefix to the largest body (bytes) it accepts. A
request whose Content-Length is larger is answered 413 with the error body before any view,
parser or authentication runs, so it changes nothing. Uploads keep their own limit
(ATTEST_MAX_UPLOAD_BYTES, enforced while the file streams in).

A body sent without Content-Length (`Transfer-Encoding: chunked`) has no size to check up front,
and Django reads such a body as empty (its WSGI request reads Content-Length bytes: none), so it
was silently ignored — or, on a server that hands it over, would have escaped the endpoint's
limit. Here:
- on an endpoint with a limit, when the server hands the application the decoded body and marks
  where it ends (`wsgi.input_terminated`, as gunicorn does), at most limit + 1 bytes are read
  before any view runs: past the limit it is the same 413; within it the request goes on with the
  bytes read and their Content-Length, as if it had been sent with one;
- anywhere else (another endpoint, or a server that does not hand the body over, such as
  Django's own runserver) it is answered 411 `length_required` rather than read as empty.
"""

import io
import logging

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import JsonResponse

from mlops_site.common.api.exception_handler import error_body

logger = logging.getLogger(__name__)


def body_limit_for(path: str) -> int | None:
    """The limit of the longest prefix of `path` in ATTEST_BODY_LIMITS, or None."""
    limits = getattr(settings, "ATTEST_BODY_LIMITS", {}) or {}
    best = None
    for prefix in limits:
        if path.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return None if best is None else int(limits[best])


def _too_large(request, length: int, limit: int, *, streamed: bool) -> JsonResponse:
    logger.warning("request body over the endpoint's limit", extra={
        "path": request.path_info, "content_length": length, "limit": limit, "chunked": streamed})
    size = f"more than {limit} bytes, sent without Content-Length" if streamed else f"{length} bytes"
    return JsonResponse(error_body(
        "payload_too_large", f"The request body ({size}) is larger than this endpoint's limit of {limit} bytes.",
    ), status=413)


def _without_length(request) -> bool:
    """A body framed by Transfer-Encoding (chunked) rather than by Content-Length."""
    return bool(request.META.get("HTTP_TRANSFER_ENCODING")) and not request.META.get("CONTENT_LENGTH")


class BodyLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = body_limit_for(request.path_info)
        if _without_length(request):
            refused = self._read_unframed(request, limit)
            if refused is not None:
                return refused
        elif limit is not None:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                return _too_large(request, length, limit, streamed=False)
        return self.get_response(request)

    def _read_unframed(self, request, limit: int | None) -> JsonResponse | None:
        if limit is None or not request.META.get("wsgi.input_terminated"):
            return JsonResponse(error_body(
                "length_required",
                "Send this request with a Content-Length header: a body without one (Transfer-Encoding: chunked) "
                "is not read here.",
            ), status=411)
        body = request.META["wsgi.input"].read(limit + 1)  # bounded: never more than the limit and one byte
        if len(body) > limit:
            return _too_large(request, len(body), limit, streamed=True)
        # From here on the request is as if it had come with a Content-Length (Django and DRF read
        # exactly that many bytes of request._stream).
        request.META["CONTENT_LENGTH"] = str(len(body))
        request._stream = LimitedStream(io.BytesIO(body), len(body))
        return None
