from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("governance", "0004_audit_append_only_triggers"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditMerkleNode",
            fields=[
                ("pk", models.CompositePrimaryKey("level", "index", blank=True, editable=False, primary_key=True,
                                                  serialize=False)),
                ("level", models.PositiveSmallIntegerField(verbose_name="level")),
                ("index", models.BigIntegerField(verbose_name="index")),
                ("hash", models.BinaryField(max_length=32, verbose_name="hash")),
            ],
            options={
                "verbose_name": "audit Merkle node",
                "verbose_name_plural": "audit Merkle nodes",
            },
        ),
    ]
