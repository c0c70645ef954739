"""mlops_site.common.sql_rows: instances from hand-written SQL equal the ORM's, and insert() behaves as save().

The gate reads and writes its evidence through these helpers (governance.hot_reads, gate.py), so
an instance hydrated from a row must be indistinguishable from `Model.objects.get()`'s on the
database the suite runs on (SQLite: booleans come back as 0/1, JSON and datetimes as text;
PostgreSQL: JSON as text too, since Django decodes it in the field's converter).
"""

import datetime as dt
import uuid
from typing import Any

import psycopg
import pytest
from django.contrib.auth.models import User
from django.db import DataError, connection, models, transaction
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client import REGISTRY

from governance import hot_reads
from governance.gate import gate_evaluate
from governance.models import ApiToken, ApprovalPolicy, ApprovalRequest, GateDecision, Signature
from governance.services.approvals import approval_request_open, approval_request_sign
from governance.services.policies import policy_update
from mlops_site.common import metrics
from mlops_site.common.sql_rows import (
    Statement,
    column_count,
    fetch_rows,
    insert,
    instance_from_row,
    read_ahead,
    select_list,
)
from monitoring.selectors import open_critical_alert_statement
from registry.models import ModelVersion
from tests.governance.workflow_factories import PASSWORD, World, token_for

pytestmark = pytest.mark.django_db


def approved(world: World) -> ApprovalRequest:
    request = approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                                    environment="production")
    for signer in world.signers():
        approval_request_sign(actor=signer, request=request, password=PASSWORD, meaning="approve")
    return request


def via_sql(model: type[models.Model], pk: Any) -> Any:
    """The row of `model` with this pk, read with select_list and hydrated by instance_from_row."""
    quote = connection.ops.quote_name
    statement = (f"SELECT {select_list(model, 'x')} FROM {quote(model._meta.db_table)} x "
                 f"WHERE x.{quote(model._meta.pk.column)} = %s")
    with connection.cursor() as cursor:
        cursor.execute(statement, [pk])
        row = cursor.fetchone()
    assert row is not None and len(row) == column_count(model)
    return instance_from_row(model, row)


def assert_same_as_orm(model: type[models.Model], pk: Any) -> tuple[Any, Any]:
    """Every concrete field of the SQL-hydrated instance equals the ORM's, with the same type."""
    from_sql, from_orm = via_sql(model, pk), model.objects.get(pk=pk)
    for field in model._meta.concrete_fields:
        ours, theirs = getattr(from_sql, field.attname), getattr(from_orm, field.attname)
        assert type(ours) is type(theirs), (model.__name__, field.attname, ours, theirs)
        assert ours == theirs, (model.__name__, field.attname)
        if isinstance(ours, dt.datetime):
            assert ours.tzinfo is not None and ours.utcoffset() == theirs.utcoffset(), field.attname
    # As a QuerySet's instance: loaded, from this database, equal to the ORM's.
    assert from_sql._state.adding is False and from_sql._state.db == connection.alias
    assert from_sql == from_orm
    return from_sql, from_orm


@pytest.fixture
def gate_world() -> tuple[World, ApprovalRequest, GateDecision]:
    """A second policy version, a request approved under it (two signatures), and an allowing gate decision."""
    world = World("limited")
    policy_update(actor=world.compliance, risk_tier="limited",
                  changes={"environments": ["production", "staging"], "thresholds": {"max_dpd": 0.2}},
                  reason="staging too")
    request = approved(world)
    decision = gate_evaluate(actor=world.ci, model_name=world.model.name, version=world.v1.version,
                             environment="production", artifact_sha256=world.v1.artifact_sha256)
    return world, request, decision


def test_gate_decision_uuid_bool_json_datetime_and_foreign_keys_equal_the_orm(gate_world):
    # given
    world, request, decision = gate_world
    # when
    ours, _ = assert_same_as_orm(GateDecision, decision.pk)
    # then: the types the gate and the API rely on, whatever the backend hands back
    assert isinstance(ours.decision_id, uuid.UUID) and ours.decision_id == decision.decision_id
    assert ours.allowed is True
    assert isinstance(ours.checks, list) and all(isinstance(c, dict) for c in ours.checks)
    assert ours.checks == decision.checks
    assert timezone.is_aware(ours.evaluated_at) and ours.evaluated_at == decision.evaluated_at
    assert (ours.approval_request_id, ours.evaluated_by_id, ours.model_version_id) == (
        request.pk, world.ci.pk, world.v1.pk)


def test_policies_with_json_lists_and_dicts_and_a_null_creator_equal_the_orm(gate_world):
    world, _, _ = gate_world
    policies = ApprovalPolicy.objects.filter(risk_tier="limited").order_by("version")
    assert policies.count() == 2
    seeded, edited = (assert_same_as_orm(ApprovalPolicy, p.pk)[0] for p in policies)
    assert seeded.created_by_id is None
    assert edited.created_by_id == world.compliance.pk
    assert edited.environments == ["production", "staging"]
    assert isinstance(edited.required_roles, dict) and edited.required_roles
    assert edited.thresholds == {"max_dpd": 0.2}
    assert edited.approvable is True


def test_request_signatures_version_token_and_user_equal_the_orm(gate_world):
    # given
    world, request, _ = gate_world
    key = token_for(world.ci)
    token = ApiToken.objects.get(prefix=key[:12])
    # when / then
    ours, _ = assert_same_as_orm(ApprovalRequest, request.pk)
    assert isinstance(ours.evidence, dict) and ours.evidence["artifact_sha256"] == world.v1.artifact_sha256
    assert timezone.is_aware(ours.decided_at)
    for signature in Signature.objects.filter(request=request):
        assert timezone.is_aware(assert_same_as_orm(Signature, signature.pk)[0].signed_at)
    version, _ = assert_same_as_orm(ModelVersion, world.v1.pk)
    assert isinstance(version.metrics, dict) and version.artifact_loadable is False
    ours_token, _ = assert_same_as_orm(ApiToken, token.pk)
    assert isinstance(ours_token.scopes, list) and ours_token.expires_at is None
    assert assert_same_as_orm(User, world.ci.pk)[0].is_active is True


def test_instance_from_row_reads_a_model_from_an_offset_in_a_joined_row(gate_world):
    # given: a decision and its version in one row, as the gate's reads join them
    _, _, decision = gate_world
    quote = connection.ops.quote_name
    statement = (f"SELECT {select_list(GateDecision, 'd')}, {select_list(ModelVersion, 'v')} "
                 f"FROM {quote(GateDecision._meta.db_table)} d JOIN {quote(ModelVersion._meta.db_table)} v "
                 f"ON v.{quote('id')} = d.{quote('model_version_id')} WHERE d.{quote('id')} = %s")
    with connection.cursor() as cursor:
        cursor.execute(statement, [decision.pk])
        row = cursor.fetchone()
    # when
    version = instance_from_row(ModelVersion, row, column_count(GateDecision))
    # then
    expected = ModelVersion.objects.get(pk=decision.model_version_id)
    assert {f.attname: getattr(version, f.attname) for f in ModelVersion._meta.concrete_fields} == {
        f.attname: getattr(expected, f.attname) for f in ModelVersion._meta.concrete_fields}


# --- insert -----------------------------------------------------------------------------------------

def _decision(world: World, **values: Any) -> GateDecision:
    return GateDecision(model_version=world.v1, environment="staging", artifact_sha256="a" * 64, allowed=False,
                        checks=[{"code": "artifact_hash_mismatch", "passed": False, "message": "Mismatch."}],
                        evaluated_at=timezone.now(), **values)


def _gate_count(result: str) -> float:
    assert metrics.GATE_DECISIONS  # imported: its post_save receiver counts the answers
    return REGISTRY.get_sample_value("attest_gate_decisions_total", {"result": result}) or 0.0


def test_insert_sets_the_pk_reads_back_as_the_orm_and_sends_post_save_created(
        django_capture_on_commit_callbacks):
    # given: a decision with null foreign keys and a chosen decision id (the field has a default)
    world = World("limited")
    chosen = uuid.uuid4()
    decision = _decision(world, decision_id=chosen, approval_request=None, evaluated_by=None)
    received: list[dict[str, Any]] = []

    def receiver(sender, instance, **kwargs):
        received.append({"sender": sender, "instance": instance, **kwargs})

    post_save.connect(receiver, sender=GateDecision, dispatch_uid="test-sql-rows-insert")
    before = _gate_count("denied")
    try:
        # when
        with django_capture_on_commit_callbacks(execute=True):
            insert(decision)
    finally:
        post_save.disconnect(dispatch_uid="test-sql-rows-insert", sender=GateDecision)
    # then
    assert isinstance(decision.pk, int) and decision.pk > 0
    assert decision._state.adding is False and decision._state.db == connection.alias
    stored, _ = assert_same_as_orm(GateDecision, decision.pk)
    assert stored.decision_id == chosen == decision.decision_id
    assert (stored.approval_request_id, stored.evaluated_by_id) == (None, None)
    assert stored.checks == decision.checks and stored.allowed is False
    assert stored.evaluated_at == decision.evaluated_at
    assert len(received) == 1
    assert received[0]["created"] is True and received[0]["instance"] is decision
    assert received[0]["sender"] is GateDecision and received[0]["raw"] is False
    assert received[0]["using"] == connection.alias
    # The metrics' receiver counted the answer once the transaction committed.
    assert _gate_count("denied") - before == 1.0


def test_insert_keeps_the_default_drawn_when_the_instance_was_made():
    # given: the decision id the model's default drew at construction
    world = World("limited")
    decision = _decision(world)
    drawn = decision.decision_id
    # when
    insert(decision)
    # then: the stored row carries that id (a second draw would break the answer's decision_id)
    assert decision.decision_id == drawn
    assert GateDecision.objects.get(pk=decision.pk).decision_id == drawn


def test_inserted_evidence_refuses_a_later_save_like_any_stored_row():
    # _state.adding is False after insert(): an append-only model refuses an edit, as after save()
    world = World("limited")
    decision = _decision(world)
    insert(decision)
    decision.environment = "production"
    with pytest.raises(PermissionError):
        decision.save()
    assert GateDecision.objects.get(pk=decision.pk).environment == "staging"



# --- read_ahead / fetch_rows ------------------------------------------------------------------------

def _policy_statement() -> Statement:
    return hot_reads.policy_in_force_statement("limited")


def test_read_ahead_answers_each_read_once_and_nothing_outlives_the_block(django_assert_num_queries):
    # given: the answer of a direct read
    statement = _policy_statement()
    direct = fetch_rows(*statement)
    assert direct
    # when: the same read inside a read-ahead block, twice
    with read_ahead([statement]):
        with CaptureQueriesContext(connection) as at_first:
            first = fetch_rows(*statement)
        with CaptureQueriesContext(connection) as at_second:
            second = fetch_rows(*statement)
    # then: on PostgreSQL the first is answered from what was read ahead (SQLite reads nothing
    # ahead), and each answer serves one read, so the second runs; the same rows either way
    assert len(at_first) == (0 if connection.vendor == "postgresql" else 1)
    assert len(at_second) == 1
    assert first == second == direct
    # and after the block the read runs again
    with django_assert_num_queries(1):
        assert fetch_rows(*statement) == direct


def test_a_read_not_read_ahead_runs_on_its_own_inside_the_block(django_assert_num_queries):
    statement = _policy_statement()
    other = (statement[0], ["minimal"])
    with read_ahead([statement]), django_assert_num_queries(1):
        assert fetch_rows(*other)[0][1] == "minimal"


def test_a_failing_read_ahead_raises_djangos_error_and_reads_nothing():
    if connection.vendor != "postgresql":
        pytest.skip("read-ahead is PostgreSQL's pipeline mode (.ci/run's second pass)")
    with pytest.raises(DataError), transaction.atomic(), read_ahead([("SELECT 1 / %s", [0])]):
        pytest.fail("the block must not run")  # pragma: no cover
    assert getattr(connection, "_attest_read_ahead", None) is None


def test_the_gates_checks_send_their_reads_in_one_round_trip(gate_world):
    if connection.vendor != "postgresql":
        pytest.skip("read-ahead is PostgreSQL's pipeline mode (.ci/run's second pass)")
    # given: an approved version (every check reads its evidence)
    world, _, _ = gate_world
    sent: list[tuple[str, bool]] = []

    def record(execute, sql, params, many, context):
        sent.append((sql, connection.connection.pgconn.pipeline_status != psycopg.pq.PipelineStatus.OFF))
        return execute(sql, params, many, context)

    # when
    with connection.execute_wrapper(record):
        decision = gate_evaluate(actor=world.ci, model_name=world.model.name, version=world.v1.version,
                                 environment="production", artifact_sha256=world.v1.artifact_sha256)
    # then: policy, requests, signatures, reports, datasets and alerts went in one pipeline, and
    # nothing else did (the version's look-up and the two inserts each go on their own)
    assert decision.allowed
    expected = [*hot_reads.gate_statements(model_version=world.v1, environment="production",
                                           statuses=("approved", "pending")),
                open_critical_alert_statement(world.v1)]
    assert [sql for sql, in_pipeline in sent if in_pipeline] == [sql for sql, _ in expected]
    assert len(sent) > len(expected)
