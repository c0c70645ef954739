"""Database triggers that make the audit tables append-only, on SQLite and PostgreSQL.

Installed by migration 0003. drop() exists only for the test database's flush between
transactional tests (mlops_site.common.testing.backends); nothing in the service calls it.
"""

PROTECTED_TABLES = ("governance_auditevent", "governance_auditcheckpoint")

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION attest_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'attest: % on % refused: the audit log is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""


def install_sql(vendor: str) -> list[str]:
    statements = []
    if vendor == "postgresql":
        statements.append(_PG_FUNCTION)
        for table in PROTECTED_TABLES:
            statements += [
                f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}",
                f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION attest_audit_append_only()",
                f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION attest_audit_append_only()",
            ]
    elif vendor == "sqlite":
        for table in PROTECTED_TABLES:
            for op in ("UPDATE", "DELETE"):
                statements.append(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'attest: {op} on {table} refused: the audit log is "
                    f"append-only'); END"
                )
    else:
        raise NotImplementedError(f"No append-only triggers for database vendor {vendor!r}.")
    return statements


def drop_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {table}_{kind} ON {table}"
                for table in PROTECTED_TABLES for kind in ("no_change", "no_truncate")]
    return [f"DROP TRIGGER IF EXISTS {table}_no_{op}" for table in PROTECTED_TABLES for op in ("update", "delete")]


def install(connection) -> None:
    with connection.cursor() as cursor:
        for statement in install_sql(connection.vendor):
            cursor.execute(statement)


def drop(connection) -> None:
    with connection.cursor() as cursor:
        for statement in drop_sql(connection.vendor):
            cursor.execute(statement)
