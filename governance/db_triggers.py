"""Database triggers that make the evidence tables append-only, on SQLite and PostgreSQL.

`AppendOnlyModel` refuses `save()` of a stored row and `delete()` in Python, but a queryset's
`update()`/`delete()`, a raw statement or a psql session on the service's database user never
reaches that code. The triggers refuse UPDATE and DELETE row by row (and TRUNCATE on PostgreSQL)
in the database itself. A database superuser can still drop them (or, on PostgreSQL, set
`session_replication_role = replica`): the hash chain and the signed checkpoints are what
catch a change made that way in the audit log, and the signatures' record hashes in the rest.

`PROTECTED_TABLES` is the one list of protected tables, each with the columns a service may
still update after insert (none today: every listed table is written once). A table with such
columns refuses an UPDATE that changes any other column, compared by value, and still refuses
every DELETE. A table that needs more than that (a status that moves, a soft delete) is not
evidence in this sense and is not listed: ApprovalRequest, Evaluation, ComplianceAlert.

Installed by migrations: governance 0004 (audit tables), governance 0014 (governance evidence),
monitoring 0004 (monitoring evidence). drop() exists for the test database's flush between
transactional tests (mlops_site.common.testing.backends) and the tamper tests; nothing in the
service calls it.

On SQLite a migration that alters a protected table rebuilds it (new table, copy, drop, rename),
which drops its triggers: such a migration must call install() again afterwards.
tests/governance/test_evidence_append_only.py checks that every listed table carries them.
"""

from __future__ import annotations

from collections.abc import Iterable

# table -> columns a service may still change after insert (empty: none).
AUDIT_TABLES: dict[str, tuple[str, ...]] = {
    "governance_auditevent": (),
    "governance_auditcheckpoint": (),
}
GOVERNANCE_EVIDENCE_TABLES: dict[str, tuple[str, ...]] = {
    "governance_signature": (),
    "governance_gatedecision": (),
    "governance_deployment": (),
    "governance_approvalpolicy": (),
    "governance_report": (),
    "governance_reportchart": (),
    "governance_dossier": (),
}
MONITORING_EVIDENCE_TABLES: dict[str, tuple[str, ...]] = {
    "monitoring_monitoringbatch": (),
    "monitoring_driftresult": (),
    "monitoring_alertsignature": (),
}
PROTECTED_TABLES: dict[str, tuple[str, ...]] = {
    **AUDIT_TABLES, **GOVERNANCE_EVIDENCE_TABLES, **MONITORING_EVIDENCE_TABLES,
}
# Why no table has a mutable column: no service, task, admin action or data migration updates or
# deletes a row of these tables (a gate decision is "used" by the deployment that points at it,
# not by a column of its own; a recompute, a policy edit or a rollback is a new row), and every
# foreign key into them is PROTECT, so no legitimate parent delete cascades into them.


def refusal(table: str) -> str:
    """The reason a refused statement gives (after "attest: UPDATE on <table> refused: ")."""
    return "the audit log is append-only" if table in AUDIT_TABLES else "evidence is append-only"


# One function for every table. Its first argument is the reason to give; the others are the table's
# mutable columns: an UPDATE is let through only when the row without those columns is unchanged.
_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION attest_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mutable text[] := TG_ARGV[1:TG_NARGS - 1];
BEGIN
    IF TG_OP = 'UPDATE' AND TG_NARGS > 1
       AND (to_jsonb(OLD) - mutable) IS NOT DISTINCT FROM (to_jsonb(NEW) - mutable) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'attest: % on % refused: %', TG_OP, TG_TABLE_NAME, TG_ARGV[0]
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""

_PG_TRIGGERS = ("no_change", "no_truncate")
_SQLITE_TRIGGERS = ("no_update", "no_delete")


def _tables(tables: Iterable[str] | None) -> dict[str, tuple[str, ...]]:
    if tables is None:
        return PROTECTED_TABLES
    return {table: PROTECTED_TABLES[table] for table in tables}


def _sqlite_raise(op: str, table: str) -> str:
    return f"SELECT RAISE(ABORT, 'attest: {op} on {table} refused: {refusal(table)}')"


def _sqlite_columns(connection, table: str) -> list[str]:
    with connection.cursor() as cursor:
        return [column.name for column in connection.introspection.get_table_description(cursor, table)]


def install_sql(connection, tables: Iterable[str] | None = None) -> list[str]:
    """The statements that (re)install the triggers of `tables` (default: every protected table).

    Idempotent: each trigger is dropped before it is created, so a second run refreshes it.
    """
    vendor = connection.vendor
    statements = []
    if vendor == "postgresql":
        statements.append(_PG_FUNCTION)
        for table, mutable in _tables(tables).items():
            arguments = ", ".join(f"'{argument}'" for argument in (refusal(table), *mutable))
            statements += [
                f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}",
                f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION attest_append_only({arguments})",
                f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION attest_append_only('{refusal(table)}')",
            ]
    elif vendor == "sqlite":
        for table, mutable in _tables(tables).items():
            when = ""
            if mutable:
                # `IS NOT` is SQLite's null-safe inequality: the same test as PostgreSQL's IS DISTINCT FROM.
                kept = [column for column in _sqlite_columns(connection, table) if column not in mutable]
                when = " WHEN " + " OR ".join(f'OLD."{column}" IS NOT NEW."{column}"' for column in kept)
            statements += [
                f"DROP TRIGGER IF EXISTS {table}_no_update",
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} FOR EACH ROW{when} "
                f"BEGIN {_sqlite_raise('UPDATE', table)}; END",
                f"DROP TRIGGER IF EXISTS {table}_no_delete",
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} FOR EACH ROW "
                f"BEGIN {_sqlite_raise('DELETE', table)}; END",
            ]
    else:
        raise NotImplementedError(f"No append-only triggers for database vendor {vendor!r}.")
    return statements


def drop_sql(vendor: str, tables: Iterable[str] | None = None) -> list[str]:
    if vendor == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {table}_{kind} ON {table}" for table in _tables(tables)
                for kind in _PG_TRIGGERS]
    return [f"DROP TRIGGER IF EXISTS {table}_{kind}" for table in _tables(tables) for kind in _SQLITE_TRIGGERS]


def installed(connection) -> dict[str, set[str]]:
    """The append-only triggers the database carries now, per protected table (names without the table)."""
    found: dict[str, set[str]] = {table: set() for table in PROTECTED_TABLES}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                           "WHERE NOT t.tgisinternal AND t.tgenabled <> 'D'")
        else:
            cursor.execute("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'")
        for table, name in cursor.fetchall():
            if table in found and name.startswith(f"{table}_"):
                found[table].add(name[len(table) + 1:])
    return found


def expected_triggers(vendor: str) -> set[str]:
    return set(_PG_TRIGGERS if vendor == "postgresql" else _SQLITE_TRIGGERS)


def install(connection, tables: Iterable[str] | None = None) -> None:
    statements = install_sql(connection, tables)
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def drop(connection, tables: Iterable[str] | None = None) -> None:
    with connection.cursor() as cursor:
        for statement in drop_sql(connection.vendor, tables):
            cursor.execute(statement)
