"""Every way the service's own code (or a shell on its database user) could change a stored event or
checkpoint is refused, and the table is left exactly as it was (row count and checksum)."""

from collections.abc import Callable

import pytest
from django.db import DatabaseError, connection, transaction

from governance.models import AuditCheckpoint, AuditEvent
from tests.governance import tamper

REFUSED = "refused: the audit log is append-only"


@pytest.fixture
def audit_tables(db):
    """Five chained events and one checkpoint row to attack."""
    tamper.events_record(5)
    AuditCheckpoint.objects.create(size=5, root="ab" * 32, timestamp="2026-01-01T00:00:00.000000Z",
                                   signature="cd" * 64, public_key="ef" * 32, key_id="ef" * 8)


def _raw(sql: str) -> Callable[[], None]:
    def run() -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    return run


def _event_orm_save() -> None:
    event = AuditEvent.objects.get(seq=2)
    event.object_repr = "rewritten"
    event.save()


def _event_orm_save_as_new_instance() -> None:
    # An instance built by hand looks new to Python; Django then tries an UPDATE of seq 2.
    original = AuditEvent.objects.get(seq=2)
    forged = AuditEvent(**{field.attname: getattr(original, field.attname) for field in AuditEvent._meta.fields})
    forged.object_repr = "rewritten"
    forged.save()


def _event_bulk_update() -> None:
    events = list(AuditEvent.objects.filter(seq__in=[2, 3]))
    for event in events:
        event.object_repr = "rewritten"
    AuditEvent.objects.bulk_update(events, ["object_repr"])


def _checkpoint_orm_save() -> None:
    checkpoint = AuditCheckpoint.objects.get()
    checkpoint.root = "00" * 32
    checkpoint.save()


def _checkpoint_bulk_update() -> None:
    checkpoints = list(AuditCheckpoint.objects.all())
    for checkpoint in checkpoints:
        checkpoint.root = "00" * 32
    AuditCheckpoint.objects.bulk_update(checkpoints, ["root"])


def _truncate_or_delete_all(table: str) -> tuple[Callable[[], None], type[Exception], str]:
    """TRUNCATE where the vendor has it; SQLite has no TRUNCATE, its equivalent is DELETE without WHERE."""
    if connection.vendor == "postgresql":
        return _raw(f"TRUNCATE {table}"), DatabaseError, REFUSED
    return _raw(f"DELETE FROM {table}"), DatabaseError, REFUSED


EVENT_ATTEMPTS: dict[str, tuple[Callable[[], None], type[Exception], str]] = {
    "orm save() of an existing event": (_event_orm_save, PermissionError, "append-only"),
    "orm save() of a hand-built copy": (_event_orm_save_as_new_instance, DatabaseError, REFUSED),
    "model delete()": (lambda: AuditEvent.objects.get(seq=2).delete(), PermissionError, "append-only"),
    "QuerySet.update()": (lambda: AuditEvent.objects.filter(seq=2).update(object_repr="x"), DatabaseError, REFUSED),
    "QuerySet.delete()": (lambda: AuditEvent.objects.filter(seq__gte=4).delete(), DatabaseError, REFUSED),
    "QuerySet.all().delete()": (lambda: AuditEvent.objects.all().delete(), DatabaseError, REFUSED),
    "bulk_update()": (_event_bulk_update, DatabaseError, REFUSED),
    "raw UPDATE": (_raw("UPDATE governance_auditevent SET object_repr = 'x' WHERE seq = 2"), DatabaseError, REFUSED),
    "raw UPDATE of every row": (_raw("UPDATE governance_auditevent SET hash = hash"), DatabaseError, REFUSED),
    "raw DELETE": (_raw("DELETE FROM governance_auditevent WHERE seq = 5"), DatabaseError, REFUSED),
}

CHECKPOINT_ATTEMPTS: dict[str, tuple[Callable[[], None], type[Exception], str]] = {
    "orm save() of an existing checkpoint": (_checkpoint_orm_save, PermissionError, "append-only"),
    "model delete()": (lambda: AuditCheckpoint.objects.get().delete(), PermissionError, "append-only"),
    "QuerySet.update()": (lambda: AuditCheckpoint.objects.update(root="00" * 32), DatabaseError, REFUSED),
    "QuerySet.delete()": (lambda: AuditCheckpoint.objects.all().delete(), DatabaseError, REFUSED),
    "bulk_update()": (_checkpoint_bulk_update, DatabaseError, REFUSED),
    "raw UPDATE": (_raw("UPDATE governance_auditcheckpoint SET size = size + 1"), DatabaseError, REFUSED),
    "raw DELETE": (_raw("DELETE FROM governance_auditcheckpoint WHERE size = 5"), DatabaseError, REFUSED),
}


def _assert_every_attempt_refused(table: str, attempts: dict) -> None:
    count, checksum = len(tamper.table_rows(table)), tamper.table_checksum(table)
    attempts = {**attempts, "TRUNCATE / DELETE without WHERE": _truncate_or_delete_all(table)}
    for name, (attempt, error, message) in attempts.items():
        # when: each attempt in its own savepoint, so a refused statement leaves the test usable
        with pytest.raises(error, match=message):
            with transaction.atomic():
                attempt()
        # then
        assert (len(tamper.table_rows(table)), tamper.table_checksum(table)) == (count, checksum), name


def test_every_change_to_a_stored_event_is_refused(audit_tables):
    _assert_every_attempt_refused(tamper.EVENT_TABLE, EVENT_ATTEMPTS)
    assert AuditEvent.objects.count() == 5


def test_every_change_to_a_stored_checkpoint_is_refused(audit_tables):
    _assert_every_attempt_refused(tamper.CHECKPOINT_TABLE, CHECKPOINT_ATTEMPTS)
    assert AuditCheckpoint.objects.count() == 1


@pytest.mark.parametrize("table", [tamper.EVENT_TABLE, tamper.CHECKPOINT_TABLE])
def test_truncate_is_refused_where_the_vendor_has_it(audit_tables, table):
    # given
    count, checksum = len(tamper.table_rows(table)), tamper.table_checksum(table)
    # when
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError, match=f"attest: TRUNCATE on {table} {REFUSED}"):
            with transaction.atomic():
                _raw(f"TRUNCATE {table} CASCADE")()
    else:
        # SQLite has no TRUNCATE statement at all; its "truncate optimisation" is DELETE without
        # WHERE, which the DELETE trigger refuses (and the trigger turns the optimisation off).
        with pytest.raises(DatabaseError, match='near "TRUNCATE": syntax error'):
            with transaction.atomic():
                _raw(f"TRUNCATE {table}")()
        with pytest.raises(DatabaseError, match=f"attest: DELETE on {table} {REFUSED}"):
            with transaction.atomic():
                _raw(f"DELETE FROM {table}")()
    # then
    assert (len(tamper.table_rows(table)), tamper.table_checksum(table)) == (count, checksum)


def test_appending_is_still_allowed(audit_tables):
    # given
    before = AuditEvent.objects.count()
    # when
    tamper.events_record(2, start=100)
    # then
    assert AuditEvent.objects.count() == before + 2
