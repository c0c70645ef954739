"""Governance's MlflowAliasAlert rows become `alias_moved` compliance alerts (then governance drops them).

Each row keeps its model, version, MLflow alias and times; an open one stays open (and so
keeps the gate closed) until a compliance officer signs it off, a resolved one is resolved
with the reason the importer had. `evidence.migrated_from` names the old row, which is what
its audit events (`governance.mlflow.alias_alert_*`) point at. The copy writes no audit event:
the audit log is written by services, and no alert changed meaning here.

`run_before` orders governance 0013 (which drops the old table) after this copy without making
governance's migrations depend on monitoring (DESIGN.md: monitoring -> governance).
"""

from django.db import migrations

ACTIVE = ("open", "acknowledged")
CLOSE_REASON = ("Closed by the MLflow importer when the alias moved to an approved version, before MLflow "
                "alias alerts were compliance alerts (no signature was needed then).")


def copy_alias_alerts(apps, schema_editor):
    old_model = apps.get_model("governance", "MlflowAliasAlert")
    alert_model = apps.get_model("monitoring", "ComplianceAlert")
    for old in old_model.objects.select_related("model").order_by("pk"):
        open_ = old.status == "open"
        closed_at = None if open_ else (old.resolved_at or old.updated_at)
        alert = alert_model.objects.create(
            model_id=old.model_id, model_version_id=old.model_version_id, monitor_id=None, kind="alias_moved",
            severity="critical", status="open" if open_ else "resolved", title=old.message[:300],
            evidence={"source": "mlflow", "tracking_uri": old.tracking_uri, "mlflow_name": old.mlflow_name,
                      "alias": old.alias, "mlflow_version": old.mlflow_version, "previous_version": None,
                      "model_version": old.model_version_id,
                      "migrated_from": {"model": "governance.mlflowaliasalert", "id": old.pk}},
            repeat_count=1, first_seen_at=old.created_at, last_seen_at=old.created_at,
            assigned_team_id=old.model.team_id, closed_at=closed_at, close_reason="" if open_ else CLOSE_REASON,
            mlflow_tracking_uri=old.tracking_uri, mlflow_name=old.mlflow_name, mlflow_alias=old.alias,
            mlflow_version=old.mlflow_version,
        )
        # auto_now_add/auto_now stamped the copy's time; keep the original's.
        alert_model.objects.filter(pk=alert.pk).update(created_at=old.created_at, updated_at=old.updated_at)


def copy_back(apps, schema_editor):
    old_model = apps.get_model("governance", "MlflowAliasAlert")
    alert_model = apps.get_model("monitoring", "ComplianceAlert")
    signature_model = apps.get_model("monitoring", "AlertSignature")
    alerts = alert_model.objects.filter(kind="alias_moved").order_by("pk")
    if signature_model.objects.filter(alert__in=alerts).exists():
        raise RuntimeError("An alias_moved alert carries a signature; signatures are never deleted, so this "
                           "migration cannot be reversed.")
    for alert in alerts:
        active = alert.status in ACTIVE
        old_model.objects.create(
            tracking_uri=alert.mlflow_tracking_uri, mlflow_name=alert.mlflow_name, alias=alert.mlflow_alias,
            mlflow_version=alert.mlflow_version, model_id=alert.model_id, model_version_id=alert.model_version_id,
            severity="critical", status="open" if active else "resolved", message=alert.title[:500],
            resolved_at=None if active else alert.closed_at)
    alerts.delete()


class Migration(migrations.Migration):

    dependencies = [
        ('monitoring', '0002_alert_without_monitor'),
        ('governance', '0011_mlflow_links'),
    ]
    run_before = [
        ('governance', '0013_delete_mlflowaliasalert'),
    ]

    operations = [
        migrations.RunPython(copy_alias_alerts, copy_back),
    ]
