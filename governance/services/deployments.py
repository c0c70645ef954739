"""Deployments: recording that a version went live in an environment, on an allowing gate decision.

A rollback is not a special operation: it deploys an earlier version, which needs its own
valid approval and its own allowing gate decision. The record marks it (`is_rollback`) and
points at the deployment it replaced (`previous`).
"""

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from governance import errors
from governance.audit import AuditAction, audit_event_record
from governance.environments import environment_require_known
from governance.gate import gate_checks_compute
from governance.models import Deployment, GateDecision
from governance.permissions import Action, user_can
from governance.services.approvals import model_version_status_follow
from registry.models import ModelVersion, RegisteredModel

# A decision is a statement about "now": a deployment must cite a recent one.
DECISION_MAX_AGE = dt.timedelta(minutes=15)


@transaction.atomic
def deployment_record(*, actor: Any, model_version: Any, environment: str, decision_id: Any) -> Deployment:
    """Record that `model_version` is live in `environment`, citing gate decision `decision_id`.

    Refuses (nothing written): a role that may not deploy or another team's model (403
    `permission_denied`); an unknown decision or one that did not allow exactly this
    version, environment and artifact (409 `gate_decision_invalid`); a decision already
    cited (409 `gate_decision_used`); a decision older than 15 minutes, or one whose checks
    no longer pass now (409 `gate_decision_stale`). Writes DEPLOYMENT_RECORDED, then, unless the
    version was deployed before, MODEL_VERSION_STATUS_CHANGED (status `deployed`).
    """
    if not user_can(actor, Action.DEPLOYMENT_RECORD, model_version):
        raise errors.action_forbidden(user=actor, action=f"deploy {model_version}")
    environment_require_known(environment)
    # Serialise deployments of one model, so "previous" is the one really replaced.
    RegisteredModel.objects.select_for_update().filter(pk=model_version.model_id).first()
    decision = GateDecision.objects.select_for_update().filter(decision_id=decision_id).first()
    if decision is None:
        raise errors.decision_invalid(decision_id=decision_id, why="no such decision")
    if not decision.allowed:
        raise errors.decision_invalid(decision_id=decision_id, why="the gate denied it")
    if (decision.model_version_id, decision.environment) != (model_version.pk, environment):
        raise errors.decision_invalid(decision_id=decision_id, why="it was about another version or environment")
    if decision.artifact_sha256 != model_version.artifact_sha256:
        raise errors.decision_invalid(decision_id=decision_id, why="it was about another artifact")
    if Deployment.objects.filter(decision=decision).exists():
        raise errors.decision_invalid(decision_id=decision_id, why="it was already used by a deployment",
                                      code="gate_decision_used")
    now = timezone.now()
    if now - decision.evaluated_at > DECISION_MAX_AGE:
        raise errors.decision_invalid(decision_id=decision_id, why="it is older than 15 minutes; ask the gate again",
                                      code="gate_decision_stale")
    # The evidence may have moved since the decision (a policy edit, a revoked role): ask again.
    checks, approved = gate_checks_compute(model_version=model_version, environment=environment,
                                           artifact_sha256=model_version.artifact_sha256, now=now)
    failed = [check["code"] for check in checks if not check["passed"]]
    if failed:
        raise errors.decision_invalid(decision_id=decision_id, code="gate_decision_stale",
                                      why=f"the checks fail now: {', '.join(failed)}")

    previous = Deployment.objects.filter(model_id=model_version.model_id, environment=environment).select_related(
        "model_version").order_by("-deployed_at", "-id").first()
    deployment = Deployment(
        model_id=model_version.model_id, model_version=model_version, environment=environment,
        artifact_sha256=model_version.artifact_sha256, decision=decision, approval_request=approved,
        previous=previous, is_rollback=bool(previous and previous.model_version.version > model_version.version),
        deployed_by=actor, deployed_at=now,
    )
    deployment.full_clean()
    deployment.save()
    audit_event_record(
        actor=actor, action=AuditAction.DEPLOYMENT_RECORDED, target=deployment,
        before={"live_version": previous.model_version.version if previous else None},
        after={"live_version": model_version.version, "artifact_sha256": model_version.artifact_sha256,
               "decision_id": decision.decision_id, "rollback": deployment.is_rollback},
        payload={"environment": environment, "approval_request": approved.pk if approved else None},
    )
    model_version_status_follow(actor=actor, model_version=model_version, status=ModelVersion.Status.DEPLOYED,
                                reason=f"deployed to {environment} (deployment #{deployment.pk})")
    return deployment
