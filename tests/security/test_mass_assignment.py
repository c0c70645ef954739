"""Mass assignment (OWASP API3): fields a client may not set, posted to every write operation, change nothing.

For every POST/PUT/PATCH of the schema, a caller the matrix allows sends the row's valid body
twice, each in a savepoint rolled back afterwards: once as it is, once with every protected
field its input serializer does not declare (ids, status, actor, hashes, seq, timestamps, team,
is_staff, ...) set to sentinel values. The two answers must be the same once volatile values
(ids, times, per-request hashes) are set aside, no sentinel may show up in the answer, the same
number of audit events must be written, and the caller's own flags must not move.
"""

import json
import re

from django.contrib.auth.models import User
from django.db import transaction
from rest_framework.test import APIClient

from governance.models import AuditEvent, AuditQueueEntry
from tests.security import operations
from tests.security.authz_matrix import ROWS
from tests.security.test_authz_matrix import _request, expected
from tests.security.world import build_world

SENTINEL_NUMBER = 987654321
SENTINEL_HEX = "5e" * 32
SENTINEL_TIME = "2001-02-03T04:05:06Z"
# RELIABILITY.md's list and the rest of what the server alone decides.
PROTECTED = {
    "id": SENTINEL_NUMBER, "pk": SENTINEL_NUMBER, "seq": SENTINEL_NUMBER, "version": SENTINEL_NUMBER,
    "status": "deployed", "allowed": True, "approved_by": "sec-admin", "created_by": "sec-admin",
    "requested_by": "sec-admin", "deployed_by": "sec-admin", "signer": "sec-admin", "signer_name": "Sentinel Name",
    "actor": {"system": "sentinel"}, "is_staff": True, "is_superuser": True, "is_active": False,
    "groups": ["compliance_officer"], "roles": ["compliance_officer"], "team": "foreign-team",
    "artifact_sha256": SENTINEL_HEX, "sha256": SENTINEL_HEX, "hash": SENTINEL_HEX, "prev_hash": SENTINEL_HEX,
    "record_sha256": SENTINEL_HEX, "evidence_sha256": SENTINEL_HEX, "artifact_size": SENTINEL_NUMBER,
    "size": SENTINEL_NUMBER, "artifact_loadable": True, "storage_key": "../../sentinel",
    "created_at": SENTINEL_TIME, "updated_at": SENTINEL_TIME, "signed_at": SENTINEL_TIME,
    "deployed_at": SENTINEL_TIME, "decided_at": SENTINEL_TIME, "archived_at": SENTINEL_TIME,
    "evaluated_at": SENTINEL_TIME, "audit_seq": SENTINEL_NUMBER, "signatures": [{"signer_name": "Sentinel Name"}],
    "policy_version": SENTINEL_NUMBER, "approval_request": SENTINEL_NUMBER,
}
SENTINEL_TEXTS = ("987654321", SENTINEL_HEX, "2001-02-03", "Sentinel Name", "sentinel", "sec-admin")
VOLATILE = re.compile(r"(^id$|_at$|^decision_id$|^audit_seq$|^evidence_sha256$|^record_sha256$|^correlation_id$"
                      r"|^url$|^next$|^previous$)")
PREFERRED = ("ml_engineer", "data_scientist", "model_validator", "compliance_officer", "ci_service", "risk_officer",
             "admin")


def write_operations() -> list[tuple[str, str]]:
    """Writes a user makes (a webhook receiver takes a signed body it does not map onto fields)."""
    return sorted(op for op in operations.all_operations() if op[0] in ("POST", "PUT", "PATCH")
                  and not (op in ROWS and ROWS[op].kind == "webhook"))


def declared_fields(method: str, path: str) -> set[str]:
    operation = operations.schema()["paths"].get(path, {}).get(method.lower(), {})
    names: set[str] = set()
    for media in operation.get("requestBody", {}).get("content", {}).values():
        ref = media.get("schema", {}).get("$ref", "")
        component = operations.schema()["components"]["schemas"].get(ref.rsplit("/", 1)[-1], media.get("schema", {}))
        names |= set(component.get("properties", {}))
    return names


def _normalised(value):
    if isinstance(value, dict):
        return {key: _normalised(item) for key, item in value.items() if not VOLATILE.search(key)}
    if isinstance(value, list):
        return [_normalised(item) for item in value]
    return value


def _events() -> int:
    return AuditEvent.objects.count() + AuditQueueEntry.objects.count()


def _caller_for(row) -> str:
    for caller in PREFERRED:
        if expected(caller, row, "own") == "allowed":
            return caller
    raise AssertionError("no caller may call this operation")


def _send(client, method, path, row, world, extras: dict):
    original = row.body
    if extras:
        def body(side, w):
            data = dict(original(side, w) if original else {})
            for key, value in extras.items():
                data[key] = (json.dumps(value) if isinstance(value, dict | list) else str(value).lower()
                             if isinstance(value, bool) else str(value)) if row.multipart else value
            return data
        row = type(row)(**{**row.__dict__, "body": body})
    with transaction.atomic():
        before = _events()
        response = _request(client, method, path, row, world.own, world)
        written = _events() - before
        flags = {name: list(User.objects.filter(is_staff=True).values_list("username", flat=True))
                 for name in ("staff",)}
        transaction.set_rollback(True)
    return response, written, flags


def test_protected_fields_are_ignored_or_refused_by_every_write(db, settings, record_property):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
    world = build_world()
    checked, failures = 0, []
    for method, path in write_operations():
        row = ROWS.get((method, path))
        if row is None:
            failures.append(f"{method} {path}: no row in tests/security/authz_matrix.py to build its body")
            continue
        caller = _caller_for(row)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {world.tokens[caller]}")
        extras = {key: value for key, value in PROTECTED.items() if key not in declared_fields(method, path)}
        plain, plain_events, plain_flags = _send(client, method, path, row, world, {})
        loaded, loaded_events, loaded_flags = _send(client, method, path, row, world, extras)
        checked += 1
        where = f"{method} {path} as {caller}"
        if plain.status_code >= 300 and plain.status_code != loaded.status_code:
            failures.append(f"{where}: baseline {plain.status_code}, with protected fields {loaded.status_code}")
            continue
        if loaded.status_code >= 400:
            # Refusing the whole request is also safe, if it is the error contract and writes nothing.
            body = loaded.json()
            if set(body) != {"error"} or loaded_events:
                failures.append(f"{where}: refused without the error contract or with {loaded_events} events")
            continue
        if loaded.status_code != plain.status_code:
            failures.append(f"{where}: {plain.status_code} vs {loaded.status_code} with protected fields")
            continue
        if _normalised(plain.json()) != _normalised(loaded.json()):
            failures.append(f"{where}: the answer changed:\n  {_normalised(plain.json())}\n  "
                            f"{_normalised(loaded.json())}")
        text, plain_text = loaded.content.decode(), plain.content.decode()
        leaked = [sentinel for sentinel in SENTINEL_TEXTS if sentinel in text and sentinel not in plain_text]
        if leaked:
            failures.append(f"{where}: sentinel values were stored: {leaked}")
        if loaded_events != plain_events or loaded_flags != plain_flags:
            failures.append(f"{where}: {plain_events} vs {loaded_events} events, staff {plain_flags} vs {loaded_flags}")
    record_property("mass_assignment_operations", checked)
    print(f"mass assignment: {checked} write operations, {len(PROTECTED)} protected fields, "
          f"{len(failures)} failures")
    assert checked == len(write_operations())
    assert not failures, "\n".join(failures)

