"""A reviewer's verification of the audit log, recorded in the log itself.

21 CFR 11.10(e) asks for an audit trail that is reviewed; recording each review (who verified,
when, with what result) is what lets the dashboard show "last verified" to every reader, in
every process, with the same tamper-evidence as the rest of the log. Like an export
(AUDIT_EXPORTED), the record is the log's own bookkeeping, not a change to governed data, so
any audit reader (the auditor included) may make one.
"""

from typing import Any

from django.db import transaction

from governance.audit import AuditAction, audit_event_record, audit_log_sequence
from governance.audit_verify import VerificationResult, audit_log_verify
from governance.errors import action_forbidden

AUDIT_LOG_OBJECT = "governance.auditlog"


def audit_log_verification_record(*, actor: Any) -> VerificationResult:
    """Chain what is queued, verify the whole log and its checkpoints, and record the outcome (AUDIT_VERIFIED).

    Refuses (403 `permission_denied`) a user who may not read the audit log. The event is
    written after the verification, so it is never part of what it vouches for.
    """
    if not actor.has_perm("governance.view_auditevent"):
        raise action_forbidden(user=actor, action="verify the audit log")
    audit_log_sequence()
    result = audit_log_verify()
    with transaction.atomic():
        audit_event_record(
            actor=actor, action=AuditAction.AUDIT_VERIFIED, object_type=AUDIT_LOG_OBJECT, object_id=result.count,
            object_repr=f"audit log, {result.count} events",
            after={"ok": result.ok, "count": result.count, "head": result.head, "broken_seq": result.broken_seq,
                   "reason": result.reason, "checkpoints_checked": result.checkpoints_checked,
                   "line": result.as_line()},
        )
    return result
