"""MlflowAliasAlert is gone: an unapproved MLflow alias move is a monitoring ComplianceAlert
(`alias_moved`). Monitoring 0003 copies the rows first (its `run_before` names this migration)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('governance', '0012_outbox_message'),
    ]

    operations = [
        migrations.DeleteModel(
            name='MlflowAliasAlert',
        ),
    ]
