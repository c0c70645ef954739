"""MLflow alias moves as compliance alerts (`alias_moved`), without an MLflow server.

governance.mlflow_import.mlflow_alias_observe is what the importer and the webhook call for each
alias they see; it raises the alert through the handler monitoring installs at ready(), so these
tests exercise the same path as tests/governance/test_mlflow_import.py, minus the HTTP. The
alert has no drift monitor: the inbox, admin pages, API, notifications, dossier, KPIs and the
gate must all take it like a drift alert.
"""

import json

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from governance.audit import AuditAction
from governance.gate import gate_checks_compute
from governance.mlflow_import import ImportSummary, mlflow_alias_observe
from governance.models import AuditQueueEntry, MlflowModelVersionLink
from governance.reports.kpis import governance_kpis
from governance.reports.pdf import dossier_pdf_render
from governance.reports.snapshot import dossier_snapshot_build
from monitoring.models import AlertSignature, ComplianceAlert
from monitoring.services.alerts import compliance_alert_raise_alias_moved, compliance_alert_resolve
from monitoring.services.notifications import alert_notification_payload, alert_notification_send
from registry.models import ModelVersion
from tests.governance.workflow_factories import PASSWORD, World, version

pytestmark = pytest.mark.django_db

URI = "http://mlflow.internal:5000"
ALERTS = "/api/v1/alerts/"


def login(user) -> Client:
    User.objects.filter(pk=user.pk).update(is_staff=True)
    client = Client()
    client.force_login(User.objects.get(pk=user.pk))
    return client


def payload(entry: AuditQueueEntry) -> dict:
    return json.loads(entry.payload_json)


def linked(world: World, mlflow_version: int, model_version: ModelVersion) -> ModelVersion:
    """As the importer leaves it: MLflow `credit` version N became this Attest version."""
    MlflowModelVersionLink.objects.create(tracking_uri=URI, mlflow_name="credit", mlflow_version=mlflow_version,
                                         model_version=model_version)
    return model_version


def move(world: World, mlflow_version: int, alias: str = "champion") -> ComplianceAlert | None:
    return mlflow_alias_observe(actor=world.engineer, tracking_uri=URI, name=world.model.name, alias=alias,
                                mlflow_version=mlflow_version)


def gate_alert_check(world: World, mv: ModelVersion | None = None) -> dict:
    mv = mv or world.v1
    checks, _ = gate_checks_compute(model_version=mv, environment="production", artifact_sha256=mv.artifact_sha256)
    return next(c for c in checks if c["code"] == "open_critical_alert")


def queued(action: str) -> list[AuditQueueEntry]:
    return list(AuditQueueEntry.objects.filter(action=action).order_by("pk"))


@pytest.fixture
def world(db) -> World:
    w = World("limited")
    linked(w, 1, w.v1)
    return w


@pytest.fixture
def alert(world) -> ComplianceAlert:
    """champion moved to MLflow version 1 = Attest v1, registered but not approved."""
    return move(world, 1)


def test_an_unapproved_alias_move_opens_a_critical_alert_without_a_monitor(world):
    # when
    alert = move(world, 1)
    # then: a compliance alert like a drift one, with the alias instead of a monitor
    assert alert is not None
    alert.refresh_from_db()
    assert (alert.kind, alert.severity, alert.status, alert.monitor_id, alert.model, alert.model_version) == (
        "alias_moved", "critical", "open", None, world.model, world.v1)
    assert (alert.mlflow_tracking_uri, alert.mlflow_name, alert.mlflow_alias, alert.mlflow_version) == (
        URI, "credit", "champion", 1)
    assert alert.assigned_team == world.team and alert.repeat_count == 1
    assert alert.title == "MLflow alias credit@champion moved to credit v1 (registered), which no approval covers."
    assert alert.subject == "credit v1: MLflow credit@champion -> 1"
    assert alert.evidence == {"source": "mlflow", "tracking_uri": URI, "mlflow_name": "credit", "alias": "champion",
                              "mlflow_version": 1, "previous_version": None, "model_version": world.v1.pk,
                              "version": 1, "attest_status": "registered"}
    # and the same audit kind a drift breach writes, on the alert
    [raised] = queued(AuditAction.ALERT_RAISED)
    assert (raised.object_type, raised.object_id) == ("monitoring.compliancealert", str(alert.pk))
    assert payload(raised)["after"]["mlflow"] == {"tracking_uri": URI, "model_name": "credit", "alias": "champion",
                                                 "version": 1}
    # and the gate denies the model with the usual check code
    check = gate_alert_check(world)
    assert not check["passed"]
    assert check["message"] == f"Critical compliance alert #{alert.pk} is open for credit: {alert.title}"


def test_an_approved_target_an_ungoverned_alias_or_the_same_target_again_raise_nothing(world, settings):
    # given
    ModelVersion.objects.filter(pk=world.v1.pk).update(status=ModelVersion.Status.APPROVED)
    settings.ATTEST_MLFLOW_GOVERNED_ALIASES = ["champion"]
    # when
    approved = move(world, 1)
    ungoverned = move(world, 1, alias="challenger")
    again = move(world, 1)
    # then
    assert (approved, ungoverned, again) == (None, None, None)
    assert ComplianceAlert.objects.count() == 0
    assert gate_alert_check(world)["passed"]


def test_a_move_to_a_version_never_imported_alerts_with_no_attest_version(world):
    # when: champion points at MLflow version 7, which no import brought into Attest
    alert = move(world, 7)
    # then
    assert (alert.model, alert.model_version, alert.monitor, alert.mlflow_version) == (world.model, None, None, 7)
    assert alert.title == ("MLflow alias credit@champion moved to MLflow version 7, not imported into Attest, "
                           "which no approval covers.")
    assert alert.subject == "credit: MLflow credit@champion -> 7"
    assert not gate_alert_check(world)["passed"]


def test_a_second_unapproved_move_repeats_the_alert_and_a_move_back_does_not_close_it(world, alert):
    # given
    v2 = linked(world, 2, version(owner=world.engineer, model_=world.model))
    # when: champion moves on to another unapproved version before anyone closed the case
    summary = ImportSummary()
    repeated = mlflow_alias_observe(actor=world.engineer, tracking_uri=URI, name="credit", alias="champion",
                                    mlflow_version=2, summary=summary)
    # then: the same case, counted twice, pointing at where the alias is now
    assert repeated.pk == alert.pk and ComplianceAlert.objects.count() == 1
    alert.refresh_from_db()
    assert (alert.repeat_count, alert.mlflow_version, alert.model_version, alert.status) == (2, 2, v2, "open")
    assert alert.evidence["previous_version"] == 1
    assert summary.alerts_repeated == [alert.title] and summary.alerts_opened == []
    [repeat] = queued(AuditAction.ALERT_REPEATED)
    assert payload(repeat)["before"] == {"repeat_count": 1, "mlflow_version": 1, "model_version": world.v1.pk}
    # when: champion goes back to a version Attest approved
    ModelVersion.objects.filter(pk=world.v1.pk).update(status=ModelVersion.Status.APPROVED)
    assert move(world, 1) is None
    # then: still open; a critical case closes with a compliance officer's signature only
    alert.refresh_from_db()
    assert (alert.status, alert.repeat_count) == ("open", 2)
    assert not gate_alert_check(world)["passed"]


def test_resolving_with_the_alert_signature_clears_the_gate(world, alert):
    # when
    compliance_alert_resolve(actor=world.compliance, alert=alert, reason="champion rolled back to the approved v1",
                             password=PASSWORD)
    # then
    alert.refresh_from_db()
    signature = AlertSignature.objects.get(alert=alert)
    assert (alert.status, alert.closed_by, signature.meaning, signature.role) == (
        "resolved", world.compliance, "resolve", "compliance_officer")
    assert gate_alert_check(world) == {"code": "open_critical_alert", "passed": True,
                                       "message": "No open critical alert."}
    # and a later unapproved move opens a new case
    ModelVersion.objects.filter(pk=world.v1.pk).update(status=ModelVersion.Status.APPROVED)
    move(world, 1)
    ModelVersion.objects.filter(pk=world.v1.pk).update(status=ModelVersion.Status.REGISTERED)
    move(world, 5)
    assert ComplianceAlert.objects.filter(status="open").count() == 1
    assert ComplianceAlert.objects.count() == 2


# --- the invariants, in the database ------------------------------------------------------------

def _row(world: World, **overrides) -> ComplianceAlert:
    now = timezone.now()
    fields = dict(model=world.model, model_version=world.v1, kind="alias_moved", severity="critical", title="t",
                  evidence={}, first_seen_at=now, last_seen_at=now, assigned_team=world.team,
                  mlflow_tracking_uri=URI, mlflow_name="credit", mlflow_alias="champion", mlflow_version=1)
    fields.update(overrides)
    return ComplianceAlert(**fields)


# How each database names the violated constraint (SQLite names a unique index by its columns).
_SQLITE_UNIQUE = {"compliance_alert_one_active_alias": "UNIQUE constraint failed: monitoring_compliancealert."
                                                       "mlflow_tracking_uri, monitoring_compliancealert.mlflow_name, "
                                                       "monitoring_compliancealert.mlflow_alias"}


def _refused(row: ComplianceAlert, constraint: str) -> None:
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        row.save()
    message = str(caught.value)
    assert constraint in message or _SQLITE_UNIQUE.get(constraint, constraint) in message, message


def test_one_active_alert_per_alias_is_a_database_constraint(world, alert):
    # a second active case for the same alias is refused by the database, open or acknowledged
    _refused(_row(world), "compliance_alert_one_active_alias")
    _refused(_row(world, status="acknowledged"), "compliance_alert_one_active_alias")
    # other aliases, other models' names and other servers are other cases
    _row(world, mlflow_alias="challenger").save()
    _row(world, mlflow_name="credit-eu").save()
    _row(world, mlflow_tracking_uri="http://other:5000").save()
    # and a closed case does not count
    ComplianceAlert.objects.filter(pk=alert.pk).update(status="dismissed")
    _row(world).save()
    assert ComplianceAlert.objects.filter(mlflow_tracking_uri=URI, mlflow_name="credit", mlflow_alias="champion",
                                          status="open").count() == 1


def test_each_kind_keeps_its_shape_in_the_database(world):
    from tests.monitoring.conftest import Shop

    shop = Shop(prefix="s-")
    # an alias alert names its alias and has no monitor
    _refused(_row(world, monitor=shop.monitor), "compliance_alert_source_shape")
    _refused(_row(world, mlflow_alias=""), "compliance_alert_source_shape")
    _refused(_row(world, mlflow_version=None), "compliance_alert_source_shape")
    # a drift alert has its monitor and version, and no MLflow alias
    drift = dict(kind="data_drift", mlflow_tracking_uri="", mlflow_name="", mlflow_alias="", mlflow_version=None)
    _refused(_row(world, **drift), "compliance_alert_source_shape")
    _refused(_row(world, **{**drift, "monitor": shop.monitor, "model_version": None}),
             "compliance_alert_source_shape")
    _refused(_row(world, **{**drift, "monitor": shop.monitor, "mlflow_alias": "champion"}),
             "compliance_alert_source_shape")
    _row(world, **{**drift, "monitor": shop.monitor}).save()


# --- where officers see it ----------------------------------------------------------------------

def test_the_admin_inbox_changelist_change_and_act_pages_render_it(world, alert):
    # given
    officer = login(world.compliance)
    # when
    pages = {name: officer.get(url) for name, url in {
        "changelist": reverse("admin:monitoring_compliancealert_changelist"),
        "filtered": reverse("admin:monitoring_compliancealert_changelist") + "?kind__exact=alias_moved",
        "change": reverse("admin:monitoring_compliancealert_change", args=[alert.pk]),
        "inbox": reverse("admin:monitoring_compliancealert_inbox"),
        "act": reverse("admin:monitoring_compliancealert_act", args=[alert.pk]),
        "dashboard": reverse("admin:index"),
    }.items()}
    # then
    assert {name: page.status_code for name, page in pages.items()} == dict.fromkeys(pages, 200)
    html = {name: page.content.decode() for name, page in pages.items()}
    assert f"#{alert.pk}" in html["inbox"] and "credit v1: MLflow credit@champion -&gt; 1" in html["inbox"]
    assert "no approval covers" in html["changelist"] and "no approval covers" in html["filtered"]
    assert 'id="alert-mlflow-alias"' in html["change"] and "alert-drift-chart" not in html["change"]
    assert "Alias <code>champion</code> of MLflow model <code>credit</code>" in html["change"]
    assert "Sign off" in html["inbox"] and "electronic signature" in html["act"]
    assert f"#{alert.pk} MLflow alias credit@champion" in html["dashboard"]


def test_the_admin_change_page_renders_an_alert_on_a_version_never_imported(world):
    alert = move(world, 9)
    page = login(world.compliance).get(reverse("admin:monitoring_compliancealert_change", args=[alert.pk]))
    assert page.status_code == 200
    assert "which was never imported into Attest" in page.content.decode()


def test_an_officer_signs_it_resolved_in_the_admin(world, alert):
    # when
    response = login(world.compliance).post(reverse("admin:monitoring_compliancealert_act", args=[alert.pk]), {
        "action": "resolve", "reason": "alias rolled back", "password": PASSWORD})
    # then
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.signatures.count() == 1


def test_the_api_lists_it_with_its_mlflow_alias(world, alert):
    # given
    move(world, 4, alias="production")  # never imported: no Attest version
    api = login(world.compliance)
    # when
    listed = api.get(ALERTS, {"status": "open"})
    only_alias = api.get(ALERTS, {"kind": "alias_moved"})
    bad_kind = api.get(ALERTS, {"kind": "alias"})
    detail = api.get(f"{ALERTS}{alert.pk}/")
    # then
    assert listed.status_code == 200 and listed.json()["count"] == 2
    assert only_alias.json()["count"] == 2
    assert (bad_kind.status_code, bad_kind.json()) == (400, bad_kind.json())
    body = detail.json()
    assert {k: body[k] for k in ("id", "model", "version", "environment", "monitor", "kind", "severity", "status",
                                 "mlflow")} == {
        "id": alert.pk, "model": "credit", "version": 1, "environment": None, "monitor": None,
        "kind": "alias_moved", "severity": "critical", "status": "open",
        "mlflow": {"tracking_uri": URI, "model_name": "credit", "alias": "champion", "version": 1}}
    production = next(a for a in listed.json()["results"] if a["id"] != alert.pk)
    assert (production["version"], production["mlflow"]["version"]) == (None, 4)


def test_the_api_resolves_it_with_the_signature(world, alert):
    response = login(world.compliance).post(f"{ALERTS}{alert.pk}/resolve/",
                                            {"reason": "alias rolled back", "password": PASSWORD},
                                            content_type="application/json")
    assert response.status_code == 200 and response.json()["status"] == "resolved"
    assert len(response.json()["signatures"]) == 1


def test_notifications_describe_it_without_a_monitor(world, alert, settings):
    # given
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # when
    payload = alert_notification_payload(alert=alert, event="alert.raised")
    alert_notification_send(payload=payload, channel="email", target="officer@example.com")
    # then
    assert (payload["version"], payload["environment"], payload["kind"]) == (1, None, "alias_moved")
    assert payload["mlflow"] == {"tracking_uri": URI, "model_name": "credit", "alias": "champion", "version": 1}
    [message] = mail.outbox
    assert message.subject == f"[Attest] CRITICAL alert #{alert.pk} raised: credit v1"
    assert f"MLflow:     credit@champion -> version 1 ({URI})" in message.body


def test_the_dossier_snapshot_pdf_and_kpis_carry_it(world, alert):
    # given: one more on an MLflow version never imported (it concerns every version of the model)
    unimported = move(world, 8, alias="production")
    # when
    whole = dossier_snapshot_build(model=world.model)
    of_v1 = dossier_snapshot_build(model=world.model, version=1)
    rendered = dossier_pdf_render(of_v1)
    kpis = governance_kpis(models=[world.model])
    # then
    assert [(a.id, a.severity, a.status, a.title) for a in whole.alerts] == [
        (str(alert.pk), "critical", "open", alert.title), (str(unimported.pk), "critical", "open", unimported.title)]
    assert [a.id for a in of_v1.alerts] == [str(alert.pk), str(unimported.pk)]
    assert rendered.pdf.startswith(b"%PDF") and rendered.pages > 1
    assert (kpis["overall"]["open_alerts"], kpis["overall"]["alerts"]) == (2, 2)


def test_without_the_monitoring_handler_the_move_is_audited_but_no_alert_opens(world):
    from governance.mlflow_import import mlflow_alias_alert_handler_set

    mlflow_alias_alert_handler_set(None)
    try:
        assert move(world, 1) is None
    finally:
        mlflow_alias_alert_handler_set(compliance_alert_raise_alias_moved)
    assert ComplianceAlert.objects.count() == 0
    assert len(queued(AuditAction.MLFLOW_ALIAS_MOVED)) == 1


# --- the data migration ---------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_the_migration_copies_mlflow_alias_alerts_into_compliance_alerts():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    # given: the schema before the copy, with governance's old MlflowAliasAlert rows
    world = World("limited", prefix="mig-")
    before = [("monitoring", "0002_alert_without_monitor"), ("governance", "0012_outbox_message")]
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    executor.migrate(before)
    try:
        old_model = MigrationExecutor(connection).loader.project_state(before).apps.get_model(
            "governance", "MlflowAliasAlert")
        opened = old_model.objects.create(tracking_uri=URI, mlflow_name="credit", alias="champion", mlflow_version=3,
                                          model_id=world.model.pk, model_version_id=world.v1.pk,
                                          message="MLflow alias credit@champion moved to credit v1 (registered)")
        closed = old_model.objects.create(tracking_uri=URI, mlflow_name="credit", alias="prod", mlflow_version=9,
                                          model_id=world.model.pk, model_version_id=None, status="resolved",
                                          resolved_at=timezone.now(), message="moved to MLflow version 9")
        # when
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(leaves)
    finally:
        MigrationExecutor(connection).migrate(leaves)
    # then: one compliance alert each, the open one still closing the gate
    copied = {a.mlflow_alias: a for a in ComplianceAlert.objects.filter(kind="alias_moved")}
    assert sorted(copied) == ["champion", "prod"]
    champion, prod = copied["champion"], copied["prod"]
    assert (champion.status, champion.severity, champion.monitor_id, champion.model_version_id,
            champion.mlflow_version, champion.assigned_team_id, champion.first_seen_at) == (
        "open", "critical", None, world.v1.pk, 3, world.team.pk, opened.created_at)
    assert champion.evidence["migrated_from"] == {"model": "governance.mlflowaliasalert", "id": opened.pk}
    assert (prod.status, prod.model_version_id, prod.closed_at, prod.mlflow_tracking_uri) == (
        "resolved", None, closed.resolved_at, URI)
    assert prod.close_reason.startswith("Closed by the MLflow importer")
    assert not gate_alert_check(world)["passed"]
    assert "governance_mlflowaliasalert" not in connection.introspection.table_names()
