"""Per-endpoint request body limits, below the global DATA_UPLOAD_MAX_MEMORY_SIZE.

`settings.ATTEST_BODY_LIMITS` maps a path prefix to the largest body (bytes) it accepts. A
request whose Content-Length is larger is answered 413 with the error body before any view,
parser or authentication runs, so it changes nothing. Uploads keep their own limit
(ATTEST_MAX_UPLOAD_BYTES, enforced while the file streams in).
"""

import logging

from django.conf import settings
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


class BodyLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = body_limit_for(request.path_info)
        if limit is not None:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                logger.warning("request body over the endpoint's limit", extra={
                    "path": request.path_info, "content_length": length, "limit": limit})
                return JsonResponse(error_body(
                    "payload_too_large",
                    f"The request body ({length} bytes) is larger than this endpoint's limit of {limit} bytes.",
                ), status=413)
        return self.get_response(request)
