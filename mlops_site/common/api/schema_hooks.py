"""OpenAPI post-processing: every operation documents the errors the one exception handler can answer.

Any operation may be refused for bad input (400), missing or bad credentials (401), a role or
scope (403), an object the caller may not see (404), the rate limit (429) or an unreachable
database (503); one that takes a body also for a conflict (409), a body too large (413) or a
media type it does not parse (415). Each is the error contract of CONTRACT.md, so each is
documented once here instead of in every view (views may still describe their own).
"""

ERROR_SCHEMA_NAME = "ErrorResponse"
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["code", "message", "fields"],
        "properties": {"code": {"type": "string", "pattern": "^[a-z0-9_]+$"},
                       "message": {"type": "string"},
                       "fields": {"type": "object", "additionalProperties": True}},
    }},
}
ANY_OPERATION = {"400": "Invalid input.", "401": "Not authenticated.", "403": "Refused for this role or scope.",
                 "404": "Not found, or not visible to the caller.", "429": "Rate limited; see Retry-After.",
                 "503": "The database (or broker) is unavailable; retry."}
WITH_BODY = {"409": "Conflicts with the current state.", "413": "The body is larger than the limit.",
             "415": "Unsupported media type."}


def error_responses_postprocess(result, generator, request, public):
    """drf-spectacular POSTPROCESSING_HOOKS entry."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault(ERROR_SCHEMA_NAME, ERROR_SCHEMA)
    reference = {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            wanted = dict(ANY_OPERATION)
            if method in ("post", "put", "patch"):
                wanted.update(WITH_BODY)
            for status, description in wanted.items():
                operation["responses"].setdefault(status, {
                    "description": description, "content": {"application/json": {"schema": reference}}})
    return result


def paginated(serializer_class, name: str):
    """The schema of a list an APIView paginates by hand: {"count", "next", "previous", "results"}."""
    from drf_spectacular.utils import inline_serializer
    from rest_framework import serializers

    return inline_serializer(name=name, fields={
        "count": serializers.IntegerField(), "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True), "results": serializer_class(many=True)})
