"""Monitoring's evidence (batches, drift results, alert signatures) is append-only in the database:
a queryset update, a raw UPDATE/DELETE or a TRUNCATE (PostgreSQL) is refused and every row stays as
it was. ComplianceAlert is not among them: a case moves open -> acknowledged -> closed.
"""

import pytest

from governance import db_triggers
from monitoring.models import AlertSignature, ComplianceAlert, DriftResult, MonitoringBatch
from monitoring.services.alerts import compliance_alert_acknowledge, compliance_alert_resolve
from tests.governance.test_evidence_append_only import (
    assert_every_attempt_refused,
    orm_attempts,
    raw_attempts,
    table_state,
)
from tests.governance.workflow_factories import PASSWORD
from tests.monitoring.conftest import Shop
from tests.monitoring.test_alerts import drifted

TAMPERING = {
    "monitoring_monitoringbatch": "row_count = row_count + 1",
    "monitoring_driftresult": "drift_share = 0",
    "monitoring_alertsignature": "reason = 'tampered'",
}
MODELS = {model._meta.db_table: model for model in (MonitoringBatch, DriftResult, AlertSignature)}


@pytest.fixture
def closed_alert(shop: Shop) -> ComplianceAlert:
    """A drifted batch, its result, and the critical alert it raised, resolved under a signature."""
    alert = drifted(shop)
    compliance_alert_resolve(actor=shop.world.compliance, alert=alert, reason="Explained by the new branch network.",
                             password=PASSWORD)
    for model in MODELS.values():
        assert model.objects.exists(), model
    return alert


def test_the_monitoring_evidence_tables_are_the_listed_ones():
    assert set(MODELS) == set(db_triggers.MONITORING_EVIDENCE_TABLES)
    assert "monitoring_compliancealert" not in db_triggers.PROTECTED_TABLES


@pytest.mark.parametrize("table", sorted(db_triggers.MONITORING_EVIDENCE_TABLES))
def test_every_raw_change_to_a_monitoring_evidence_row_is_refused(closed_alert, table):
    assert_every_attempt_refused(table, raw_attempts(table, TAMPERING[table]))


@pytest.mark.parametrize("table", sorted(db_triggers.MONITORING_EVIDENCE_TABLES))
def test_queryset_update_and_delete_of_monitoring_evidence_are_refused(closed_alert, table):
    model = MODELS[table]
    field = next(f for f in model._meta.concrete_fields if f.get_internal_type() == "CharField")
    assert_every_attempt_refused(table, orm_attempts(model, field.attname, "tampered"))


def test_an_alert_still_moves_through_its_states(shop):
    # given: a batch and a result (protected) that an open alert (not protected) points at
    alert = drifted(shop)
    evidence = {table: table_state(table) for table in ("monitoring_monitoringbatch", "monitoring_driftresult")}
    # when
    compliance_alert_acknowledge(actor=shop.world.engineer, alert=alert, reason="Looking into it.")
    compliance_alert_resolve(actor=shop.world.compliance, alert=alert, reason="Explained by the new branch network.",
                             password=PASSWORD)
    # then
    alert.refresh_from_db()
    assert alert.status == ComplianceAlert.Status.RESOLVED
    assert AlertSignature.objects.filter(alert=alert).count() == 1
    assert {table: table_state(table) for table in evidence} == evidence
