import re

from mlops_site.common.context import correlation_id_get, correlation_id_reset, correlation_id_set

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class CorrelationIdMiddleware:
    """Gives every request one correlation id (the client's X-Request-ID when it is well formed).

    The id lives until the response is closed, not until this middleware returns: Django's handler
    writes its `django.request` line for a 4xx/5xx response ("Unauthorized: /api/v1/…") after the
    whole middleware chain has returned, and that line must carry the request's id like every other.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        supplied = request.headers.get("X-Request-ID", "")
        token = correlation_id_set(supplied if _SAFE_ID.match(supplied) else None)
        try:
            response = self.get_response(request)
        except BaseException:
            correlation_id_reset(token)
            raise
        request_id = correlation_id_get()
        response["X-Request-ID"] = request_id
        # The WSGI server (and the test client) closes every response after sending it (PEP 3333).
        response._resource_closers.append(lambda: _forget(token))
        return response


def _forget(token) -> None:
    try:
        correlation_id_reset(token)
    except ValueError:
        # Closed in another context than the one that served it (ASGI runs close() in a copy):
        # the serving context ends with its task, so there is nothing left to reset.
        pass
