"""Seed version 1 of the approval policy of each risk tier (issue 4's defaults).

Written without an audit event: a migration runs before any user exists, and the policy rows
themselves (created_by empty, change_reason below) say where version 1 came from.
"""

from django.db import migrations

ENVIRONMENTS = ["staging", "production"]
DEFAULTS = {
    "high": {
        "required_roles": {"model_validator": 1, "compliance_officer": 1, "risk_officer": 1},
        "required_reports": ["fairness", "explainability"],
        "thresholds": {"demographic_parity_ratio_min": 0.8, "equalized_odds_difference_max": 0.1,
                       "metric": "accuracy", "metric_min": 0.7},
    },
    "limited": {"required_roles": {"model_validator": 1, "compliance_officer": 1}},
    "minimal": {"required_roles": {"ml_engineer": 1}},
    "unacceptable": {"approvable": False, "required_roles": {}},
}


def forwards(apps, schema_editor):
    ApprovalPolicy = apps.get_model("governance", "ApprovalPolicy")
    for tier, rules in DEFAULTS.items():
        if ApprovalPolicy.objects.filter(risk_tier=tier).exists():
            continue
        ApprovalPolicy.objects.create(
            risk_tier=tier, version=1, approvable=rules.get("approvable", True), environments=ENVIRONMENTS,
            required_roles=rules["required_roles"], required_reports=rules.get("required_reports", []),
            thresholds=rules.get("thresholds", {}), max_report_age_days=90, max_approval_age_days=30,
            change_reason="default policy (migration 0007)",
        )


class Migration(migrations.Migration):
    dependencies = [("governance", "0006_approvals_policies_deployments")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
