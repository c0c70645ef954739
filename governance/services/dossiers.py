"""Dossiers: generate the regulator's PDF, store it with its sha256, and record that it was issued.

Shape (STYLE.md): the selector governance.reports.snapshot builds a frozen snapshot; the pure
renderer governance.reports.pdf turns it into bytes; this service signs a checkpoint first (so
every event so far is provable), stores the PDF content-addressed, writes the `Dossier` row and
its audit event in one transaction. `dossier_schedule` does the same later, on Celery, after the
caller's transaction commits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from governance.audit import AuditAction, audit_event_record
from governance.checkpoints import audit_checkpoint_create
from governance.models import Dossier
from governance.outbox import outbox_enqueue
from governance.reports.bundle import events_with_proofs, evidence_bundle_build
from governance.reports.snapshot import DossierSnapshot, dossier_snapshot_build
from registry.models import ModelVersion, RegisteredModel
from registry.storage import blob_discard, blob_store


@dataclass(frozen=True)
class GeneratedDossier:
    dossier: Dossier
    snapshot: DossierSnapshot
    pdf: bytes


def dossier_generate(*, actor: Any, model: RegisteredModel, version: int | None = None,
                     progress: Callable[[str], None] | None = None) -> GeneratedDossier:
    """Build, render and store the dossier of `model` (all versions, or `version`); returns it with its bytes.

    Access is checked by the caller (governance.reports.selectors.dossier_model_get_for_user).
    Signs a checkpoint over every event so far (the service's own bookkeeping, as `audit_checkpoint`),
    then writes the Dossier row and DOSSIER_GENERATED with the PDF's and the manifest's sha256.
    """
    say = progress or (lambda step: None)
    say("checkpoint")
    audit_checkpoint_create()
    snapshot = dossier_snapshot_build(model=model, version=version, progress=progress)
    say("render")
    # Imported here, not at module load: the renderer brings reportlab and matplotlib (~0.7 s of
    # CPU and tens of MB per process), which every API worker would otherwise load at start-up
    # through the URLconf, the gate's included, for the few that ever render a PDF.
    from governance.reports.pdf import dossier_pdf_render

    rendered = dossier_pdf_render(snapshot)
    say("store")
    sha = hashlib.sha256(rendered.pdf).hexdigest()
    blob = blob_store(file=ContentFile(rendered.pdf), sha256=sha, size=len(rendered.pdf))
    try:
        with transaction.atomic():
            mv = ModelVersion.objects.get(model=model, version=version) if version is not None else None
            cp = snapshot.checkpoint
            dossier = Dossier(
                model=model, model_version=mv, sha256=sha, size=len(rendered.pdf), pages=rendered.pages,
                storage_key=blob.key, manifest_sha256=snapshot.manifest_sha256,
                checkpoint_size=cp.size if cp else 0, checkpoint_root=cp.root if cp else "",
                audit_events=snapshot.audit_event_count,
                generated_by=actor if getattr(actor, "is_authenticated", False) else None,
                generated_at=timezone.now(),
            )
            dossier.full_clean()
            dossier.save()
            audit_event_record(
                actor=actor, system="dossier", action=AuditAction.DOSSIER_GENERATED, target=dossier,
                after={"sha256": sha, "size": len(rendered.pdf), "pages": rendered.pages,
                       "manifest_sha256": snapshot.manifest_sha256, "version": version,
                       "checkpoint": {"size": dossier.checkpoint_size, "root": dossier.checkpoint_root}},
            )
    except Exception:
        blob_discard(blob)
        raise
    return GeneratedDossier(dossier=dossier, snapshot=snapshot, pdf=rendered.pdf)


@dataclass(frozen=True)
class ExportedBundle:
    generated: GeneratedDossier
    zip: bytes


def evidence_bundle_export(*, actor: Any, model: RegisteredModel, version: int | None = None,
                           progress: Callable[[str], None] | None = None) -> ExportedBundle:
    """A fresh dossier and its evidence bundle (zip bytes); records EVIDENCE_BUNDLE_EXPORTED with the zip's sha256."""
    generated = dossier_generate(actor=actor, model=model, version=version, progress=progress)
    if progress:
        progress("evidence bundle")
    bundle = evidence_bundle_build(snapshot=generated.snapshot, pdf=generated.pdf,
                                   events=events_with_proofs(generated.snapshot))
    with transaction.atomic():
        audit_event_record(
            actor=actor, system="dossier", action=AuditAction.EVIDENCE_BUNDLE_EXPORTED, target=generated.dossier,
            after={"sha256": hashlib.sha256(bundle).hexdigest(), "size": len(bundle),
                   "dossier_sha256": generated.dossier.sha256, "events": len(generated.snapshot.audit_seqs)},
        )
    return ExportedBundle(generated=generated, zip=bundle)


@transaction.atomic
def dossier_schedule(*, actor: Any, model: RegisteredModel, version: int | None = None) -> RegisteredModel:
    """Ask for a dossier to be generated on Celery once the caller's transaction commits (DOSSIER_REQUESTED)."""
    audit_event_record(actor=actor, action=AuditAction.DOSSIER_REQUESTED, target=model, after={"version": version})
    actor_id = actor.pk if getattr(actor, "is_authenticated", False) else None
    # An outbox row of this transaction: published on commit, or by the relay once the broker is back.
    outbox_enqueue("governance.tasks.dossier_generate_task", model.pk, version, actor_id)
    return model
