"""Database triggers that refuse UPDATE, DELETE and (PostgreSQL) TRUNCATE on monitoring's evidence
tables: batches, drift results, alert signatures (governance.db_triggers lists them).

install_sql() creates (or replaces) the shared PostgreSQL function itself, so this migration does
not need governance's trigger migrations to have run first.
"""

from django.db import migrations


def install(apps, schema_editor):
    from governance import db_triggers

    for statement in db_triggers.install_sql(schema_editor.connection, db_triggers.MONITORING_EVIDENCE_TABLES):
        schema_editor.execute(statement, params=None)


def uninstall(apps, schema_editor):
    from governance import db_triggers

    for statement in db_triggers.drop_sql(schema_editor.connection.vendor, db_triggers.MONITORING_EVIDENCE_TABLES):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0003_mlflow_alias_alerts_copy")]
    operations = [migrations.RunPython(install, uninstall)]
