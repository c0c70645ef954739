"""Export of the audit log as JSON Lines: the events in seq order, then the latest signed checkpoint.

Line format: one event per line in the contract's shape (canonical JSON, so the bytes of each
line are reproducible), then `{"checkpoint": {"size", "root", "timestamp", "signature",
"public_key"}}`. docs/verify_attest_log.py re-verifies such a file without Django.

A checkpoint over every event so far is signed first. The export itself is logged
(AUDIT_EXPORTED); that event, like the checkpoint's own event, is chained after the export's last
seq, so it appears in the next export, not in this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TextIO

from django.db import transaction

from governance.audit import AuditAction, audit_event_record, audit_log_sequence
from governance.audit_selectors import audit_event_contract, audit_event_iter
from governance.canonical import GENESIS_HASH, canonical_json
from governance.checkpoints import audit_checkpoint_create
from governance.models import AuditChainHead


@dataclass(frozen=True)
class ExportSummary:
    count: int
    head: str
    checkpoint: dict[str, Any]


def audit_log_export(*, out: TextIO, actor: Any = None, destination: str = "") -> ExportSummary:
    """Stream the log to `out` and record that it was read. Returns what was written."""
    checkpoint = audit_checkpoint_create(actor=actor).as_contract()
    audit_log_sequence()
    last_seq = AuditChainHead.objects.get(pk=1).seq
    count, head = 0, GENESIS_HASH
    for event in audit_event_iter(last_seq=last_seq):
        out.write(canonical_json(audit_event_contract(event)) + "\n")
        count, head = event.seq, event.hash
    out.write(canonical_json({"checkpoint": checkpoint}) + "\n")
    with transaction.atomic():
        audit_event_record(
            actor=actor, system="export_audit_log", action=AuditAction.AUDIT_EXPORTED,
            object_type="governance.auditlog", object_id="", object_repr="audit log",
            payload={"count": count, "head": head, "checkpoint_size": checkpoint["size"],
                     "destination": destination},
        )
    return ExportSummary(count=count, head=head, checkpoint=checkpoint)
