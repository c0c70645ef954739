"""Canonical JSON and the event hash, exactly as CONTRACT.md defines them.

canonical(x) = UTF-8 JSON, keys sorted, separators "," and ":", no ASCII escaping.
hash = sha256(bytes.fromhex(prev_hash) + canonical(event without hash and prev_hash)).
No Django here: the stand-alone verifier (docs/verify_attest_log.py) repeats these lines.
"""

import datetime as dt
import decimal
import hashlib
import json
import uuid
from pathlib import PurePath
from typing import Any

GENESIS_HASH = "0" * 64

# The fields of an event that its hash covers, in the order the export writes them.
HASHED_FIELDS = (
    "seq", "timestamp", "actor", "action", "object_type", "object_id", "object_repr", "payload",
    "correlation_id",
)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_bytes(value: Any) -> bytes:
    return canonical_json(value).encode("utf-8")


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return timestamp_canonical(value) if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID | PurePath):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable in an audit event")


def jsonable(value: Any) -> Any:
    """The plain JSON value (dict/list/str/int/float/bool/None) a payload becomes once stored."""
    return json.loads(json.dumps(value, default=_default, allow_nan=False))


def timestamp_canonical(value: dt.datetime) -> str:
    """ISO 8601 in UTC with microseconds and a Z, identical on SQLite and PostgreSQL re-reads."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(prev_hash: str, event: dict[str, Any]) -> str:
    body = {key: event[key] for key in HASHED_FIELDS}
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical_bytes(body)).hexdigest()
