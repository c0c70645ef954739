"""The evidence tables refuse UPDATE, DELETE and (PostgreSQL) TRUNCATE in the database itself, not
only in AppendOnlyModel's save()/delete(): a queryset update, a raw statement or a psql session on
the service's database user leaves every row as it was (row count and content).

Monitoring's evidence tables have the same tests in tests/monitoring/test_evidence_append_only.py;
the audit tables' in test_audit_append_only.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from django.apps import apps
from django.core.management.color import no_style
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from governance import db_triggers
from governance.gate import gate_evaluate
from governance.models import (
    ApprovalPolicy,
    Deployment,
    Dossier,
    Evaluation,
    GateDecision,
    Report,
    ReportChart,
    Signature,
)
from governance.services.approvals import approval_request_open, approval_request_sign
from governance.services.deployments import deployment_record
from governance.services.policies import policy_update
from mlops_site.common.models import AppendOnlyModel
from tests.governance.workflow_factories import PASSWORD, World

pytestmark = pytest.mark.django_db

REFUSED = "refused: evidence is append-only"

# What a tamperer would change in each table: a value that matters to what the row proves.
TAMPERING: dict[str, str] = {
    "governance_signature": "record_sha256 = 'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff'",
    "governance_gatedecision": "environment = 'tampered'",
    "governance_deployment": "environment = 'tampered'",
    "governance_approvalpolicy": "max_approval_age_days = 3650",
    "governance_report": "sha256 = '0000000000000000000000000000000000000000000000000000000000000000'",
    "governance_reportchart": "title = 'tampered'",
    "governance_dossier": "sha256 = '0000000000000000000000000000000000000000000000000000000000000000'",
}
MODELS = {model._meta.db_table: model for model in
          (Signature, GateDecision, Deployment, ApprovalPolicy, Report, ReportChart, Dossier)}


# --- helpers shared with tests/monitoring/test_evidence_append_only.py ------------------------------

def table_state(table: str) -> tuple[int, str]:
    """(row count, sha256 over every stored value in key order): any change to any value changes it."""
    digest = hashlib.sha256()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} ORDER BY 1")
        rows = cursor.fetchall()
    for row in rows:
        # PostgreSQL returns bytea as a memoryview, whose repr is its address: compare the bytes.
        digest.update(repr([bytes(v) if isinstance(v, memoryview) else v for v in row]).encode("utf-8"))
        digest.update(b"\n")
    return len(rows), digest.hexdigest()


def raw(sql: str) -> Callable[[], None]:
    def run() -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    return run


def raw_attempts(table: str, tampering: str) -> dict[str, tuple[Callable[[], None], str]]:
    """Each statement a database user could type, and the refusal it must meet."""
    first = f"(SELECT MIN(id) FROM {table})"
    attempts = {
        "raw UPDATE of one row": (raw(f"UPDATE {table} SET {tampering} WHERE id = {first}"),
                                  f"attest: UPDATE on {table} {REFUSED}"),
        "raw UPDATE changing nothing": (raw(f"UPDATE {table} SET id = id"), f"attest: UPDATE on {table} {REFUSED}"),
        "raw DELETE of one row": (raw(f"DELETE FROM {table} WHERE id = {first}"),
                                  f"attest: DELETE on {table} {REFUSED}"),
        "raw DELETE of every row": (raw(f"DELETE FROM {table}"), f"attest: DELETE on {table} {REFUSED}"),
    }
    if connection.vendor == "postgresql":
        # CASCADE, so that it is the trigger and not a referencing table's foreign key that stops it;
        # the deferred foreign-key checks of the rows this test inserted run first, or PostgreSQL
        # refuses the TRUNCATE for its pending trigger events before asking ours.
        attempts["TRUNCATE … CASCADE"] = (raw(f"SET CONSTRAINTS ALL IMMEDIATE; TRUNCATE {table} CASCADE"),
                                          f"attest: TRUNCATE on {table} {REFUSED}")
    return attempts


def assert_every_attempt_refused(table: str, attempts: dict[str, tuple[Callable[[], None], str | None]]) -> None:
    before = table_state(table)
    assert before[0] >= 1, f"{table} has no row to attack"
    for name, (attempt, message) in attempts.items():
        # when: each attempt in its own savepoint, so that a refused statement leaves the test usable
        with pytest.raises(DatabaseError, match=message):
            with transaction.atomic():
                attempt()
        # then
        assert table_state(table) == before, f"{table}: {name} changed the table"


def orm_attempts(model, tampering_field: str, value) -> dict[str, tuple[Callable[[], None], str | None]]:
    table = model._meta.db_table
    return {
        "QuerySet.update()": (lambda: model.objects.update(**{tampering_field: value}),
                              f"attest: UPDATE on {table} {REFUSED}"),
        # Django's collector may stop first with ProtectedError (another evidence row refers to this
        # one); where nothing refers to it, the DELETE reaches the database and the trigger stops it.
        "QuerySet.delete()": (lambda: model.objects.all().delete(), None),
    }


# --- one row in every governance evidence table ----------------------------------------------------

@pytest.fixture
def evidence(db) -> World:
    """A deployment on a signed approval and an allowing gate decision, a report with a chart, a dossier."""
    world = World("limited")
    request = approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                                    environment="production")
    for signer in world.signers():
        approval_request_sign(actor=signer, request=request, password=PASSWORD, meaning="approve")
    decision = gate_evaluate(actor=world.ci, model_name=world.model.name, version=world.v1.version,
                             environment="production", artifact_sha256=world.v1.artifact_sha256)
    deployment_record(actor=world.ci, model_version=world.v1, environment="production",
                      decision_id=decision.decision_id)
    evaluation = Evaluation.objects.create(model_version=world.v1, dataset_version=world.data,
                                           sensitive_features=["age"], target_column="approved",
                                           status=Evaluation.Status.SUCCEEDED, progress=100)
    report = Report.objects.create(kind="fairness", evaluation=evaluation, model_version=world.v1,
                                   results={"groups": []}, sha256="a" * 64, artifact_sha256=world.v1.artifact_sha256,
                                   dataset_sha256=world.data.sha256)
    ReportChart.objects.create(report=report, name="selection-rate", title="Selection rate",
                               png=b"\x89PNG\r\n\x1a\n\x00\xff", sha256="b" * 64)
    Dossier.objects.create(model=world.model, model_version=world.v1, sha256="c" * 64, size=1234, pages=9,
                           storage_key="dossiers/cc.pdf", manifest_sha256="d" * 64, generated_by=world.compliance,
                           generated_at=timezone.now())
    for model in MODELS.values():
        assert model.objects.exists(), model
    return world


@pytest.mark.parametrize("table", sorted(db_triggers.GOVERNANCE_EVIDENCE_TABLES))
def test_every_raw_change_to_a_governance_evidence_row_is_refused(evidence, table):
    assert_every_attempt_refused(table, raw_attempts(table, TAMPERING[table]))


@pytest.mark.parametrize("table", sorted(db_triggers.GOVERNANCE_EVIDENCE_TABLES))
def test_queryset_update_and_delete_of_governance_evidence_are_refused(evidence, table):
    model = MODELS[table]
    field = next(f for f in model._meta.concrete_fields if f.get_internal_type() in ("CharField", "SlugField"))
    assert_every_attempt_refused(table, orm_attempts(model, field.attname, "tampered"))


def test_the_python_guard_still_speaks_first(evidence):
    # given
    signature = Signature.objects.first()
    signature.reason = "changed my mind"
    # when / then: the domain's own refusal, before any statement reaches the database
    with pytest.raises(PermissionError, match="Signatures are never edited"):
        signature.save()
    with pytest.raises(PermissionError, match="Signatures are never deleted"):
        signature.delete()


def test_appending_evidence_is_still_allowed(evidence):
    # given
    before = ApprovalPolicy.objects.filter(risk_tier="limited").count()
    # when: a policy edit is a new version, an insert
    policy_update(actor=evidence.compliance, risk_tier="limited", changes={"max_approval_age_days": 10},
                  reason="tighter")
    # then
    assert ApprovalPolicy.objects.filter(risk_tier="limited").count() == before + 1


# --- the list, the migrations, the test backend ----------------------------------------------------

def test_every_append_only_model_is_protected_in_the_database():
    """A new AppendOnlyModel whose table is not in db_triggers.PROTECTED_TABLES fails here."""
    append_only = {model._meta.db_table for model in apps.get_models() if issubclass(model, AppendOnlyModel)}
    assert append_only - set(db_triggers.PROTECTED_TABLES) == set()
    assert set(db_triggers.PROTECTED_TABLES) - append_only == set()


def test_the_migrations_leave_every_protected_table_with_its_triggers():
    """A later migration that rebuilds a protected table on SQLite (which drops its triggers) fails here."""
    expected = db_triggers.expected_triggers(connection.vendor)
    assert db_triggers.installed(connection) == {table: expected for table in db_triggers.PROTECTED_TABLES}


@pytest.mark.django_db(transaction=True)
def test_the_test_backends_flush_empties_protected_tables_and_puts_every_trigger_back():
    # given: rows in protected tables (a policy from migration 0007 is already there on the first flush)
    World("limited")
    ApprovalPolicy.objects.create(risk_tier="minimal", version=99, environments=["production"],
                                  required_roles={"ml_engineer": 1})
    assert ApprovalPolicy.objects.exists()
    # when: the flush pytest-django runs between transactional tests
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    connection.ops.execute_sql_flush(connection.ops.sql_flush(no_style(), tables, allow_cascade=True))
    # then
    assert not ApprovalPolicy.objects.exists()
    expected = db_triggers.expected_triggers(connection.vendor)
    assert db_triggers.installed(connection) == {table: expected for table in db_triggers.PROTECTED_TABLES}
    with pytest.raises(DatabaseError, match=REFUSED):
        with transaction.atomic():
            ApprovalPolicy.objects.create(risk_tier="minimal", version=1, environments=[])
            ApprovalPolicy.objects.update(version=2)


# --- columns a service may still update (none today; the mechanism, on a table of its own) ---------

SCRATCH = "attest_scratch_evidence"


@pytest.fixture
def scratch_table(db, monkeypatch):
    """A protected table with one mutable column, inside the test's transaction (rolled back after)."""
    monkeypatch.setitem(db_triggers.PROTECTED_TABLES, SCRATCH, ("seen_at",))
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {SCRATCH} (id integer PRIMARY KEY, body text, amount integer, "
                       f"seen_at varchar(40))")
        cursor.execute(f"INSERT INTO {SCRATCH} (id, body, amount, seen_at) VALUES (1, 'kept', 5, NULL)")
    db_triggers.install(connection, [SCRATCH])
    return SCRATCH


def test_an_allowed_column_can_change_and_nothing_else_can(scratch_table):
    # when: the allowed column changes, even in the same statement as a no-op on another one
    raw(f"UPDATE {SCRATCH} SET seen_at = '2026-11-27T21:00:00Z', amount = amount WHERE id = 1")()
    raw(f"UPDATE {SCRATCH} SET seen_at = NULL WHERE id = 1")()
    # then: any other column, alone or with the allowed one, and any delete, are refused
    refusal = f"attest: UPDATE on {SCRATCH} refused: evidence is append-only"
    assert_every_attempt_refused(SCRATCH, {
        "another column": (raw(f"UPDATE {SCRATCH} SET body = 'changed'"), refusal),
        "another column to NULL": (raw(f"UPDATE {SCRATCH} SET amount = NULL"), refusal),
        "with the allowed one": (raw(f"UPDATE {SCRATCH} SET seen_at = 'x', amount = 6"), refusal),
        "DELETE": (raw(f"DELETE FROM {SCRATCH}"), f"attest: DELETE on {SCRATCH} refused: evidence is append-only"),
    })
