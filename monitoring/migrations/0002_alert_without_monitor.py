"""Compliance alerts without a drift monitor: the `alias_moved` kind and where the MLflow alias went.

Schema only; monitoring 0003 copies governance's MlflowAliasAlert rows in (a separate
migration, so PostgreSQL never alters the table in a transaction that has already written to it).
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('monitoring', '0001_drift_monitoring'),
        ('registry', '0002_sensitive_columns_blank'),
    ]

    operations = [
        migrations.AddField(
            model_name='compliancealert',
            name='mlflow_alias',
            field=models.CharField(blank=True, default='', max_length=255, verbose_name='MLflow alias'),
        ),
        migrations.AddField(
            model_name='compliancealert',
            name='mlflow_name',
            field=models.CharField(blank=True, default='', max_length=500, verbose_name='MLflow model name'),
        ),
        migrations.AddField(
            model_name='compliancealert',
            name='mlflow_tracking_uri',
            field=models.CharField(blank=True, default='', max_length=500, verbose_name='MLflow tracking URI'),
        ),
        migrations.AddField(
            model_name='compliancealert',
            name='mlflow_version',
            field=models.PositiveIntegerField(blank=True, null=True, verbose_name='MLflow version the alias points at'),
        ),
        migrations.AlterField(
            model_name='compliancealert',
            name='kind',
            field=models.CharField(choices=[('data_drift', 'data drift'), ('concept_drift', 'concept drift (performance)'), ('fairness_drift', 'fairness drift'), ('data_quality', 'data quality'), ('alias_moved', 'MLflow alias moved to an unapproved version')], max_length=20, verbose_name='kind'),
        ),
        migrations.AlterField(
            model_name='compliancealert',
            name='model_version',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='compliance_alerts', to='registry.modelversion'),
        ),
        migrations.AlterField(
            model_name='compliancealert',
            name='monitor',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='alerts', to='monitoring.driftmonitor'),
        ),
        migrations.AddConstraint(
            model_name='compliancealert',
            constraint=models.UniqueConstraint(condition=models.Q(('kind', 'alias_moved'), ('status__in', ['open', 'acknowledged'])), fields=('mlflow_tracking_uri', 'mlflow_name', 'mlflow_alias'), name='compliance_alert_one_active_alias'),
        ),
        migrations.AddConstraint(
            model_name='compliancealert',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('kind', 'alias_moved'), ('mlflow_version__isnull', False), ('monitor__isnull', True), models.Q(('mlflow_tracking_uri', ''), _negated=True), models.Q(('mlflow_name', ''), _negated=True), models.Q(('mlflow_alias', ''), _negated=True)), models.Q(models.Q(('kind', 'alias_moved'), _negated=True), ('mlflow_alias', ''), ('mlflow_name', ''), ('mlflow_tracking_uri', ''), ('mlflow_version__isnull', True), ('model_version__isnull', False), ('monitor__isnull', False)), _connector='OR'), name='compliance_alert_source_shape'),
        ),
    ]
