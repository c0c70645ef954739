"""The regulatory mapping: controls of the EU AI Act, SR 11-7, NIST AI RMF and ISO/IEC 42001 -> evidence.

One table (CONTROLS) says which evidence each control needs; one table (EVIDENCE) says how each
piece of evidence is decided from a dossier snapshot. A control is `met` when all its evidence
is there, `missing` when none is, `partly met` otherwise; each row names the evidence that
decided it and what is missing. Evidence Attest does not hold (a declaration of conformity, a
list of harmonised standards) is listed as missing, never assumed.

The EU AI Act rows are obligations of high-risk AI systems only (HIGH_RISK_ONLY): for a model of
the limited or minimal tier they are `not applicable`, named with the tier, and not assessed.

The table is documented in docs/dossier.md; change it here, in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlops_site.common.roles import role_order

if TYPE_CHECKING:
    from governance.reports.snapshot import DossierSnapshot

MET, PARTLY, MISSING, NOT_APPLICABLE = "met", "partly met", "missing", "not applicable"
# Tiers whose models do not carry the obligations of high-risk systems. An "unacceptable" model is
# prohibited (Art. 5), not exempt: it stays assessed like a high-risk one.
TIERS_WITHOUT_HIGH_RISK_OBLIGATIONS = frozenset({"limited", "minimal"})

# (framework, control id, title, [evidence keys])
CONTROLS: list[tuple[str, str, str, list[str]]] = [
    ("EU AI Act", "Annex IV(1)", "General description: intended purpose, provider, versions",
     ["model_card", "versions_registered"]),
    ("EU AI Act", "Annex IV(2)", "Development: design, data, training, validation and testing",
     ["lineage", "data_provenance", "performance_metrics", "independent_validation"]),
    ("EU AI Act", "Annex IV(3)", "Monitoring, functioning and control: capabilities, limitations, oversight",
     ["model_card", "fairness_report", "human_oversight"]),
    ("EU AI Act", "Annex IV(4)", "Appropriateness of the performance metrics",
     ["performance_metrics", "fairness_report"]),
    ("EU AI Act", "Annex IV(5)", "Risk management system (Article 9)", ["risk_tier", "policy_applied"]),
    ("EU AI Act", "Annex IV(6)", "Changes made through the lifecycle", ["versions_registered", "audit_log"]),
    ("EU AI Act", "Annex IV(7)", "Harmonised standards applied", ["standards_statement"]),
    ("EU AI Act", "Annex IV(8)", "EU declaration of conformity", ["declaration_of_conformity"]),
    ("EU AI Act", "Annex IV(9)", "Post-market monitoring plan (Article 72)", ["drift_monitoring", "alerts_handled"]),
    ("EU AI Act", "Art. 9", "Risk management system", ["risk_tier", "policy_applied", "approval_signed"]),
    ("EU AI Act", "Art. 10", "Data and data governance", ["data_provenance", "sensitive_columns", "lineage"]),
    ("EU AI Act", "Art. 11", "Technical documentation", ["model_card", "lineage", "performance_metrics"]),
    ("EU AI Act", "Art. 12", "Record-keeping: automatic logging of events", ["audit_log", "checkpoint_signed"]),
    ("EU AI Act", "Art. 13", "Transparency and information to deployers", ["model_card", "explainability_report"]),
    ("EU AI Act", "Art. 14", "Human oversight", ["human_oversight", "approval_signed"]),
    ("EU AI Act", "Art. 15", "Accuracy, robustness and cybersecurity",
     ["performance_metrics", "artifact_hashes", "drift_monitoring"]),
    ("EU AI Act", "Art. 19", "Automatically generated logs kept", ["audit_log", "inclusion_proofs"]),
    ("EU AI Act", "Art. 72", "Post-market monitoring", ["drift_monitoring", "alerts_handled"]),
    ("SR 11-7", "Development", "Model development, implementation and use",
     ["lineage", "data_provenance", "performance_metrics"]),
    ("SR 11-7", "Validation", "Independent validation and effective challenge", ["independent_validation"]),
    ("SR 11-7", "Monitoring", "Ongoing monitoring and outcomes analysis", ["drift_monitoring", "alerts_handled"]),
    ("SR 11-7", "Governance", "Governance, policies and controls",
     ["policy_applied", "approval_signed", "audit_log"]),
    ("NIST AI RMF", "GOVERN", "Policies, roles and accountability", ["policy_applied", "approval_signed"]),
    ("NIST AI RMF", "MAP", "Context, intended use and risk categorisation", ["model_card", "risk_tier"]),
    ("NIST AI RMF", "MEASURE", "Performance, bias and explainability measured",
     ["performance_metrics", "fairness_report", "explainability_report"]),
    ("NIST AI RMF", "MANAGE", "Risks treated, monitored and responded to",
     ["deployments_gated", "drift_monitoring", "alerts_handled"]),
    ("ISO/IEC 42001", "A.6.2.8", "AI system recording of event logs",
     ["audit_log", "checkpoint_signed", "inclusion_proofs"]),
    ("ISO/IEC 42001", "A.7.5", "Data provenance", ["data_provenance", "lineage"]),
]

# Rows whose article binds high-risk AI systems only: Arts. 9-15 are the requirements of Chapter III
# Section 2 ("Requirements for high-risk AI systems"); Annex IV is the technical documentation
# of Art. 11(1), including the Art. 47 declaration (IV(8)) and the Art. 72 plan (IV(9)); Art. 19
# is the providers' keeping of the logs of high-risk systems (Section 3); Art. 72 is post-market
# monitoring of high-risk systems (Chapter IX Section 1). SR 11-7, NIST AI RMF and ISO/IEC 42001
# do not depend on the EU tier.
HIGH_RISK_ONLY: frozenset[tuple[str, str]] = frozenset(
    [("EU AI Act", f"Annex IV({n})") for n in range(1, 10)]
    + [("EU AI Act", f"Art. {n}") for n in (9, 10, 11, 12, 13, 14, 15, 19, 72)])

Decision = tuple[bool, str]  # (present, the evidence that decides it, or what is missing)


def _model_card(s: DossierSnapshot) -> Decision:
    missing = [name for name, value in (("intended use", s.model.intended_use), ("limitations", s.model.limitations))
               if not value.strip()]
    if missing:
        return False, f"model card lacks {' and '.join(missing)}"
    return True, f"model card: intended use and limitations recorded; owners {', '.join(s.model.owners) or 'n/a'}"


def _versions(s: DossierSnapshot) -> Decision:
    if not s.versions:
        return False, "no model version registered"
    return True, f"{len(s.versions)} version(s) registered with artifact sha256, framework and code commit"


def _lineage(s: DossierSnapshot) -> Decision:
    without = [f"v{v.version}" for v in s.versions if not v.training_dataset_ids]
    if not s.versions or without:
        return False, f"no training dataset recorded for {', '.join(without) or 'any version'}"
    return True, f"lineage: {len(s.datasets)} dataset version(s) -> {len(s.versions)} model version(s), by sha256"


def _provenance(s: DossierSnapshot) -> Decision:
    lacking = [f"{d.dataset} v{d.version}" for d in s.datasets if not (d.provenance.strip() or d.source_uri.strip())]
    if not s.datasets or lacking:
        return False, f"no provenance recorded for {', '.join(lacking) or 'any dataset'}"
    return True, f"provenance recorded for all {len(s.datasets)} dataset version(s)"


def _sensitive(s: DossierSnapshot) -> Decision:
    declared = [d for d in s.datasets if d.sensitive_columns]
    if not declared:
        return False, "no sensitive columns declared on any dataset version"
    columns = sorted({c for d in declared for c in d.sensitive_columns})
    return True, f"sensitive columns declared: {', '.join(columns)}"


def _metrics(s: DossierSnapshot) -> Decision:
    without = [f"v{v.version}" for v in s.versions if not v.metrics]
    if not s.versions or without:
        return False, f"no performance metrics for {', '.join(without) or 'any version'}"
    return True, "performance metrics recorded for every version"


def _report(kind: str) -> Callable[[DossierSnapshot], Decision]:
    def decide(s: DossierSnapshot) -> Decision:
        found = [r for r in s.reports if r.kind == kind]
        if not found:
            return False, f"no {kind} report recorded"
        return True, f"{len(found)} {kind} report(s), e.g. sha256 {found[-1].sha256[:16]}…"
    return decide


def _validator(s: DossierSnapshot) -> Decision:
    authors = {name for v in s.versions for name in v.authors}
    independent = [sig for a in s.approvals for sig in a.signatures
                   if sig.role == "model_validator" and sig.meaning in ("approve", "reviewed")
                   and sig.printed_name not in authors and sig.binds_record]
    if not independent:
        return False, "no independent model validator's signature (role model_validator, approve or reviewed)"
    sig = independent[-1]
    return True, f"validated by {sig.printed_name} (model_validator, {sig.meaning}, {sig.signed_at:%Y-%m-%d %H:%M} UTC)"


def _oversight(s: DossierSnapshot) -> Decision:
    humans = [sig for a in s.approvals for sig in a.signatures]
    if not humans:
        return False, "no human sign-off recorded"
    roles = sorted({sig.role for sig in humans})
    return True, f"{len(humans)} electronic signature(s) by {', '.join(roles)}"


def _approval(s: DossierSnapshot) -> Decision:
    approved = [a for a in s.approvals if a.status == "approved"]
    if not approved:
        return False, "no approved approval request"
    if not all(sig.binds_record for a in approved for sig in a.signatures):
        return False, "a signature no longer binds its record"
    return True, f"{len(approved)} approved request(s), every signature binds its record's sha256"


def policy_roles_text(required_roles: dict[str, int]) -> str:
    """A policy's signer roles as a reader says them: "1 model_validator, 1 compliance_officer"."""
    roles = sorted(required_roles.items(), key=lambda item: role_order(item[0]))
    return ", ".join(f"{count} {role}" for role, count in roles) or "none"


def _policy(s: DossierSnapshot) -> Decision:
    if not s.approvals:
        return False, "no approval request opened under a policy"
    policy = s.approvals[-1].policy
    return True, (f"{policy['risk_tier']} policy v{policy['version']} applied "
                  f"(roles {policy_roles_text(policy.get('required_roles') or {})})")


def _tier(s: DossierSnapshot) -> Decision:
    return bool(s.model.risk_tier), f"risk tier {s.model.risk_tier} recorded"


def _audit(s: DossierSnapshot) -> Decision:
    if not s.audit_event_count:
        return False, "no audit event covered by a signed checkpoint"
    return True, f"{s.audit_event_count} hash-chained audit event(s) of this model"


def _checkpoint(s: DossierSnapshot) -> Decision:
    if s.checkpoint is None or not s.checkpoint.signature_valid:
        return False, "no valid signed checkpoint"
    cp = s.checkpoint
    # The key id alone reads as a second key: name the public key itself (as printed in full on the
    # dossier's cover) and say what the id is.
    return True, (f"checkpoint of size {cp.size} signed (Ed25519) with public key {cp.public_key[:16]}… "
                  f"(key id {cp.key_id}: the first 16 hex of that key's sha256)")


def _proofs(s: DossierSnapshot) -> Decision:
    if not s.proofs:
        return False, "no inclusion proof (no signature or gate decision covered by a checkpoint)"
    if not all(p.verified for p in s.proofs):
        return False, "an inclusion proof does not verify"
    return True, f"{len(s.proofs)} inclusion proof(s) verify against the checkpoint root"


def _hashes(s: DossierSnapshot) -> Decision:
    return bool(s.versions), "every artifact identified by sha256; the gate refuses any other bytes"


def _gated(s: DossierSnapshot) -> Decision:
    if not s.deployments:
        return False, "no deployment recorded"
    return True, f"{len(s.deployments)} deployment(s), each on an allowing gate decision"


def _drift(s: DossierSnapshot) -> Decision:
    if not s.drift:
        return False, "no drift result recorded"
    return True, f"{len(s.drift)} drift result(s), {sum(p.breached for p in s.drift)} breach(es)"


def _alerts(s: DossierSnapshot) -> Decision:
    if not s.drift and not s.alerts:
        return False, "no alert handling to show (nothing monitored)"
    open_ = [a for a in s.alerts if a.status in ("open", "acknowledged")]
    if open_:
        return False, f"{len(open_)} alert(s) still open"
    return True, f"{len(s.alerts)} alert(s), all resolved or dismissed with a reason"


def _absent(what: str) -> Callable[[DossierSnapshot], Decision]:
    return lambda s: (False, f"{what} (not held by Attest)")


EVIDENCE: dict[str, Callable[[Any], Decision]] = {
    "model_card": _model_card, "versions_registered": _versions, "lineage": _lineage,
    "data_provenance": _provenance, "sensitive_columns": _sensitive, "performance_metrics": _metrics,
    "fairness_report": _report("fairness"), "explainability_report": _report("explainability"),
    "independent_validation": _validator, "human_oversight": _oversight, "approval_signed": _approval,
    "policy_applied": _policy, "risk_tier": _tier, "audit_log": _audit, "checkpoint_signed": _checkpoint,
    "inclusion_proofs": _proofs, "artifact_hashes": _hashes, "deployments_gated": _gated,
    "drift_monitoring": _drift, "alerts_handled": _alerts,
    "standards_statement": _absent("no statement of the harmonised standards applied"),
    "declaration_of_conformity": _absent("no EU declaration of conformity recorded"),
}
# Every control names only evidence that has a function (checked at import, also under python -O).
if not {key for *_, keys in CONTROLS for key in keys} <= set(EVIDENCE):
    raise ImportError("a regulatory control names evidence that has no function in EVIDENCE")
if not HIGH_RISK_ONLY <= {(framework, control) for framework, control, *_ in CONTROLS}:
    raise ImportError("HIGH_RISK_ONLY names a control that is not in CONTROLS")


def compliance_evaluate(snapshot: DossierSnapshot) -> list[dict[str, Any]]:
    """One row per control: framework, control, title, status, evidence (what decided), missing (what lacks)."""
    decided = {key: decide(snapshot) for key, decide in EVIDENCE.items()}
    tier = snapshot.model.risk_tier
    rows = []
    for framework, control, title, keys in CONTROLS:
        if (framework, control) in HIGH_RISK_ONLY and tier in TIERS_WITHOUT_HIGH_RISK_OBLIGATIONS:
            rows.append({"framework": framework, "control": control, "title": title, "status": NOT_APPLICABLE,
                         "evidence": [f"not applicable (risk tier {tier}): an obligation of high-risk AI systems "
                                      "only"], "missing": [], "evidence_keys": keys})
            continue
        present = [decided[k][1] for k in keys if decided[k][0]]
        missing = [decided[k][1] for k in keys if not decided[k][0]]
        status = MET if not missing else MISSING if not present else PARTLY
        rows.append({"framework": framework, "control": control, "title": title, "status": status,
                     "evidence": present, "missing": missing, "evidence_keys": keys})
    return rows


def compliance_summary(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {status: sum(1 for r in rows if r["status"] == status)
            for status in (MET, PARTLY, MISSING, NOT_APPLICABLE)}
