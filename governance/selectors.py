"""Governance reads: policies, approval requests, evidence as it stands now, deployments.

Reads are scoped by user: governance roles and administrators read every team's records,
everyone else the records of the models of their teams (and the requests they opened).
"""

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from governance import hot_reads
from governance.errors import not_found
from governance.models import ApprovalPolicy, ApprovalRequest, Deployment, GateDecision
from governance.permissions import Action, user_can, user_reads_all, user_roles
from mlops_site.common.roles import Role
from registry.models import ModelVersion, RegisteredModel

POLICY_NOT_FOUND = "No approval policy exists for risk tier {tier!r}; run the migrations."
REQUEST_NOT_FOUND = "Approval request {pk} not found."
MODEL_NOT_FOUND = "Model {name!r} not found."
VERSION_NOT_FOUND = "Model {name!r} has no version {version}."


# --- policies -------------------------------------------------------------------------------------

def user_printed_name(user: Any) -> str:
    """The name a signature prints for its signer (21 CFR 11.50(a)(1)): the full name, else the username."""
    return user.get_full_name().strip() or user.get_username()


def policy_current(*, risk_tier: str) -> ApprovalPolicy:
    """The tier's policy in force: its highest version."""
    policy = hot_reads.policy_in_force(risk_tier)
    if policy is None:
        raise not_found(POLICY_NOT_FOUND.format(tier=risk_tier), field="risk_tier")
    return policy


def policy_list(*, all_versions: bool = False) -> list[ApprovalPolicy]:
    """The policy in force per tier, or every version of every tier."""
    policies = list(ApprovalPolicy.objects.order_by("risk_tier", "-version"))
    if all_versions:
        return policies
    seen: set[str] = set()
    current = []
    for policy in policies:
        if policy.risk_tier not in seen:
            seen.add(policy.risk_tier)
            current.append(policy)
    return current


def policy_previous(*, policy: ApprovalPolicy) -> ApprovalPolicy | None:
    """The version of the same tier's policy just before `policy`, or None for version 1."""
    return (ApprovalPolicy.objects.filter(risk_tier=policy.risk_tier, version__lt=policy.version)
            .order_by("-version").first())


def policy_diff(*, old: ApprovalPolicy | None, new: ApprovalPolicy) -> list[dict[str, Any]]:
    """Rule by rule, what changed from `old` to `new` (every rule, when there is no old version)."""
    before = old.as_rules() if old is not None else {}
    after = new.as_rules()
    rows = []
    for key in ("approvable", "environments", "required_roles", "required_reports", "thresholds",
                "max_report_age_days", "max_approval_age_days"):
        if before.get(key) != after[key]:
            rows.append({"rule": key, "before": before.get(key, "—"), "after": after[key]})
    return rows


# --- registry look-ups the governance API needs ----------------------------------------------------

def model_get_by_name(*, name: str) -> RegisteredModel:
    model = RegisteredModel.objects.select_related("team").filter(name=name).first()
    if model is None:
        raise not_found(MODEL_NOT_FOUND.format(name=name), field="model")
    return model


def model_version_get(*, model_name: str, version: int) -> ModelVersion:
    """A version by model name and number, with its model (one query)."""
    mv = ModelVersion.objects.select_related("model").filter(model__name=model_name, version=version).first()
    if mv is None:
        if not RegisteredModel.objects.filter(name=model_name).exists():
            raise not_found(MODEL_NOT_FOUND.format(name=model_name), field="model")
        raise not_found(VERSION_NOT_FOUND.format(name=model_name, version=version), field="version")
    return mv


# --- evidence --------------------------------------------------------------------------------------

# The reports issue fills this in: model version -> [{"id", "kind", "sha256", "artifact_sha256",
# "dataset_sha256", "created_at", "results"}]. Until then no version has a report.
_report_provider: Callable[[ModelVersion], list[dict[str, Any]]] | None = None


def report_provider_set(provider: Callable[[ModelVersion], list[dict[str, Any]]] | None) -> None:
    """Install the function that lists a version's fairness and explainability reports."""
    global _report_provider
    _report_provider = provider


def model_version_reports(model_version: ModelVersion) -> list[dict[str, Any]]:
    """The version's reports, newest first per kind (none until the reports issue lands)."""
    return list(_report_provider(model_version)) if _report_provider is not None else []


def model_version_datasets(model_version: ModelVersion) -> list[dict[str, Any]]:
    """The dataset versions a version was trained and evaluated on, with their sha256 (one query)."""
    rows = [{"use": use, "id": pk, "dataset": name, "version": version, "sha256": sha}
            for use, pk, sha, version, name in hot_reads.datasets_of_version(model_version.pk)]
    return sorted(rows, key=lambda row: (row["use"], row["id"]))


def report_refs(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What evidence keeps of reports: id, kind and sha256 (the hash binds the results)."""
    return sorted(({"id": r["id"], "kind": r["kind"], "sha256": r["sha256"]} for r in reports),
                  key=lambda ref: (ref["kind"], str(ref["id"])))


def policy_ref(policy: ApprovalPolicy) -> dict[str, Any]:
    return {"id": policy.pk, "risk_tier": policy.risk_tier, "version": policy.version}


def evidence_for_deployment(*, model_version: ModelVersion, environment: str, policy: ApprovalPolicy,
                            reports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The evidence a deployment approval is about, as it stands now."""
    if reports is None:
        reports = model_version_reports(model_version)
    return {
        "kind": ApprovalRequest.Kind.DEPLOYMENT.value,
        "model": model_version.model.name,
        "model_id": model_version.model_id,
        "risk_tier": model_version.model.risk_tier,
        "model_version_id": model_version.pk,
        "version": model_version.version,
        "artifact_sha256": model_version.artifact_sha256,
        "environment": environment,
        "datasets": model_version_datasets(model_version),
        "reports": report_refs(reports),
        "policy": policy_ref(policy),
    }


def model_live_version(*, model: RegisteredModel, environment: str | None = None) -> ModelVersion | None:
    """The version most recently deployed for the model (in `environment`, or in any)."""
    deployments = Deployment.objects.filter(model=model)
    if environment:
        deployments = deployments.filter(environment=environment)
    latest = deployments.select_related("model_version__model").order_by("-deployed_at", "-id").first()
    return latest.model_version if latest else None


def model_live_versions(*, model: RegisteredModel) -> set[int]:
    """Ids of the versions live now in some environment (the latest deployment per environment)."""
    latest = Deployment.objects.filter(model=model, environment=OuterRef("environment")).order_by(
        "-deployed_at", "-id").values("pk")[:1]
    return set(Deployment.objects.filter(model=model, pk=Subquery(latest)).values_list("model_version_id", flat=True))


def evidence_for_retraining(*, model: RegisteredModel, policy: ApprovalPolicy, reason: str,
                            dataset_versions: list[Any]) -> dict[str, Any]:
    """The evidence a retraining approval is about: the live version and the proposed data."""
    live = model_live_version(model=model)
    return {
        "kind": ApprovalRequest.Kind.RETRAINING.value,
        "model": model.name,
        "model_id": model.pk,
        "risk_tier": model.risk_tier,
        "live_version": None if live is None else {
            "id": live.pk, "version": live.version, "artifact_sha256": live.artifact_sha256},
        "proposed_datasets": sorted(
            ({"id": d.pk, "dataset": d.dataset.name, "version": d.version, "sha256": d.sha256}
             for d in dataset_versions), key=lambda row: row["id"]),
        "reason": reason,
        "policy": policy_ref(policy),
    }


# --- approval requests -----------------------------------------------------------------------------

def approval_signing_roles(*, user: Any) -> set[str]:
    """The roles `user` holds that sign approval requests: "my roles" of the pending list (an auditor
    or a CI identity signs nothing, whatever else they hold)."""
    return set(user_roles(user)) - {Role.AUDITOR, Role.CI_SERVICE}


def approval_request_list(*, user: Any, filters: dict[str, Any] | None = None) -> QuerySet[ApprovalRequest]:
    """Requests the user may read, filtered by kind, status, model (name), environment."""
    filters = filters or {}
    if not user_can(user, Action.APPROVAL_READ):
        return ApprovalRequest.objects.none()
    qs = ApprovalRequest.objects.select_related("model", "model_version", "policy", "requested_by")
    qs = qs.prefetch_related("signatures")
    if not user_reads_all(user):
        qs = qs.filter(Q(model__team__members=user) | Q(requested_by=user)).distinct()
    for key, lookup in (("kind", "kind"), ("status", "status"), ("model", "model__name"),
                        ("environment", "environment")):
        if filters.get(key):
            qs = qs.filter(**{lookup: filters[key]})
    return qs.order_by("-created_at", "-id")


def approval_request_get_for_user(*, user: Any, pk: Any) -> ApprovalRequest:
    """One request the user may read; another team's is 404, as if it did not exist."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise not_found(REQUEST_NOT_FOUND.format(pk=pk)) from None
    request = approval_request_list(user=user).filter(pk=pk).first()
    if request is None:
        raise not_found(REQUEST_NOT_FOUND.format(pk=pk))
    return request


# --- deployments -----------------------------------------------------------------------------------

def deployment_list(*, user: Any, environment: str | None = None, at: dt.datetime | None = None,
                    model: str | None = None) -> QuerySet[Deployment]:
    """Deployments the user may read; with `at`, only what was live then (per model and environment)."""
    if not user_can(user, Action.DEPLOYMENT_READ):
        return Deployment.objects.none()
    qs = Deployment.objects.select_related(
        "model", "model_version", "deployed_by", "decision", "approval_request").prefetch_related(
        "approval_request__signatures")
    if not user_reads_all(user):
        qs = qs.filter(model__team__members=user).distinct()
    if environment:
        qs = qs.filter(environment=environment)
    if model:
        qs = qs.filter(model__name=model)
    if at is not None:
        latest = Deployment.objects.filter(
            model=OuterRef("model"), environment=OuterRef("environment"), deployed_at__lte=at,
        ).order_by("-deployed_at", "-id").values("pk")[:1]
        qs = qs.filter(deployed_at__lte=at, pk=Subquery(latest))
    return qs.order_by("-deployed_at", "-id")


def deployment_live_at(*, environment: str, at: dt.datetime | None = None) -> list[Deployment]:
    """What was live in `environment` at `at` (now when None): one deployment per model."""
    at = at or timezone.now()
    latest = Deployment.objects.filter(
        model=OuterRef("model"), environment=environment, deployed_at__lte=at,
    ).order_by("-deployed_at", "-id").values("pk")[:1]
    return list(Deployment.objects.filter(environment=environment, deployed_at__lte=at, pk=Subquery(latest))
                .select_related("model", "model_version", "deployed_by", "decision"))


def gate_decision_get(*, decision_id: Any) -> GateDecision | None:
    return GateDecision.objects.filter(decision_id=decision_id).first()


def lineage_deployments_add(*, user: Any, graph: Any, model_versions: list) -> None:
    """Lineage provider: the deployments of the (already visible) model versions, downstream of them."""
    deployments = (Deployment.objects.filter(model_version__in=model_versions)
                   .select_related("deployed_by").order_by("deployed_at"))
    for deployment in deployments:
        node_id = f"deployment:{deployment.pk}"
        graph.node_add({
            "id": node_id, "type": "deployment",
            "label": f"{deployment.environment} {deployment.deployed_at:%Y-%m-%d %H:%M} UTC",
            "environment": deployment.environment, "sha256": deployment.artifact_sha256,
            "deployed_at": deployment.deployed_at.isoformat(), "deployed_by": deployment.deployed_by.get_username(),
            "rollback": deployment.is_rollback,
        })
        graph.edge_add(f"model_version:{deployment.model_version_id}", node_id, "deployed_to")
