import re

from mlops_site.common.context import correlation_id_reset, correlation_id_set

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class CorrelationIdMiddleware:
    """Gives every request one correlation id (the client's X-Request-ID when it is well formed)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        supplied = request.headers.get("X-Request-ID", "")
        token = correlation_id_set(supplied if _SAFE_ID.match(supplied) else None)
        try:
            response = self.get_response(request)
        finally:
            from mlops_site.common.context import correlation_id_get

            request_id = correlation_id_get()
            correlation_id_reset(token)
        response["X-Request-ID"] = request_id
        return response
