"""Read-only back-office pages of the audit log: events (with canonical form, hashes and proof) and checkpoints.

Nothing here writes: add, change and delete are refused for both models, as for every audit
admin (STYLE.md §12). Imported from governance/admin.py.
"""

import json

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from governance.admin_approvals import utc_text
from governance.audit import audit_event_canonical
from governance.audit_selectors import audit_event_inclusion_proof
from governance.canonical import GENESIS_HASH, canonical_json, event_hash
from governance.checkpoints import checkpoint_signature_valid, inclusion_proof_valid
from governance.models import AuditCheckpoint, AuditEvent
from mlops_site.common.admin import ReadOnlyAdmin
from mlops_site.common.errors import ApplicationError


def _pre(text: str):
    return format_html('<pre style="white-space: pre-wrap; word-break: break-all">{}</pre>', text)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("seq", "timestamp_utc", "actor_display", "action", "object_display", "short_hash")
    list_filter = ("action", "object_type")
    search_fields = ("=seq", "object_repr", "=object_id", "=correlation_id", "=hash", "actor_json")
    date_hierarchy = "timestamp"
    ordering = ("-seq",)
    list_per_page = 100
    show_full_result_count = False  # a COUNT(*) over millions of events per page view is not worth it
    fields = readonly_fields = (
        "seq", "timestamp_utc", "actor_display", "action", "object_type", "object_id", "object_repr",
        "correlation_id", "payload_display", "canonical_display", "prev_hash", "hash", "event_check_display",
        "proof_display",
    )

    @admin.display(description="timestamp", ordering="timestamp")
    def timestamp_utc(self, obj: AuditEvent) -> str:
        return utc_text(obj.timestamp)

    @admin.display(description="actor")
    def actor_display(self, obj: AuditEvent) -> str:
        actor = json.loads(obj.actor_json)
        return actor.get("username") or f"system: {actor.get('system')}"

    @admin.display(description="object")
    def object_display(self, obj: AuditEvent) -> str:
        return f"{obj.object_type} #{obj.object_id} {obj.object_repr}".strip()

    @admin.display(description="hash")
    def short_hash(self, obj: AuditEvent) -> str:
        return obj.hash[:12] + "…"

    @admin.display(description="payload")
    def payload_display(self, obj: AuditEvent):
        return _pre(json.dumps(json.loads(obj.payload_json), indent=2, ensure_ascii=False, sort_keys=True))

    @admin.display(description="canonical JSON (hashed after the previous hash)")
    def canonical_display(self, obj: AuditEvent):
        return _pre(canonical_json(audit_event_canonical(obj)))

    @admin.display(description="this event checks")
    def event_check_display(self, obj: AuditEvent):
        """Recomputed now from the stored bytes: the event's hash, its link to the previous event, its proof."""
        recomputed = event_hash(obj.prev_hash, audit_event_canonical(obj))
        previous = AuditEvent.objects.filter(seq=obj.seq - 1).values_list("hash", flat=True).first()
        linked = obj.prev_hash == (previous if obj.seq > 1 else GENESIS_HASH)
        try:
            proof = audit_event_inclusion_proof(seq=obj.seq)
        except ApplicationError as exc:
            proof_text = f"no proof: {exc.message}"
        else:
            proof_text = (f"valid against the signed checkpoint of size {proof['tree_size']}"
                          if inclusion_proof_valid(proof) else "INVALID")
        rows = (("hash recomputes from the canonical JSON", "yes" if recomputed == obj.hash else "NO"),
                (f"previous hash is the hash of event seq {obj.seq - 1}" if obj.seq > 1
                 else "previous hash is the genesis hash", "yes" if linked else "NO"),
                ("inclusion proof", proof_text))
        return format_html("<table>{}</table>", format_html_join(
            "", '<tr><th scope="row">{}</th><td>{}</td></tr>', rows))

    @admin.display(description="inclusion proof (latest checkpoint)")
    def proof_display(self, obj: AuditEvent):
        try:
            proof = audit_event_inclusion_proof(seq=obj.seq)
        except ApplicationError as exc:
            return exc.message
        return _pre(json.dumps(proof, indent=2))


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("size", "short_root", "timestamp", "key_id", "signature_ok")
    ordering = ("-size",)
    search_fields = ("=size", "=root", "=key_id")
    # `timestamp` stays the ISO 8601 text that was signed; `created_at` is a datetime like any other.
    fields = readonly_fields = ("size", "root", "timestamp", "signature", "public_key", "key_id", "signature_ok",
                                "created_at_utc")

    @admin.display(description="root")
    def short_root(self, obj: AuditCheckpoint) -> str:
        return obj.root[:16] + "…"

    @admin.display(description="created at", ordering="created_at")
    def created_at_utc(self, obj: AuditCheckpoint) -> str:
        return utc_text(obj.created_at)

    @admin.display(description="signature valid", boolean=True)
    def signature_ok(self, obj: AuditCheckpoint) -> bool:
        return checkpoint_signature_valid(obj)
