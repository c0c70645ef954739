"""The dossier's snapshot: everything the PDF, the evidence bundle and the compliance map show.

`dossier_snapshot_build()` is a selector: it reads the system of record once and returns a
frozen `DossierSnapshot`; the renderer (governance.reports.pdf) and the bundle
(governance.reports.bundle) only read the snapshot, so the PDF, the JSON and the mapping all
describe the same moment. The snapshot is built against one signed checkpoint: it shows the
model's audit events up to that checkpoint's size, each provably in the signed log.

Sections that other parts of Attest fill (fairness and explainability reports, drift results,
alerts) are always present; empty means "nothing recorded", and the dossier says so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone

from governance.audit import AuditAction
from governance.canonical import canonical_bytes, jsonable
from governance.checkpoints import checkpoint_signature_valid, key_id
from governance.merkle import _path, leaf_hash, verify_inclusion
from governance.merkle_store import DatabaseNodeStore
from governance.models import ApprovalRequest, AuditCheckpoint, AuditEvent, Deployment, GateDecision, Signature
from governance.reports.providers import dossier_evidence_collect
from governance.selectors import model_version_reports, user_printed_name
from governance.services.signatures import signature_verify
from mlops_site.common.ids import is_id_text
from registry.models import DatasetVersion, ModelVersion, RegisteredModel

# Routine events: many, alike, individually uninteresting; older ones are summarised (counts and
# hash ranges) so a model with thousands of them keeps a readable dossier. Gate decisions cited
# by a deployment or allowing a release are never routine (see _is_routine).
ROUTINE_ACTIONS = ("governance.gate.evaluated", "monitoring.batch.ingested", "monitoring.drift.checked",
                   "monitoring.alert.repeated")
RECENT_ROUTINE_IN_FULL = 300
# Gate decisions whose inclusion proof is printed besides the allowing and cited ones.
RECENT_DENIED_PROOFS = 10
_PROOF_BATCH = 40  # each proof asks for up to ~log2(size) nodes; SQLite caps an expression at depth 1000
# Gate decisions listed in their own table (the latest); all of them are in the audit trail.
SHOWN_GATE_DECISIONS = 200

Progress = Callable[[str], None]
# The steps the service reports, in order (the management command's progress bar counts them).
PROGRESS_STEPS = ("checkpoint", "registry", "reports", "approvals", "monitoring", "audit trail", "inclusion proofs",
                  "kpis and compliance map", "manifest", "render", "store")


# --- the snapshot's parts ----------------------------------------------------------------------

@dataclass(frozen=True)
class CheckpointInfo:
    size: int
    root: str
    timestamp: str
    signature: str
    public_key: str
    key_id: str
    signature_valid: bool


@dataclass(frozen=True)
class ModelInfo:
    id: int
    name: str
    team: str
    risk_tier: str
    description: str
    intended_use: str
    limitations: str
    created_at: dt.datetime
    created_by: str
    owners: tuple[str, ...]
    archived: bool


@dataclass(frozen=True)
class VersionInfo:
    id: int
    version: int
    artifact_sha256: str
    artifact_size: int | None
    artifact_format: str
    artifact_uri: str
    framework: str
    framework_version: str
    task: str
    code_repository: str
    code_commit: str
    hyperparameters: dict
    metrics: dict
    feature_names: tuple[str, ...]
    status: str
    description: str
    created_at: dt.datetime
    created_by: str
    authors: tuple[str, ...]
    parent_version: int | None
    training_dataset_ids: tuple[int, ...]
    evaluation_dataset_ids: tuple[int, ...]


@dataclass(frozen=True)
class DatasetInfo:
    id: int
    dataset: str
    version: int
    sha256: str
    size: int
    format: str
    row_count: int | None
    columns: tuple[tuple[str, str], ...]
    target_column: str
    sensitive_columns: tuple[str, ...]
    license: str
    provenance: str
    source_uri: str
    created_at: dt.datetime
    created_by: str
    used_as: tuple[str, ...]  # "training v1", "evaluation v2", ...


@dataclass(frozen=True)
class ChartImage:
    name: str
    sha256: str
    png: bytes = field(repr=False)
    title: str = ""


@dataclass(frozen=True)
class ReportInfo:
    id: str
    kind: str  # fairness | explainability | ...
    model_version: int
    sha256: str
    artifact_sha256: str
    dataset_sha256: str
    created_at: str
    results: dict
    charts: tuple[ChartImage, ...]


@dataclass(frozen=True)
class SignatureInfo:
    id: int
    printed_name: str
    username: str
    role: str
    meaning: str
    reason: str
    signed_at: dt.datetime
    record_sha256: str
    binds_record: bool
    audit_seq: int | None


@dataclass(frozen=True)
class ApprovalInfo:
    id: int
    kind: str
    status: str
    model_version: int | None
    environment: str
    reason: str
    requested_by: str
    opened_at: dt.datetime
    decided_at: dt.datetime | None
    decision_reason: str
    evidence_sha256: str
    policy: dict
    signatures: tuple[SignatureInfo, ...]


@dataclass(frozen=True)
class GateDecisionInfo:
    id: int
    decision_id: str
    model_version: int
    environment: str
    artifact_sha256: str
    allowed: bool
    failed_checks: tuple[str, ...]
    evaluated_at: dt.datetime
    evaluated_by: str
    audit_seq: int | None


@dataclass(frozen=True)
class DeploymentInfo:
    id: int
    environment: str
    model_version: int
    artifact_sha256: str
    deployed_at: dt.datetime
    deployed_by: str
    decision_id: str
    approval_request_id: int | None
    is_rollback: bool
    previous_version: int | None


@dataclass(frozen=True)
class DriftPoint:
    at: str
    monitor: str
    feature: str
    metric: str
    value: float | None
    threshold: float | None
    breached: bool


@dataclass(frozen=True)
class AlertInfo:
    id: str
    severity: str
    status: str
    title: str
    opened_at: str
    resolved_at: str
    resolution: str


@dataclass(frozen=True)
class AuditRow:
    seq: int
    timestamp: str
    actor: str
    action: str
    object_type: str
    object_id: str
    object_repr: str
    hash: str


@dataclass(frozen=True)
class AuditSummaryRow:
    """Older routine events of one action on one day: how many, and the seq and hash range."""

    action: str
    day: str
    count: int
    first_seq: int
    last_seq: int
    first_hash: str
    last_hash: str


@dataclass(frozen=True)
class InclusionProof:
    seq: int
    label: str
    leaf_hash: str
    event_hash: str
    tree_size: int
    audit_path: tuple[str, ...]
    verified: bool


@dataclass(frozen=True)
class ManifestEntry:
    kind: str
    name: str
    sha256: str


@dataclass(frozen=True)
class DossierSnapshot:
    """Everything one dossier shows, read at one moment against one signed checkpoint."""

    generated_at: dt.datetime
    model: ModelInfo
    scope_version: int | None  # None: all versions
    versions: tuple[VersionInfo, ...]
    datasets: tuple[DatasetInfo, ...]
    lineage: dict
    reports: tuple[ReportInfo, ...]
    approvals: tuple[ApprovalInfo, ...]
    gate_decisions: tuple[GateDecisionInfo, ...]
    gate_decision_count: int
    deployments: tuple[DeploymentInfo, ...]
    drift: tuple[DriftPoint, ...]
    alerts: tuple[AlertInfo, ...]
    checkpoint: CheckpointInfo | None
    audit_rows: tuple[AuditRow, ...]
    audit_summary: tuple[AuditSummaryRow, ...]
    audit_event_count: int
    audit_seqs: tuple[int, ...]  # every event of the model covered by the checkpoint (for the bundle)
    events_after_checkpoint: int
    proofs: tuple[InclusionProof, ...]
    kpis: dict
    compliance: tuple[dict, ...]
    manifest: tuple[ManifestEntry, ...]
    manifest_sha256: str

    @property
    def retraining_requests(self) -> tuple[ApprovalInfo, ...]:
        return tuple(a for a in self.approvals if a.kind == ApprovalRequest.Kind.RETRAINING)

    @property
    def deployment_requests(self) -> tuple[ApprovalInfo, ...]:
        return tuple(a for a in self.approvals if a.kind == ApprovalRequest.Kind.DEPLOYMENT)

    @property
    def title_version(self) -> str:
        if self.scope_version is not None:
            return f"v{self.scope_version}"
        return ", ".join(f"v{v.version}" for v in self.versions) or "no version registered"

    def as_json(self) -> dict[str, Any]:
        """The snapshot as plain JSON (chart bytes replaced by their sha256)."""
        def convert(value: Any) -> Any:
            if isinstance(value, ChartImage):
                return {"name": value.name, "title": value.title, "sha256": value.sha256}
            if dataclasses.is_dataclass(value):
                return {f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
            if isinstance(value, dict):
                return {str(k): convert(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [convert(v) for v in value]
            if isinstance(value, bytes):
                return hashlib.sha256(value).hexdigest()
            return value
        return jsonable(convert(self))


# --- the manifest ------------------------------------------------------------------------------

def manifest_bytes(entries: Iterable[ManifestEntry], checkpoint: CheckpointInfo | None) -> bytes:
    """The evidence manifest as canonical JSON: what its sha256 (on the cover) is computed over."""
    return canonical_bytes({
        "checkpoint": None if checkpoint is None else {"size": checkpoint.size, "root": checkpoint.root},
        "entries": [[e.kind, e.name, e.sha256] for e in entries],
    })


# --- building it -------------------------------------------------------------------------------

def _user_name(user: Any) -> str:
    if user is None:
        return "system"
    return user_printed_name(user)


def _actor_text(actor_json: str) -> str:
    try:
        actor = json.loads(actor_json)
    except ValueError:
        return "?"
    return actor.get("username") or f"system:{actor.get('system', '?')}"


def _checkpoint_info(checkpoint: AuditCheckpoint | None) -> CheckpointInfo | None:
    if checkpoint is None:
        return None
    return CheckpointInfo(size=checkpoint.size, root=checkpoint.root, timestamp=checkpoint.timestamp,
                          signature=checkpoint.signature, public_key=checkpoint.public_key,
                          key_id=checkpoint.key_id or key_id(checkpoint.public_key),
                          signature_valid=checkpoint_signature_valid(checkpoint))


def _charts_of(report_ids: list[str]) -> dict[str, list[ChartImage]]:
    from governance.models import ReportChart

    charts: dict[str, list[ChartImage]] = defaultdict(list)
    ids = [int(i) for i in report_ids if is_id_text(i)]
    for report_id, name, title, png, sha in ReportChart.objects.filter(report_id__in=ids).order_by(
            "id").values_list("report_id", "name", "title", "png", "sha256"):
        charts[str(report_id)].append(ChartImage(name=name, sha256=sha, png=bytes(png), title=title))
    return charts


def _version_reports(mv: ModelVersion) -> list[dict[str, Any]]:
    """The reports the governance selector lists; before the reports app installs its provider, the stored ones."""
    reports = model_version_reports(mv)
    if reports:
        return reports
    from governance.models import Report

    latest: dict[str, Any] = {}
    for report in Report.objects.filter(model_version=mv).order_by("-created_at", "-id"):
        latest.setdefault(report.kind, report)
    return [{"id": r.pk, "kind": r.kind, "sha256": r.sha256, "artifact_sha256": r.artifact_sha256,
             "dataset_sha256": r.dataset_sha256, "created_at": r.created_at.isoformat(), "results": r.results}
            for r in latest.values()]


def _reports(versions: list[ModelVersion]) -> list[ReportInfo]:
    found = [(mv, report) for mv in versions for report in _version_reports(mv)]
    charts = _charts_of([str(report.get("id")) for _mv, report in found])
    reports = []
    for mv, report in found:
        reports.append(ReportInfo(
            id=str(report.get("id")), kind=str(report.get("kind", "")), model_version=mv.version,
            sha256=str(report.get("sha256", "")), artifact_sha256=str(report.get("artifact_sha256", "")),
            dataset_sha256=str(report.get("dataset_sha256", "")),
            created_at=str(report.get("created_at", "")), results=jsonable(report.get("results") or {}),
            charts=tuple(charts.get(str(report.get("id")), ()))))
    return reports


def _is_routine(action: str, object_type: str, object_id: str, kept_decisions: set[str]) -> bool:
    if action not in ROUTINE_ACTIONS:
        return False
    return not (object_type == "governance.gatedecision" and object_id in kept_decisions)


def _audit_trail(rows: list[tuple], kept_decisions: set[str], recent_routine: int
                 ) -> tuple[list[AuditRow], list[AuditSummaryRow]]:
    """Every non-routine event and the latest `recent_routine` routine ones in full; older routine ones summarised."""
    routine_idx = [i for i, r in enumerate(rows) if _is_routine(r[4], r[5], r[6], kept_decisions)]
    summarised = set(routine_idx[:-recent_routine] if recent_routine else routine_idx)
    full: list[AuditRow] = []
    groups: dict[tuple[str, str], list] = {}
    for i, (seq, timestamp, actor_json, _type_unused, action, object_type, object_id, object_repr, hash_) in \
            enumerate(rows):
        if i in summarised:
            key = (action, timestamp.date().isoformat())
            group = groups.get(key)
            if group is None:
                groups[key] = [1, seq, seq, hash_, hash_]
            else:
                group[0] += 1
                group[2], group[4] = seq, hash_
            continue
        full.append(AuditRow(seq=seq, timestamp=timestamp.strftime("%Y-%m-%d %H:%M:%S"),
                             actor=_actor_text(actor_json), action=action, object_type=object_type,
                             object_id=object_id, object_repr=object_repr, hash=hash_))
    summary = [AuditSummaryRow(action=action, day=day, count=g[0], first_seq=g[1], last_seq=g[2],
                               first_hash=g[3], last_hash=g[4])
               for (action, day), g in sorted(groups.items(), key=lambda item: item[1][1])]
    return full, summary


def inclusion_proofs(seqs: list[int], hashes: dict[int, str], checkpoint: CheckpointInfo,
                     labels: dict[int, str] | None = None) -> list[InclusionProof]:
    """RFC 9162 inclusion proofs of many events in the checkpoint, read in batches and each verified."""
    labels = labels or {}
    store = DatabaseNodeStore(size=checkpoint.size)
    root = bytes.fromhex(checkpoint.root)
    proofs: list[InclusionProof] = []
    ordered = sorted(set(seqs))
    for start in range(0, len(ordered), _PROOF_BATCH):
        batch = ordered[start:start + _PROOF_BATCH]
        paths = store._run(lambda lookup, batch=batch: [  # type: ignore[misc]  # mypy cannot type a default arg
            _path(lookup, seq - 1, 0, checkpoint.size) for seq in batch])
        for seq, path in zip(batch, paths, strict=True):
            leaf = leaf_hash(bytes.fromhex(hashes[seq]))
            proofs.append(InclusionProof(
                seq=seq, label=labels.get(seq, ""), leaf_hash=leaf.hex(), event_hash=hashes[seq],
                tree_size=checkpoint.size, audit_path=tuple(node.hex() for node in path),
                verified=verify_inclusion(seq - 1, checkpoint.size, leaf, path, root)))
    return proofs


def dossier_snapshot_build(*, model: RegisteredModel, version: int | None = None, now: dt.datetime | None = None,
                           recent_routine: int = RECENT_ROUTINE_IN_FULL,
                           progress: Progress | None = None) -> DossierSnapshot:
    """Read everything the dossier of `model` (all versions, or `version`) shows, against the latest checkpoint.

    Access is the caller's business (governance.reports.selectors.dossier_model_get_for_user).
    """
    from governance.reports.bundle import bundle_manifest_entries
    from governance.reports.kpis import governance_kpis
    from governance.reports.mapping import compliance_evaluate

    say = progress or (lambda step: None)
    now = now or timezone.now()
    model = RegisteredModel.objects.select_related("team", "created_by").get(pk=model.pk)

    say("registry")
    mv_qs = (ModelVersion.objects.filter(model=model).select_related("created_by", "parent", "model")
             .prefetch_related("authors", "training_datasets", "evaluation_datasets").order_by("version"))
    if version is not None:
        mv_qs = mv_qs.filter(version=version)
    mvs = list(mv_qs)
    versions = tuple(VersionInfo(
        id=mv.pk, version=mv.version, artifact_sha256=mv.artifact_sha256, artifact_size=mv.artifact_size,
        artifact_format=mv.artifact_format, artifact_uri=mv.artifact_uri, framework=mv.framework,
        framework_version=mv.framework_version, task=mv.task, code_repository=mv.code_repository,
        code_commit=mv.code_commit, hyperparameters=jsonable(mv.hyperparameters), metrics=jsonable(mv.metrics),
        feature_names=tuple(mv.feature_names or ()), status=mv.status, description=mv.description,
        created_at=mv.created_at, created_by=_user_name(mv.created_by),
        authors=tuple(sorted(_user_name(a) for a in mv.authors.all())),
        parent_version=mv.parent.version if mv.parent else None,
        training_dataset_ids=tuple(sorted(d.pk for d in mv.training_datasets.all())),
        evaluation_dataset_ids=tuple(sorted(d.pk for d in mv.evaluation_datasets.all())),
    ) for mv in mvs)

    uses: dict[int, list[str]] = defaultdict(list)
    for v in versions:
        for pk in v.training_dataset_ids:
            uses[pk].append(f"training v{v.version}")
        for pk in v.evaluation_dataset_ids:
            uses[pk].append(f"evaluation v{v.version}")
    dvs = DatasetVersion.objects.filter(pk__in=list(uses)).select_related("dataset", "created_by").order_by(
        "dataset__name", "version")
    datasets = tuple(DatasetInfo(
        id=dv.pk, dataset=dv.dataset.name, version=dv.version, sha256=dv.sha256, size=dv.size, format=dv.format,
        row_count=dv.row_count, columns=tuple((str(c.get("name")), str(c.get("dtype", ""))) for c in dv.schema),
        target_column=dv.target_column, sensitive_columns=tuple(dv.sensitive_columns or ()), license=dv.license,
        provenance=dv.provenance, source_uri=dv.source_uri, created_at=dv.created_at,
        created_by=_user_name(dv.created_by), used_as=tuple(uses[dv.pk])) for dv in dvs)

    lineage = _lineage(versions, datasets, model)

    say("reports")
    reports = tuple(_reports(mvs))

    say("approvals")
    mv_ids = [v.id for v in versions]
    request_rows = ApprovalRequest.objects.filter(model=model).select_related("requested_by", "policy",
                                                                              "model_version")
    if version is not None:
        request_rows = request_rows.filter(Q(model_version_id__in=mv_ids) | Q(kind=ApprovalRequest.Kind.RETRAINING))
    requests = list(request_rows.order_by("created_at", "id"))
    signatures_by_request: dict[int, list[Signature]] = defaultdict(list)
    for sig in Signature.objects.filter(request__in=requests).select_related("signer").order_by("signed_at", "id"):
        signatures_by_request[sig.request_id].append(sig)

    # Every decision's id and answer (a busy model has thousands); details only for those shown.
    decision_index = list(GateDecision.objects.filter(model_version_id__in=mv_ids).order_by(
        "evaluated_at", "id").values_list("pk", "allowed"))
    deployments = list(Deployment.objects.filter(model=model, model_version_id__in=mv_ids).select_related(
        "model_version", "deployed_by", "decision", "previous__model_version").order_by("deployed_at", "id"))

    say("monitoring")
    monitoring = dossier_evidence_collect(model=model, versions=mvs)

    say("audit trail")
    checkpoint_row = AuditCheckpoint.objects.order_by("-size").first()
    checkpoint = _checkpoint_info(checkpoint_row)
    refs: list[tuple[str, list[str] | QuerySet]] = [  # object type, its ids (or a subquery of them)
        ("registry.registeredmodel", [str(model.pk)]),
        ("registry.modelversion", [str(pk) for pk in mv_ids]),
        ("registry.datasetversion", [str(d.id) for d in datasets]),
        ("governance.approvalrequest", [str(r.pk) for r in requests]),
        # As a subquery: a busy model has thousands of decisions, too many for an IN list of parameters.
        ("governance.gatedecision", GateDecision.objects.filter(model_version_id__in=mv_ids).annotate(
            text_id=Cast("pk", output_field=CharField())).values("text_id") if decision_index else []),
        ("governance.deployment", [str(d.pk) for d in deployments]),
        ("governance.dossier", _dossier_ids(model)),
    ]
    refs += [(object_type, [str(i) for i in ids]) for object_type, ids in monitoring["object_refs"]]
    refs += _report_refs(versions)
    condition = Q()
    for object_type, ids in refs:
        if isinstance(ids, QuerySet) or ids:  # a subquery is never evaluated here
            condition |= Q(object_type=object_type, object_id__in=ids)
    covered = checkpoint.size if checkpoint else 0
    event_rows = list(AuditEvent.objects.filter(condition, seq__lte=covered).order_by("seq").values_list(
        "seq", "timestamp", "actor_json", "correlation_id", "action", "object_type", "object_id", "object_repr",
        "hash")) if condition else []
    after = AuditEvent.objects.filter(condition, seq__gt=covered).count() if condition else 0
    hashes = {row[0]: row[8] for row in event_rows}

    kept_decisions = {str(d.decision.pk) for d in deployments} | {str(pk) for pk, allowed in decision_index if allowed}
    audit_rows, audit_summary = _audit_trail(event_rows, kept_decisions, recent_routine)

    # The event of each signature and of each gate decision.
    signature_seq: dict[int, int] = {}
    decision_seq: dict[str, int] = {}
    for seq, _ts, _actor, _cid, action, _type, object_id, _repr, _hash in event_rows:
        if action == AuditAction.APPROVAL_SIGNED:
            signature_id = _signature_id_of(seq)
            if signature_id is not None:
                signature_seq[signature_id] = seq
        elif action == AuditAction.GATE_EVALUATED:
            decision_seq[object_id] = seq

    approvals = tuple(ApprovalInfo(
        id=r.pk, kind=r.kind, status=r.status, model_version=r.model_version.version if r.model_version else None,
        environment=r.environment, reason=r.reason, requested_by=_user_name(r.requested_by), opened_at=r.created_at,
        decided_at=r.decided_at, decision_reason=r.decision_reason, evidence_sha256=r.evidence_sha256,
        policy=r.policy.as_rules(),
        signatures=tuple(SignatureInfo(
            id=s.pk, printed_name=s.printed_name, username=s.signer.get_username(), role=s.role, meaning=s.meaning,
            reason=s.reason, signed_at=s.signed_at, record_sha256=s.record_sha256,
            binds_record=signature_verify(s, r), audit_seq=signature_seq.get(s.pk))
            for s in signatures_by_request[r.pk]),
    ) for r in requests)
    shown_ids = {pk for pk, _allowed in decision_index[-SHOWN_GATE_DECISIONS:]} | {int(pk) for pk in kept_decisions}
    gate_infos = tuple(GateDecisionInfo(
        id=d.pk, decision_id=str(d.decision_id), model_version=d.model_version.version, environment=d.environment,
        artifact_sha256=d.artifact_sha256, allowed=d.allowed,
        failed_checks=tuple(c.get("code", "?") for c in d.checks if not c.get("passed")),
        evaluated_at=d.evaluated_at, evaluated_by=_user_name(d.evaluated_by), audit_seq=decision_seq.get(str(d.pk)),
    ) for d in GateDecision.objects.filter(pk__in=shown_ids).select_related("model_version", "evaluated_by")
        .order_by("evaluated_at", "id"))
    deployment_infos = tuple(DeploymentInfo(
        id=d.pk, environment=d.environment, model_version=d.model_version.version,
        artifact_sha256=d.artifact_sha256, deployed_at=d.deployed_at, deployed_by=_user_name(d.deployed_by),
        decision_id=str(d.decision.decision_id), approval_request_id=d.approval_request_id,
        is_rollback=d.is_rollback, previous_version=d.previous.model_version.version if d.previous else None,
    ) for d in deployments)

    say("inclusion proofs")
    proofs: list[InclusionProof] = []
    if checkpoint is not None:
        labels: dict[int, str] = {}
        for approval in approvals:
            for s in approval.signatures:
                if s.audit_seq is not None:
                    labels[s.audit_seq] = (f"signature of {s.printed_name} ({s.role}, {s.meaning}) "
                                           f"on request #{approval.id}")
        denied = [g for g in gate_infos if not g.allowed and str(g.id) not in kept_decisions]
        for g in [g for g in gate_infos if str(g.id) in kept_decisions] + denied[-RECENT_DENIED_PROOFS:]:
            if g.audit_seq is not None:
                labels[g.audit_seq] = (f"gate decision {g.decision_id} (v{g.model_version} → {g.environment}: "
                                       f"{'allowed' if g.allowed else 'denied'})")
        proofs = inclusion_proofs(list(labels), hashes, checkpoint, labels)

    drift = tuple(DriftPoint(at=str(p.get("at", "")), monitor=str(p.get("monitor", "")),
                             feature=str(p.get("feature", "")), metric=str(p.get("metric", "")),
                             value=_float(p.get("value")), threshold=_float(p.get("threshold")),
                             breached=bool(p.get("breached"))) for p in monitoring["drift"])
    alerts = tuple(AlertInfo(id=str(a.get("id", "")), severity=str(a.get("severity", "")),
                             status=str(a.get("status", "")), title=str(a.get("title", "")),
                             opened_at=str(a.get("opened_at", "")), resolved_at=str(a.get("resolved_at") or ""),
                             resolution=str(a.get("resolution") or "")) for a in monitoring["alerts"])

    partial = DossierSnapshot(
        generated_at=now, model=ModelInfo(
            id=model.pk, name=model.name, team=model.team.name, risk_tier=model.risk_tier,
            description=model.description, intended_use=model.intended_use, limitations=model.limitations,
            created_at=model.created_at, created_by=_user_name(model.created_by),
            owners=tuple(sorted(_user_name(u) for u in model.team.members.all())),
            archived=model.archived_at is not None),
        scope_version=version, versions=versions, datasets=datasets, lineage=lineage, reports=reports,
        approvals=approvals, gate_decisions=gate_infos[-SHOWN_GATE_DECISIONS:],
        gate_decision_count=len(decision_index),
        deployments=deployment_infos, drift=drift, alerts=alerts, checkpoint=checkpoint,
        audit_rows=tuple(audit_rows), audit_summary=tuple(audit_summary), audit_event_count=len(event_rows),
        audit_seqs=tuple(hashes), events_after_checkpoint=after, proofs=tuple(proofs), kpis={}, compliance=(),
        manifest=(), manifest_sha256="",
    )
    say("kpis and compliance map")
    kpis = governance_kpis(models=[model], now=now)
    whole = dataclasses.replace(partial, kpis=kpis, compliance=tuple(compliance_evaluate(partial)))

    say("manifest")  # last: it covers the rest of the snapshot (bundle_manifest_entries)
    manifest = _manifest(versions, datasets, reports, approvals, event_rows, bundle_manifest_entries(whole))
    return dataclasses.replace(whole, manifest=tuple(manifest),
                               manifest_sha256=hashlib.sha256(manifest_bytes(manifest, checkpoint)).hexdigest())


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _signature_id_of(seq: int) -> int | None:
    payload = AuditEvent.objects.filter(seq=seq).values_list("payload_json", flat=True).first()
    try:
        return int(json.loads(payload or "{}").get("after", {}).get("signature_id"))
    except (TypeError, ValueError, AttributeError):
        return None


def _dossier_ids(model: RegisteredModel) -> list[str]:
    from governance.models import Dossier

    return [str(pk) for pk in Dossier.objects.filter(model=model).values_list("pk", flat=True)]


def _report_refs(versions: tuple[VersionInfo, ...]) -> list[tuple[str, list[str]]]:
    """The audit events of the versions' evaluations and reports."""
    from governance.models import Evaluation, Report

    mv_ids = [v.id for v in versions]
    return [("governance.evaluation", [str(pk) for pk in Evaluation.objects.filter(
                model_version_id__in=mv_ids).values_list("pk", flat=True)]),
            ("governance.report", [str(pk) for pk in Report.objects.filter(
                model_version_id__in=mv_ids).values_list("pk", flat=True)])]


def _lineage(versions: tuple[VersionInfo, ...], datasets: tuple[DatasetInfo, ...],
             model: RegisteredModel) -> dict[str, Any]:
    """Datasets -> versions -> deployments, as nodes and edges (the model's own, not another team's)."""
    nodes = [{"id": f"dataset_version:{d.id}", "type": "dataset_version", "label": f"{d.dataset} v{d.version}",
              "sha256": d.sha256} for d in datasets]
    nodes += [{"id": f"model_version:{v.id}", "type": "model_version", "label": f"{model.name} v{v.version}",
               "sha256": v.artifact_sha256} for v in versions]
    edges = []
    by_number = {v.version: v for v in versions}
    for v in versions:
        edges += [{"source": f"dataset_version:{pk}", "target": f"model_version:{v.id}", "relation": "training_data"}
                  for pk in v.training_dataset_ids]
        edges += [{"source": f"dataset_version:{pk}", "target": f"model_version:{v.id}",
                   "relation": "evaluation_data"} for pk in v.evaluation_dataset_ids]
        if v.parent_version in by_number:
            edges.append({"source": f"model_version:{by_number[v.parent_version].id}",
                          "target": f"model_version:{v.id}", "relation": "parent"})
    for d in Deployment.objects.filter(model_version_id__in=[v.id for v in versions]).order_by("deployed_at", "id"):
        nodes.append({"id": f"deployment:{d.pk}", "type": "deployment",
                      "label": f"{d.environment} {d.deployed_at:%Y-%m-%d %H:%M}"
                               + (" (rollback)" if d.is_rollback else ""),
                      "sha256": d.artifact_sha256})
        edges.append({"source": f"model_version:{d.model_version_id}", "target": f"deployment:{d.pk}",
                      "relation": "deployed_to"})
    return {"nodes": nodes, "edges": edges}


def _manifest(versions, datasets, reports, approvals, event_rows, bundle_entries) -> list[ManifestEntry]:
    entries = [ManifestEntry("artifact", f"model version {v.version}", v.artifact_sha256) for v in versions]
    entries += [ManifestEntry("dataset", f"{d.dataset} v{d.version}", d.sha256) for d in datasets]
    for r in reports:
        entries.append(ManifestEntry("report", f"{r.kind} report {r.id} (v{r.model_version})", r.sha256))
        entries += [ManifestEntry("chart", f"{r.kind} report {r.id}: {c.name}", c.sha256) for c in r.charts]
    for a in approvals:
        entries.append(ManifestEntry("approval record", f"request #{a.id}", a.evidence_sha256))
    entries += bundle_entries
    entries += [ManifestEntry("event", f"seq {row[0]}", row[8]) for row in event_rows]
    return entries
