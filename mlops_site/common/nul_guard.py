"""Refuse a NUL character in the URL path or query before any view reads it.

PostgreSQL's text types cannot hold U+0000, so a NUL that reaches a lookup (`?kind=%00`, a model
name in the path, the admin's `?q=`) makes the database raise DataError: a 503 from the API's
exception handler and a 500 in the admin, for what is bad input. SQLite would accept it and
match nothing, so the two databases answered differently. No name, filter or id of the domain
contains one, so every request that carries one is answered 400 `validation_error` here, on
either database, whatever view it was for.

In a body, DRF's CharField already refuses a NUL, but free JSON (a policy's thresholds, a
version's metrics) would carry one into a jsonb column: the API's JSON parser refuses a NUL
anywhere in the document (`nul_location`, mlops_site.common.api.parsers).
"""

from django.http import JsonResponse

NUL = "\x00"
MESSAGE = "Null characters are not allowed."


def nul_location(value, where: str = "") -> str | None:
    """Where the first NUL in a parsed JSON document is (`thresholds.a`, `items[2]`), or None."""
    if isinstance(value, str):
        return (where or "body") if NUL in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        here = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else key
        found = here if NUL in str(key) else nul_location(item, here)
        if found is not None:
            return found.replace(NUL, "\\x00")
    return None


def _offending_field(request) -> str | None:
    if NUL in request.path_info:
        return "path"
    if not request.META.get("QUERY_STRING"):
        return None  # most requests, the gate's POST included: nothing to parse
    for key, values in request.GET.lists():
        if NUL in key or any(NUL in value for value in values):
            return key.replace(NUL, "\\x00")
    return None


class NulGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        field = _offending_field(request)
        if field is not None:
            # Imported here: the exception handler imports DRF, whose settings import the API's
            # parser, which imports this module.
            from mlops_site.common.api.exception_handler import error_body

            return JsonResponse(error_body("validation_error", f"{field}: {MESSAGE}", {field: [MESSAGE]}), status=400)
        return self.get_response(request)
