"""Every API operation Attest serves, read from the URL conf and the OpenAPI schema.

Three sources, so an endpoint cannot hide from the security tests:
- the OpenAPI schema (`drf_spectacular.generators.SchemaGenerator`), what clients are told;
- drf-spectacular's endpoint enumerator over the URL conf (DRF views, also those left out of
  the schema);
- a walk of the URL resolver under `/api/v1/` (plain Django views too, with their route only).

Paths are normalised to the schema's spelling: `{pk}` becomes `{id}`, `<int:x>` becomes `{x}`.
"""

import re
from functools import cache

API_PREFIX = "/api/v1/"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def normalise(path: str) -> str:
    path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path)
    return path.replace("{pk}", "{id}")


@cache
def schema() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


@cache
def schema_operations() -> frozenset[tuple[str, str]]:
    return frozenset((method.upper(), path) for path, item in schema()["paths"].items()
                     for method in item if method.upper() in METHODS and path.startswith(API_PREFIX))


@cache
def enumerated_operations() -> frozenset[tuple[str, str]]:
    from drf_spectacular.generators import EndpointEnumerator

    return frozenset((method.upper(), normalise(path))
                     for path, _regex, method, _view in EndpointEnumerator().get_api_endpoints()
                     if path.startswith(API_PREFIX) and method.upper() in METHODS)


def _walk(patterns, prefix: str):
    from django.urls import URLPattern, URLResolver

    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield "/" + route


@cache
def routed_paths() -> frozenset[str]:
    """Every route of the URL conf under /api/v1/ (plain Django views included)."""
    from django.urls import get_resolver

    return frozenset(normalise(path) for path in _walk(get_resolver().url_patterns, "")
                     if path.startswith(API_PREFIX))


@cache
def all_operations() -> tuple[tuple[str, str], ...]:
    return tuple(sorted(schema_operations() | enumerated_operations()))
