"""The audit log's tables. Nothing here imports another app: every app writes through it."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from governance.canonical import GENESIS_HASH
from mlops_site.common.models import AppendOnlyModel


class _AuditRecord(models.Model):
    """Fields shared by a queued entry and a chained event (all of them covered by the hash)."""

    timestamp = models.DateTimeField(_("timestamp"))
    # actor and payload are kept as their canonical JSON text so that a re-read hashes
    # byte-for-byte the same on SQLite and PostgreSQL (jsonb would renormalise numbers).
    actor_json = models.TextField(_("actor"))
    actor_user_id = models.BigIntegerField(_("actor user id"), null=True, blank=True, db_index=True)
    action = models.CharField(_("action"), max_length=100, db_index=True)
    object_type = models.CharField(_("object type"), max_length=100)
    object_id = models.CharField(_("object id"), max_length=100)
    object_repr = models.CharField(_("object"), max_length=300)
    payload_json = models.TextField(_("payload"))
    correlation_id = models.CharField(_("correlation id"), max_length=64, db_index=True)

    class Meta:
        abstract = True


class AuditQueueEntry(_AuditRecord):
    """An event written in the same transaction as the change it records, not yet chained.

    The sequencer (governance.audit.audit_log_sequence) moves entries into AuditEvent in
    batches under one lock, which keeps the chain linear without serialising every
    business transaction on the chain head. An entry lives here for milliseconds.
    """

    class Meta:
        verbose_name = _("queued audit entry")
        verbose_name_plural = _("queued audit entries")

    def __str__(self) -> str:
        return f"queued {self.action} #{self.pk}"


class AuditEvent(_AuditRecord, AppendOnlyModel):
    """One link of the hash chain.

    Invariants: `seq` is 1, 2, 3, … without a gap; `prev_hash` is the previous event's
    `hash` (64 zeros for seq 1); `hash = sha256(prev_hash || canonical(event))`. Rows are
    never updated or deleted: save() and delete() refuse, and database triggers reject
    UPDATE, DELETE and TRUNCATE.
    """

    edit_refusal = "Audit events are append-only; an event cannot be changed."
    delete_refusal = "Audit events are append-only; an event cannot be deleted."

    seq = models.BigIntegerField(_("sequence number"), primary_key=True)
    entry_id = models.BigIntegerField(_("queue entry"), unique=True)
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    hash = models.CharField(_("hash"), max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]
        constraints = [models.CheckConstraint(condition=models.Q(seq__gte=1), name="audit_seq_positive")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_repr}"


class AuditChainHead(models.Model):
    """The single row that serialises appends: the last chained seq and its hash."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="audit_head_single_row")]

    def __str__(self) -> str:
        return f"head {self.seq} {self.hash[:12]}"


class AuditCheckpoint(AppendOnlyModel):
    """A signed statement of the log's Merkle root at a size (RFC 6962 tree over event hashes).

    Invariants: `root` is the Merkle tree head of events 1..size; `signature` is Ed25519 by
    `public_key` over canonical {"root", "size", "timestamp"}. Append-only, like the events.
    """

    edit_refusal = "Checkpoints are append-only; a checkpoint cannot be changed."
    delete_refusal = "Checkpoints are append-only; a checkpoint cannot be deleted."

    size = models.BigIntegerField(_("tree size"), unique=True)
    root = models.CharField(_("root hash"), max_length=64)
    timestamp = models.CharField(_("timestamp"), max_length=32, help_text=_("ISO 8601 UTC, as signed"))
    signature = models.CharField(_("signature (hex)"), max_length=128)
    public_key = models.CharField(_("public key (hex, raw Ed25519)"), max_length=64)
    key_id = models.CharField(_("key id"), max_length=16, help_text=_("first 16 hex of sha256(public key)"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["size"]
        verbose_name = _("audit checkpoint")
        verbose_name_plural = _("audit checkpoints")
        constraints = [models.CheckConstraint(condition=models.Q(size__gte=0), name="checkpoint_size_nonneg")]

    def __str__(self) -> str:
        return f"checkpoint {self.size} {self.root[:12]}"

    def as_contract(self) -> dict:
        return {"size": self.size, "root": self.root, "timestamp": self.timestamp,
                "signature": self.signature, "public_key": self.public_key}
