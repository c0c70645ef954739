"""The evidence bundle (evidence.zip): the dossier and everything needed to check it without Attest.

Members (docs/dossier.md):
  dossier.pdf              the PDF
  snapshot.json            the snapshot the PDF was rendered from (chart bytes as sha256)
  model-card.json          the Model Card Toolkit's top-level sections
  reports/<kind>-<id>.json and reports/charts/<id>-<name>.png
  events.jsonl             the model's audit events (contract shape), each with "inclusion_proof"
  checkpoint.json          the signed checkpoint they are proved against
  public_key.txt           its Ed25519 public key (hex)
  evidence-manifest.json   the evidence manifest; its sha256 is printed on the PDF's cover
  verify_attest_log.py     the stand-alone verifier (docs/verify_attest_log.py)
  MANIFEST.sha256          "sha256  name" for every other member, sorted by name

docs/verify_attest_log.py checks all of it: every member is covered by a hash leading back to the
evidence manifest or to the signed audit events. The manifest is part of the snapshot (the cover
prints its sha256), so the entries for the bundle's own files (`bundle_manifest_entries()`) are
computed when the snapshot is built, not here. `events_with_proofs()` reads the database; the
builder itself only packs what it is given.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from django.conf import settings

from governance.audit_selectors import audit_event_contract
from governance.canonical import canonical_bytes, canonical_json, jsonable
from governance.models import AuditEvent
from governance.reports.snapshot import DossierSnapshot, ManifestEntry, inclusion_proofs, manifest_bytes

MANIFEST_NAME = "MANIFEST.sha256"
VERIFIER_NAME = "verify_attest_log.py"
# The evidence manifest's entries for the bundle's own files, as docs/verify_attest_log.py names them.
SNAPSHOT_ENTRY = ("snapshot", "snapshot.json without manifest and manifest_sha256, canonical JSON")
MODEL_CARD_ENTRY = ("model card", "model-card.json, canonical JSON")
VERIFIER_ENTRY = ("verifier", VERIFIER_NAME)
# A fixed member time: the bundle's bytes depend on its contents only.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def events_with_proofs(snapshot: DossierSnapshot) -> list[dict[str, Any]]:
    """The snapshot's audit events in the contract's shape, each with its inclusion proof in the checkpoint."""
    if snapshot.checkpoint is None or not snapshot.audit_seqs:
        return []
    events: dict[int, dict[str, Any]] = {}
    seqs = list(snapshot.audit_seqs)
    for start in range(0, len(seqs), 500):
        for event in AuditEvent.objects.filter(seq__in=seqs[start:start + 500]).order_by("seq"):
            events[event.seq] = audit_event_contract(event)
    proofs = inclusion_proofs(seqs, {seq: e["hash"] for seq, e in events.items()}, snapshot.checkpoint)
    for proof in proofs:
        events[proof.seq]["inclusion_proof"] = {"leaf_index": proof.seq - 1, "tree_size": proof.tree_size,
                                                "audit_path": list(proof.audit_path)}
    return [events[seq] for seq in sorted(events)]


def model_card(snapshot: DossierSnapshot) -> dict[str, Any]:
    """The model card in the Model Card Toolkit's top-level sections, from the snapshot."""
    m = snapshot.model
    return {
        "model_details": {
            "name": m.name, "overview": m.description, "owners": [{"name": n} for n in m.owners], "team": m.team,
            "version": [{"name": f"v{v.version}", "date": v.created_at.isoformat(),
                         "artifact_sha256": v.artifact_sha256} for v in snapshot.versions],
            "risk_tier": m.risk_tier,
        },
        "model_parameters": {
            "versions": [{"version": v.version, "framework": v.framework, "task": v.task,
                          "hyperparameters": v.hyperparameters, "input_features": list(v.feature_names),
                          "training_data": [d for d in v.training_dataset_ids],
                          "evaluation_data": [d for d in v.evaluation_dataset_ids]} for v in snapshot.versions],
            "data": [{"id": d.id, "name": f"{d.dataset} v{d.version}", "sha256": d.sha256,
                      "sensitive_columns": list(d.sensitive_columns)} for d in snapshot.datasets],
        },
        "quantitative_analysis": {
            "performance_metrics": [{"version": v.version, "type": k, "value": val} for v in snapshot.versions
                                    for k, val in sorted(v.metrics.items())],
            "reports": [{"id": r.id, "kind": r.kind, "sha256": r.sha256} for r in snapshot.reports],
        },
        "considerations": {"use_cases": [m.intended_use] if m.intended_use else [],
                           "limitations": [m.limitations] if m.limitations else []},
    }


def verifier_source() -> bytes:
    """The stand-alone verifier's bytes (docs/ of the checkout the service runs from)."""
    return (Path(settings.BASE_DIR) / "docs" / VERIFIER_NAME).read_bytes()


def bundle_manifest_entries(snapshot: DossierSnapshot) -> list[ManifestEntry]:
    """The evidence manifest's entries covering snapshot.json, model-card.json and the verifier.

    snapshot.json holds the manifest and its sha256, so its entry hashes the rest of it; both
    JSON entries hash the canonical JSON of the content, the verifier's the file's bytes.
    """
    content = {k: v for k, v in snapshot.as_json().items() if k not in ("manifest", "manifest_sha256")}
    return [
        ManifestEntry(*SNAPSHOT_ENTRY, hashlib.sha256(canonical_bytes(content)).hexdigest()),
        ManifestEntry(*MODEL_CARD_ENTRY, hashlib.sha256(canonical_bytes(jsonable(model_card(snapshot)))).hexdigest()),
        ManifestEntry(*VERIFIER_ENTRY, hashlib.sha256(verifier_source()).hexdigest()),
    ]


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def evidence_bundle_build(*, snapshot: DossierSnapshot, pdf: bytes, events: list[dict[str, Any]]) -> bytes:
    """The zip's bytes. Deterministic for the same inputs."""
    files: dict[str, bytes] = {
        "dossier.pdf": pdf,
        "snapshot.json": _json(snapshot.as_json()),
        "model-card.json": _json(model_card(snapshot)),
        "events.jsonl": "".join(canonical_json(e) + "\n" for e in events).encode("utf-8"),
        "evidence-manifest.json": manifest_bytes(snapshot.manifest, snapshot.checkpoint),
        VERIFIER_NAME: verifier_source(),
    }
    if snapshot.checkpoint is not None:
        cp = snapshot.checkpoint
        files["checkpoint.json"] = _json({"size": cp.size, "root": cp.root, "timestamp": cp.timestamp,
                                          "signature": cp.signature, "public_key": cp.public_key})
        files["public_key.txt"] = (cp.public_key + "\n").encode("ascii")
    for report in snapshot.reports:
        files[f"reports/{report.kind}-{report.id}.json"] = _json({
            "id": report.id, "kind": report.kind, "model_version": report.model_version, "sha256": report.sha256,
            "artifact_sha256": report.artifact_sha256, "dataset_sha256": report.dataset_sha256,
            "created_at": report.created_at, "results": report.results})
        for chart in report.charts:
            files[f"reports/charts/{report.id}-{chart.name}.png"] = chart.png
    manifest = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items()))
    files[MANIFEST_NAME] = manifest.encode("utf-8")

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, files[name])
    return buffer.getvalue()
