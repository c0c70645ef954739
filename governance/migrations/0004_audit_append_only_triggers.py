from django.db import migrations


def install(apps, schema_editor):
    from governance import db_triggers

    for statement in db_triggers.install_sql(schema_editor.connection, db_triggers.AUDIT_TABLES):
        schema_editor.execute(statement, params=None)


def uninstall(apps, schema_editor):
    from governance import db_triggers

    for statement in db_triggers.drop_sql(schema_editor.connection.vendor, db_triggers.AUDIT_TABLES):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("governance", "0003_audit_checkpoint")]
    operations = [migrations.RunPython(install, uninstall)]
