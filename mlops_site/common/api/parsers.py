"""The API's JSON parser: DRF's, refusing as a 400 what JSON or the database cannot hold.

- a NUL character anywhere in the document (mlops_site.common.nul_guard): 400 `validation_error`;
- NaN, Infinity, -Infinity, and numbers past a float's range (`1e999`): not JSON (RFC 8259), and
  PostgreSQL's jsonb refuses them; Python's `json.dump` writes NaN by default, so a training
  script's metrics carry it;
- nesting deeper than MAX_DEPTH: past the interpreter's recursion limit `json` raises
  RecursionError, and a little below it the document parses and then overflows whatever encodes
  it next (the model field, the audit event): a 500 either way.
The last two are 400 `malformed_request`, as any other body that is not JSON.

`json_document_loads` applies the same rules to JSON carried in a form field (registry.api.serializers).
"""

import codecs
import json
import math
from typing import Any

from rest_framework import exceptions, parsers

from mlops_site.common.nul_guard import MESSAGE, NUL, nul_location

# Far above any document the API takes (metrics, thresholds, configs), far below the recursion limit.
MAX_DEPTH = 64
TOO_DEEP_MESSAGE = f"The JSON document is nested deeper than {MAX_DEPTH} levels."
NON_FINITE_MESSAGE = "{token} is not a JSON number; non-finite numbers (NaN, Infinity, -Infinity) are not JSON."

_TOO_DEEP, _NON_FINITE, _NUL = "too_deep", "non_finite", "nul"


class JsonDocumentError(ValueError):
    """A document `json.loads` takes (or crashes on) that the API refuses."""


def _problems(document: Any) -> set[str]:
    """What is wrong with a parsed document, in one pass that builds no paths (every body pays it).

    Iterative, so a deep document is measured, not overflowed; it stops at the first level too deep.
    """
    found: set[str] = set()
    stack: list[tuple[Any, int]] = [([document], 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if any(NUL in key for key in node):
                found.add(_NUL)
            children = node.values()
        else:
            children = node
        for child in children:
            if isinstance(child, str):
                if NUL in child:
                    found.add(_NUL)
            elif isinstance(child, float):
                if not math.isfinite(child):
                    found.add(_NON_FINITE)
            elif isinstance(child, dict | list):
                if depth >= MAX_DEPTH:
                    return {_TOO_DEEP}
                stack.append((child, depth + 1))
    return found


def _non_finite_location(value: Any, where: str = "") -> tuple[str, str] | None:
    """(place, spelling) of the first non-finite number, e.g. ("metrics.auc", "NaN")."""
    if isinstance(value, float) and not math.isfinite(value):
        return where, "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite_location(item, f"{where}[{key}]" if isinstance(key, int) else
                                     f"{where}.{key}" if where else key)
        if found is not None:
            return found
    return None


def _loads(text: str | bytes) -> tuple[Any, set[str]]:
    try:
        document = json.loads(text)
    except RecursionError:
        raise JsonDocumentError(TOO_DEEP_MESSAGE) from None
    problems = _problems(document)
    if _TOO_DEEP in problems:
        raise JsonDocumentError(TOO_DEEP_MESSAGE)
    if _NON_FINITE in problems:
        where, token = _non_finite_location(document) or ("", "NaN")
        message = NON_FINITE_MESSAGE.format(token=token)
        raise JsonDocumentError(f"{where}: {message}" if where else message)
    return document, problems


def json_document_loads(text: str | bytes) -> Any:
    """`json.loads`, refusing non-finite numbers and too deep a nesting with JsonDocumentError.

    Other bad JSON raises json's own ValueError. A NUL is left to the caller (nul_location).
    """
    return _loads(text)[0]


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            data, problems = _loads(codecs.getreader(encoding)(stream).read())
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        if _NUL in problems:
            where = nul_location(data) or "body"
            field = where.split(".", 1)[0].split("[", 1)[0] or "body"
            inner = where[len(field):].lstrip(".") if where.startswith(field) else where
            # The field is named once, by its key in `fields` (which the message repeats).
            raise exceptions.ValidationError({field: [f"{inner}: {MESSAGE}" if inner else MESSAGE]})
        return data
