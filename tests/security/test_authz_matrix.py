"""Authorization matrix: every API operation × every caller × own and foreign objects (OWASP API1, API5).

The operations come from the URL conf and the OpenAPI schema (tests/security/operations.py);
each needs a row in tests/security/authz_matrix.py, which names the permission-matrix action it
needs; what each caller should get is computed from `governance.permissions` (docs/roles.md).
One test walks the whole matrix on one set of objects built once (each request runs in a
savepoint rolled back afterwards, so one caller's write never changes what the next one meets),
and reports every mismatch at once.
"""

import json

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from governance.permissions import FORBIDDEN, PERMISSIONS, Action
from mlops_site.common.roles import GOVERNANCE_READ_ROLES
from tests.security import operations
from tests.security.authz_matrix import ROWS, Row
from tests.security.world import CALLERS, World, build_world

# Codes of an authorization refusal (as opposed to a refusal of the request's content).
DENIAL_CODES = {"not_authenticated", "authentication_failed", "permission_denied", "insufficient_scope",
                "not_found", "not_team_member", "signature_not_allowed", "team_admin_required"}


def permitted(caller: str, row: Row) -> bool:
    if caller == "anonymous":
        return False
    if row.permitted is not None and caller not in row.permitted:
        return False
    if caller == "admin":
        return row.action != Action.APPROVAL_SIGN
    if row.action in FORBIDDEN.get(caller, ()):
        return False
    return row.action in PERMISSIONS[caller]


def reads_all(caller: str) -> bool:
    return caller == "admin" or caller in GOVERNANCE_READ_ROLES


def expected(caller: str, row: Row, side: str) -> str:
    """'unauthenticated', 'denied', 'hidden' or 'allowed'."""
    if caller == "anonymous" or row.kind == "webhook":
        return "unauthenticated"
    if not permitted(caller, row):
        return "denied"
    if side == "foreign" and row.team_scoped and row.kind != "global" and not reads_all(caller):
        return "hidden"
    return "allowed"


def _request(client: APIClient, method: str, path: str, row: Row, side, world: World):
    params = dict(row.path(side, world)) if row.path else {}
    if "{id}" in path:
        params["id"] = getattr(side, row.target).pk
    url = path.format(**params)
    query = row.query(side, world) if row.query else None
    if method == "GET":
        return client.get(url, query)
    body = row.body(side, world) if row.body else {}
    if query:
        from urllib.parse import urlencode
        url = f"{url}?{urlencode(query)}"
    if row.multipart:
        return client.generic(method, url) if not body else client.post(url, body, format="multipart")
    return client.generic(method, url, json.dumps(body), content_type="application/json")


def _body(response) -> dict:
    try:
        return json.loads(response.content or b"{}")
    except ValueError:
        return {}


def _ids(body: dict) -> set:
    results = body.get("results", body if isinstance(body, list) else [])
    return {item.get("id") for item in results if isinstance(item, dict)}


def _check(caller: str, row: Row, side_name: str, response, world: World) -> str | None:
    """None when the response is what the matrix says, else what went wrong."""
    want = expected(caller, row, side_name)
    status, body = response.status_code, _body(response)
    code = body.get("error", {}).get("code") if isinstance(body.get("error"), dict) else None
    if status >= 500:
        return f"{status} server error"
    if want == "unauthenticated":
        codes = {"invalid_signature"} if row.kind == "webhook" else {"not_authenticated"}
        return None if status == 401 and code in codes else f"want 401, got {status} {code}"
    if row.kind == "list" and status == 200:
        ids = _ids(body)
        own_id, foreign_id = (getattr(world.side(s), row.target).pk for s in ("own", "foreign"))
        if want == "denied":
            return None if not ids else f"want nothing listed, got ids {sorted(ids)}"
        if own_id not in ids:
            return f"own object {own_id} missing from the list"
        if (foreign_id in ids) != reads_all(caller):
            return f"foreign object {foreign_id} {'listed' if foreign_id in ids else 'missing'}"
        return None
    if want in ("denied", "hidden"):
        if status not in (403, 404) or code not in DENIAL_CODES:
            return f"want 403/404 refusal, got {status} {code}"
        if set(body) != {"error"}:
            return f"refusal carries data: {sorted(body)}"
        return None
    if 200 <= status < 300 or code in row.ok_codes:
        return None
    return f"want allowed, got {status} {code}: {body.get('error', {}).get('message', '')[:120]}"


def _sides(row: Row) -> tuple[str, ...]:
    return ("own",) if row.kind in ("global", "list") else ("own", "foreign")


@pytest.mark.parametrize("operation", operations.all_operations(), ids=" ".join)
def test_every_operation_has_a_row(operation):
    assert operation in ROWS, (
        f"{operation[0]} {operation[1]} has no row in tests/security/authz_matrix.py: add one naming the "
        f"permission-matrix action it needs (governance.permissions.Action)")


def test_every_route_is_an_operation_with_a_row():
    """Plain Django views under /api/v1/ (not DRF) would escape the schema: each needs a row too."""
    covered = {path for _method, path in ROWS}
    missing = sorted(path for path in operations.routed_paths() if path not in covered)
    assert not missing, f"routes without a row in tests/security/authz_matrix.py: {missing}"


def test_every_row_names_an_operation_that_exists():
    stale = sorted(set(ROWS) - set(operations.all_operations()))
    assert not stale, f"rows for operations that no longer exist: {stale}"


def test_rows_name_actions_of_the_permission_matrix():
    actions = {value for key, value in vars(Action).items() if key.isupper()}
    assert {row.action for row in ROWS.values() if row.kind != "webhook"} <= actions


# The MLflow webhook receiver configured, so it answers for its signature rather than 503 disabled.
RECEIVERS = {
    "ATTEST_MLFLOW_WEBHOOK_SECRET": "security-matrix-secret",
    "ATTEST_MLFLOW_TRACKING_URI": "http://127.0.0.1:9",
    "ATTEST_MLFLOW_IMPORT_USER": "sec-ml_engineer",
    "ATTEST_MLFLOW_TEAM": "own-team",
}


def enable_receivers(settings) -> None:
    for name, value in RECEIVERS.items():
        setattr(settings, name, value)


def test_authorization_matrix(db, settings, record_property):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": [],
                               "DEFAULT_THROTTLE_RATES": {}}
    enable_receivers(settings)
    world = build_world()
    clients = {}
    for caller in CALLERS:
        client = APIClient()
        if caller != "anonymous":
            client.credentials(HTTP_AUTHORIZATION=f"Token {world.tokens[caller]}")
        clients[caller] = client

    failures, cases = [], 0
    for (method, path), row in sorted(ROWS.items()):
        if (method, path) not in operations.all_operations():
            continue
        for side_name in _sides(row):
            side = world.side(side_name)
            for caller in CALLERS:
                with transaction.atomic():
                    response = _request(clients[caller], method, path, row, side, world)
                    transaction.set_rollback(True)
                cases += 1
                problem = _check(caller, row, side_name, response, world)
                if problem:
                    failures.append(f"{method} {path} [{side_name}] as {caller} "
                                    f"(expected {expected(caller, row, side_name)}): {problem}")
    record_property("authz_cases", cases)
    print(f"authorization matrix: {len(ROWS)} operations, {cases} cases, {len(failures)} failures")
    assert not failures, "\n".join(failures)
