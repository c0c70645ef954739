import pytest
from django.db import transaction

from governance.audit import AuditAction, audit_event_record
from governance.canonical import GENESIS_HASH
from governance.models import AuditEvent


@pytest.mark.django_db
def test_recorded_event_is_chained_after_flush(audit_flush):
    # given
    with transaction.atomic():
        audit_event_record(actor=None, action=AuditAction.TEAM_CREATED, object_type="registry.team",
                           object_id=1, object_repr="risk", after={"name": "risk"})
    # when
    appended = audit_flush()
    # then
    assert appended == 1
    event = AuditEvent.objects.get()
    assert (event.seq, event.prev_hash) == (1, GENESIS_HASH)


def test_refuses_outside_a_transaction(transactional_db):
    with pytest.raises(RuntimeError):
        audit_event_record(actor=None, action=AuditAction.TEAM_CREATED, object_type="x")
