"""What a database owner can do that the service cannot: write to the audit tables past the triggers.

The tamper tests play that attacker. On PostgreSQL a superuser sets `session_replication_role =
replica`, under which ordinary triggers do not fire; on SQLite, which has no such switch, the
attacker drops the triggers (governance.db_triggers.drop), writes, and puts them back. Either
way the change lands in the stored bytes, which is what the verifier must then notice.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

from django.db import connection

from governance import db_triggers
from governance.models import AuditChainHead

EVENT_TABLE = "governance_auditevent"
CHECKPOINT_TABLE = "governance_auditcheckpoint"


@contextlib.contextmanager
def triggers_bypassed() -> Iterator[None]:
    """Statements inside run with the append-only triggers out of the way, then they are back."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
        try:
            yield
        except BaseException:
            # Inside a transaction PostgreSQL has aborted it: no statement runs until the
            # caller rolls back, and that rollback undoes the SET as well.
            if not connection.in_atomic_block:
                with connection.cursor() as cursor:
                    cursor.execute("SET session_replication_role = DEFAULT")
            raise
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = DEFAULT")
    else:
        db_triggers.drop(connection)
        try:
            yield
        finally:
            db_triggers.install(connection)


def execute(sql: str, params: list[Any] | tuple[Any, ...] = ()) -> None:
    """One raw statement past the triggers."""
    with triggers_bypassed(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def timestamp_sql() -> str:
    """The timestamp column as text: SQLite's stored spelling, PostgreSQL's output form."""
    return "CAST(timestamp AS text)" if connection.vendor == "sqlite" else "timestamp::text"


def timestamp_param() -> str:
    """The placeholder that writes timestamp text back (PostgreSQL parses it to the instant)."""
    return "%s" if connection.vendor == "sqlite" else "%s::timestamptz"


def event_field_get(seq: int, column: str) -> Any:
    expression = timestamp_sql() if column == "timestamp" else column
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {expression} FROM {EVENT_TABLE} WHERE seq = %s", [seq])
        row = cursor.fetchone()
    if row is None:
        raise LookupError(f"no event with seq {seq}")
    return row[0]


def event_field_set(seq: int, column: str, value: Any) -> None:
    """UPDATE one stored field of one event, past the triggers."""
    placeholder = timestamp_param() if column == "timestamp" else "%s"
    execute(f"UPDATE {EVENT_TABLE} SET {column} = {placeholder} WHERE seq = %s", [value, seq])


def event_delete(*seqs: int) -> None:
    placeholders = ",".join(["%s"] * len(seqs))
    execute(f"DELETE FROM {EVENT_TABLE} WHERE seq IN ({placeholders})", list(seqs))


def event_row(seq: int) -> dict[str, Any]:
    """Every stored column of one event, the timestamp as text (ready to be inserted again)."""
    columns = event_columns()
    expressions = [f"{timestamp_sql()}" if name == "timestamp" else name for name in columns]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(expressions)} FROM {EVENT_TABLE} WHERE seq = %s", [seq])
        row = cursor.fetchone()
    if row is None:
        raise LookupError(f"no event with seq {seq}")
    return dict(zip(columns, row, strict=True))


def event_insert(row: dict[str, Any]) -> None:
    """INSERT an event row as given (the triggers never refused inserts: appending is the job)."""
    columns = list(row)
    placeholders = [timestamp_param() if name == "timestamp" else "%s" for name in columns]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {EVENT_TABLE} ({', '.join(columns)}) VALUES ({', '.join(placeholders)})",
            [row[name] for name in columns],
        )


def event_columns() -> list[str]:
    with connection.cursor() as cursor:
        return [column.name for column in connection.introspection.get_table_description(cursor, EVENT_TABLE)]


def chain_head_set(seq: int, hash_hex: str) -> None:
    """Move the chain head row (it is not append-only: the sequencer moves it on every batch)."""
    AuditChainHead.objects.filter(pk=1).update(seq=seq, hash=hash_hex)


def table_rows(table: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} ORDER BY 1")
        return cursor.fetchall()


def table_checksum(table: str) -> str:
    """sha256 over every stored row, in key order: any change to any value changes it."""
    digest = hashlib.sha256()
    for row in table_rows(table):
        digest.update(repr(row).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def events_record(count: int, *, per_transaction: int = 100, start: int = 0) -> None:
    """Record `count` events through the audit writer, then chain them with the sequencer.

    Payloads mix what real services store (text with non-ASCII letters, floats that print in
    exponent form, nested lists, booleans, nulls) so that every canonical-JSON rule is exercised.
    """
    from django.db import transaction

    from governance.audit import AuditAction, audit_event_record, audit_log_sequence

    done = 0
    while done < count:
        with transaction.atomic():
            for index in range(start + done, start + min(count, done + per_transaction)):
                audit_event_record(
                    actor=None, system="tamper-test", action=AuditAction.MODEL_UPDATED,
                    object_type="registry.registeredmodel", object_id=index, object_repr=f"modèle {index}",
                    before={"risk_tier": "limited"}, after={"risk_tier": "high", "score": index * 1e17},
                    reason=f"re-tiered «{index}»",
                    payload={"tags": ["a", index, None, True], "ratio": index / 7, "nested": {"z": 1, "a": [2]}},
                )
        done = min(count, done + per_transaction)
    audit_log_sequence()
