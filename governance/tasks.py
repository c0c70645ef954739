"""Celery tasks of the governance app: each loads what it needs and calls one service.

The beat schedule (settings.CELERY_BEAT_SCHEDULE) runs the sequencer every few seconds and the
checkpoint every few minutes; the sequencer task also asks for a checkpoint as soon as
ATTEST_CHECKPOINT_EVERY_EVENTS events are past the latest one. Both are idempotent.
"""

from celery import shared_task

from governance.audit import audit_log_sequence
from governance.checkpoints import audit_checkpoint_create, audit_checkpoint_due


@shared_task(name="governance.tasks.audit_log_sequence_task")
def audit_log_sequence_task() -> int:
    """Chain queued audit entries (a safety net: they are chained on commit already)."""
    appended = audit_log_sequence()
    if audit_checkpoint_due():
        audit_checkpoint_create_task.delay()
    return appended


@shared_task(name="governance.tasks.audit_checkpoint_create_task")
def audit_checkpoint_create_task() -> int:
    """Sign a checkpoint over every event so far; returns its size."""
    return audit_checkpoint_create().size
