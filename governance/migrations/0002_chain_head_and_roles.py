from django.db import migrations

ROLES = ["data_scientist", "ml_engineer", "model_validator", "compliance_officer", "risk_officer",
         "auditor", "ci_service"]


def forwards(apps, schema_editor):
    apps.get_model("governance", "AuditChainHead").objects.get_or_create(pk=1)
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [("governance", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
