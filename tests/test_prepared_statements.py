"""On PostgreSQL the gate's hand-written statements are prepared once per connection; the ORM's never.

Planning was about a third of PostgreSQL's CPU per gate request (docs/BENCHMARKS.md, "Gate"),
so the statements of governance.hot_reads, the audit queue insert and the sequencer run through
a server-binding cursor (mlops_site.common.sql_rows.cursor) that psycopg prepares from its second
execution, while the ORM keeps client-side binding, which a pooler in transaction mode tolerates.
"""

import pytest
from django.db import connection

from tests.governance.test_gate_api import GATE, approved, client_for, gate_body
from tests.governance.workflow_factories import World, token_for

pytestmark = pytest.mark.django_db(transaction=True)


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_the_gates_statements_are_prepared_and_the_orms_are_not():
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's (.ci/run's second pass)")
    # given: an approved version and its CI token
    world = World("limited")
    approved(world)
    ci = client_for(token_for(world.ci))
    # when: the gate answers three times on this connection
    for _ in range(3):
        assert ci.post(GATE, gate_body(world), format="json").json()["allowed"] is True
    # then: the hot reads, the decision and audit inserts and the sequencer are prepared ...
    prepared = _prepared()
    for fragment in ('FROM "governance_approvalpolicy" p', 'FROM "governance_signature" s',
                     'FROM "governance_apitoken" t', "FROM monitoring_compliancealert",
                     'INSERT INTO "governance_gatedecision"', "INSERT INTO governance_auditqueueentry",
                     "pg_try_advisory_xact_lock"):
        assert any(fragment in statement for statement in prepared), (fragment, prepared)
    # ... and no statement the ORM compiled is (its quoted "table"."column" style)
    assert not [s for s in prepared if '"governance_gatedecision"."' in s or '"auth_user"."' in s]
    # and the answers kept coming from the same connection's cache: still one entry per statement
    assert len(prepared) == len(set(prepared))


def test_prepared_statements_can_be_turned_off(settings):
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's (.ci/run's second pass)")
    # given: DB_PREPARED_STATEMENTS=0, as behind an old PgBouncer in transaction mode
    connection.close()
    options = connection.settings_dict.setdefault("OPTIONS", {})
    saved = options.pop("prepare_threshold", None)
    try:
        world = World("limited")
        approved(world)
        ci = client_for(token_for(world.ci))
        # when
        for _ in range(3):
            assert ci.post(GATE, gate_body(world), format="json").json()["allowed"] is True
        # then: nothing is prepared on that connection
        assert _prepared() == []
    finally:
        connection.close()
        if saved is not None:
            options["prepare_threshold"] = saved
