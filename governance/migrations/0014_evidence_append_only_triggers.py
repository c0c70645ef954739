"""Database triggers that refuse UPDATE, DELETE and (PostgreSQL) TRUNCATE on governance's evidence
tables, as 0004 does for the audit tables (governance.db_triggers lists them).

The audit tables' triggers are installed again so that they use the one function every protected
table shares; the function 0004 created before it existed is then dropped.
"""

from django.db import migrations


def install(apps, schema_editor):
    from governance import db_triggers

    tables = [*db_triggers.AUDIT_TABLES, *db_triggers.GOVERNANCE_EVIDENCE_TABLES]
    for statement in db_triggers.install_sql(schema_editor.connection, tables):
        schema_editor.execute(statement, params=None)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS attest_audit_append_only()", params=None)


def uninstall(apps, schema_editor):
    from governance import db_triggers

    for statement in db_triggers.drop_sql(schema_editor.connection.vendor, db_triggers.GOVERNANCE_EVIDENCE_TABLES):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("governance", "0013_delete_mlflowaliasalert")]
    operations = [migrations.RunPython(install, uninstall)]
