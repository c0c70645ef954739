"""The authorization policy table: one row per API operation (method, path as the schema spells it).

A row names the action of `governance.permissions` the operation needs; the expected outcome
for each caller is computed from that permission matrix (`PERMISSIONS`, `FORBIDDEN`, docs/roles.md),
never written out by hand:

- anonymous: 401;
- a role the matrix does not grant the action: refused (403, or 404 for an object it may not
  read; a list answers 200 with nothing in it) with an error body and nothing else;
- a granted role on another team's object (`team_scoped` rows), unless the role reads every team
  (governance roles, administrators): 404/403 with no data;
- a `webhook` row (a receiver whose credential is an HMAC signature, not a user): 401 for every
  caller, token or not, when the request is not signed;
- otherwise: 2xx, or one of the row's `ok_codes` (a workflow refusal that comes after
  authorization, e.g. `separation_of_duties` for the model's author).

`target` names the object kind the row is about: its id fills the path (`{id}`), and a list row
checks that the foreign object's id is absent for team-scoped callers and present for the rest.
`body`, `query` and `path` build the request from a `Side` (own or foreign objects).
`tests/security/test_authz_matrix.py` fails when an operation of the URL conf or the schema has
no row here, and when a row names an operation that does not exist.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

from governance.permissions import Action
from tests.governance.workflow_factories import PASSWORD
from tests.security.world import WORLD_HOOKS, Side, sha


@dataclass(frozen=True)
class Row:
    action: str
    target: str | None = None  # attribute of Side whose id fills {id} / is checked in a list
    team_scoped: bool = True  # another team's object is hidden from team-scoped callers
    kind: str = "object"  # "object" (one target), "list", "create" (body names the side's objects), "global"
    path: Callable[[Side, Any], dict] | None = None  # extra path parameters: f(side, world)
    query: Callable[[Side, Any], dict] | None = None
    body: Callable[[Side, Any], dict] | None = None
    multipart: bool = False
    ok_codes: frozenset[str] = frozenset()
    permitted: frozenset[str] | None = None  # a per-object rule narrower than the action (withdraw)
    note: str = ""
    extra: dict = field(default_factory=dict)


def _reason(side: Side, world: Any) -> dict:
    return {"reason": "security matrix"}


def _csv(side: Side, world: Any) -> dict:
    return {"dataset": side.dataset.name,
            "file": SimpleUploadedFile("d.csv", b"age,approved\n30,1\n41,0\n", content_type="text/csv")}


def _model_version_by_reference(side: Side, world: Any) -> dict:
    digest = sha(f"{side.name}-matrix-v2")
    return {"model": side.model.name, "artifact_uri": f"https://models.example.com/{digest}.skops",
            "artifact_sha256": digest}


def _gate(side: Side, world: Any) -> dict:
    return {"model": side.model.name, "version": side.model_version.version, "environment": "dev",
            "artifact_sha256": side.model_version.artifact_sha256}


def _deployment(side: Side, world: Any) -> dict:
    return {"model": side.model.name, "version": side.model_version.version, "environment": "dev",
            "decision_id": str(side.decision.decision_id)}


REGISTRY_READ, REGISTRY_WRITE = Action.REGISTRY_READ, Action.REGISTRY_WRITE
# Signing refusals that come after authorization: the policy does not need this role, or the
# signer wrote the model (separation of duties).
SIGN_WORKFLOW = frozenset({"signer_role_missing", "separation_of_duties"})

ROWS: dict[tuple[str, str], Row] = {
    # --- registry ---------------------------------------------------------------------------
    ("GET", "/api/v1/datasets/"): Row(REGISTRY_READ, "dataset", kind="list"),
    ("POST", "/api/v1/datasets/"): Row(REGISTRY_WRITE, kind="create",
                                       body=lambda s, w: {"name": "matrix-dataset", "team": s.team.name}),
    ("GET", "/api/v1/datasets/{id}/"): Row(REGISTRY_READ, "dataset"),
    ("POST", "/api/v1/datasets/{id}/archive/"): Row(REGISTRY_WRITE, "dataset", body=_reason),
    ("GET", "/api/v1/dataset-versions/"): Row(REGISTRY_READ, "dataset_version", kind="list"),
    ("POST", "/api/v1/dataset-versions/"): Row(REGISTRY_WRITE, kind="create", body=_csv, multipart=True),
    ("GET", "/api/v1/dataset-versions/{id}/"): Row(REGISTRY_READ, "dataset_version"),
    ("POST", "/api/v1/dataset-versions/{id}/archive/"): Row(REGISTRY_WRITE, "dataset_version", body=_reason),
    ("GET", "/api/v1/models/"): Row(REGISTRY_READ, "model", kind="list"),
    ("POST", "/api/v1/models/"): Row(REGISTRY_WRITE, kind="create", body=lambda s, w: {
        "name": "matrix-model", "team": s.team.name, "risk_tier": "minimal"}),
    ("GET", "/api/v1/models/{id}/"): Row(REGISTRY_READ, "model"),
    ("POST", "/api/v1/models/{id}/archive/"): Row(REGISTRY_WRITE, "model", body=_reason),
    ("GET", "/api/v1/model-versions/"): Row(REGISTRY_READ, "model_version", kind="list"),
    ("POST", "/api/v1/model-versions/"): Row(REGISTRY_WRITE, kind="create", body=_model_version_by_reference),
    ("GET", "/api/v1/model-versions/{id}/"): Row(REGISTRY_READ, "model_version"),
    ("POST", "/api/v1/model-versions/{id}/archive/"): Row(REGISTRY_WRITE, "model_version", body=_reason),
    ("GET", "/api/v1/lineage/"): Row(REGISTRY_READ, "model_version", kind="create",
                                     query=lambda s, w: {"node": f"model_version:{s.model_version.pk}"}),
    # --- approvals and policies --------------------------------------------------------------
    ("GET", "/api/v1/approval-requests/"): Row(Action.APPROVAL_READ, "approval_request", kind="list"),
    ("POST", "/api/v1/approval-requests/"): Row(Action.APPROVAL_REQUEST, kind="create", body=lambda s, w: {
        "kind": "deployment", "model_version": s.model_version.pk, "environment": "production"}),
    ("GET", "/api/v1/approval-requests/{id}/"): Row(Action.APPROVAL_READ, "approval_request"),
    ("POST", "/api/v1/approval-requests/{id}/sign/"): Row(
        Action.APPROVAL_SIGN, "approval_request", ok_codes=SIGN_WORKFLOW,
        body=lambda s, w: {"password": PASSWORD, "meaning": "approve", "reason": "security matrix"}),
    ("POST", "/api/v1/approval-requests/{id}/withdraw/"): Row(
        Action.APPROVAL_WITHDRAW, "approval_request", body=_reason,
        # Its requester (the own side's data scientist) or a compliance officer (or an administrator).
        permitted=frozenset({"data_scientist", "compliance_officer", "admin"}),
        note="own requests only, except compliance officers"),
    ("GET", "/api/v1/policies/"): Row(Action.POLICY_READ, kind="global"),
    ("POST", "/api/v1/policies/"): Row(Action.POLICY_UPDATE, kind="global", body=lambda s, w: {
        "risk_tier": "minimal", "reason": "security matrix", "max_approval_age_days": 29}),
    # --- gate and deployments ------------------------------------------------------------------
    ("POST", "/api/v1/gate/"): Row(Action.GATE_EVALUATE, kind="create", body=_gate),
    ("GET", "/api/v1/deployments/"): Row(Action.DEPLOYMENT_READ, kind="global"),
    ("POST", "/api/v1/deployments/"): Row(Action.DEPLOYMENT_RECORD, kind="create", body=_deployment),
    # --- audit log (not team-scoped: the log is one for the whole service) -----------------
    ("GET", "/api/v1/audit/events/"): Row(Action.AUDIT_READ, kind="global"),
    ("GET", "/api/v1/audit/events/{seq}/proof/"): Row(Action.AUDIT_READ, kind="global",
                                                      path=lambda s, w: {"seq": 1}),
    ("GET", "/api/v1/audit/checkpoints/"): Row(Action.AUDIT_READ, kind="global"),
    ("GET", "/api/v1/audit/checkpoints/{size}/"): Row(Action.AUDIT_READ, kind="global",
                                                      path=lambda s, w: {"size": w.checkpoints[-1]}),
    ("GET", "/api/v1/audit/checkpoints/consistency/"): Row(
        Action.AUDIT_READ, kind="global",
        query=lambda s, w: {"first": w.checkpoints[0], "second": w.checkpoints[-1]}),
    ("GET", "/api/v1/audit/verify/"): Row(Action.AUDIT_READ, kind="global"),
    # the dossier (issue 7): it shows every signature, so it needs approval.read; team-scoped like the model
    ("GET", "/api/v1/models/{id}/dossier.pdf"): Row(Action.APPROVAL_READ, "model"),
    ("GET", "/api/v1/models/{id}/evidence.zip"): Row(Action.APPROVAL_READ, "model"),
    ("GET", "/api/v1/models/{id}/compliance/"): Row(Action.APPROVAL_READ, "model"),
    ("GET", "/api/v1/kpis/"): Row(Action.APPROVAL_READ, kind="global"),
}


# --- evaluations, reports, model cards (issue 5) --------------------------------------------
def _evaluations_hook(own: Side, foreign: Side, users: dict) -> None:
    """Each side gets an evaluation with a fairness report, from predictions uploaded with the data."""
    import io

    from django.db import transaction

    from governance.services.evaluations import evaluation_request, evaluation_run
    from registry import services as registry

    rows = "".join(f"{30 + i % 40},{'f' if i % 3 else 'm'},{'yes' if i % 2 else 'no'},"
                   f"{'yes' if i % 5 else 'no'},{(i % 10) / 10}\n" for i in range(60))
    for side in (own, foreign):
        owner = side.owner
        with transaction.atomic():
            data = registry.dataset_version_register(
                actor=owner, dataset=side.dataset, file=SimpleUploadedFile(
                    "e.csv", io.BytesIO(f"age,sex,approved,y_pred,y_score\n{rows}".encode()).read()),
                target_column="approved", sensitive_columns=["sex", "age"])
            digest = sha(f"{side.name}-matrix-evaluated")
            evaluated = registry.model_version_register(
                actor=owner, model=side.model, artifact_uri=f"https://models.example.com/{digest}.skops",
                declared_sha256=digest, task="classification", evaluation_datasets=[data])
            evaluation = evaluation_request(actor=owner, model_version=evaluated, dataset_version=data,
                                            bootstrap=0)
        evaluation = evaluation_run(evaluation_id=evaluation.pk)
        assert evaluation.status == "succeeded", (evaluation.failure_code, evaluation.failure_reason)
        side.extra["evaluation"] = evaluation
        side.extra["evaluated_version"] = evaluated
        side.extra["report"] = evaluation.reports.get()


def _evaluation_request(side: Side, world: Any) -> dict:
    return {"model_version": side.evaluation.model_version_id, "dataset_version": side.evaluation.dataset_version_id,
            "bootstrap": 0}


WORLD_HOOKS.append(_evaluations_hook)
ROWS.update({
    ("GET", "/api/v1/evaluations/"): Row(REGISTRY_READ, "evaluation", kind="list"),
    ("POST", "/api/v1/evaluations/"): Row(REGISTRY_WRITE, kind="create", body=_evaluation_request),
    ("GET", "/api/v1/evaluations/{id}/"): Row(REGISTRY_READ, "evaluation"),
    ("GET", "/api/v1/reports/{id}/"): Row(REGISTRY_READ, "report"),
    ("GET", "/api/v1/reports/{id}/charts/{name}.png"): Row(REGISTRY_READ, "report",
                                                            path=lambda s, w: {"name": "fairness-headline"}),
    ("GET", "/api/v1/model-versions/{id}/model-card/"): Row(REGISTRY_READ, "evaluated_version"),
})


# --- monitoring (issue 6): monitors, batches, compliance alerts -----------------------------
def _monitoring_hook(own: Side, foreign: Side, users: dict) -> None:
    """Each side gets a monitor on its version, one checked batch, and a (warning) data-quality alert."""
    from django.core.files.base import ContentFile
    from django.db import transaction

    from monitoring.services.batches import monitoring_batch_ingest
    from monitoring.services.checks import drift_check_run
    from monitoring.services.monitors import drift_monitor_create

    for side in (own, foreign):
        with transaction.atomic():
            monitor = drift_monitor_create(actor=side.owner, model_version=side.model_version,
                                           environment="production", breach_severity="warning")
            batch, _ = monitoring_batch_ingest(actor=side.owner, monitor=monitor, check_on_commit=False,
                                               file=ContentFile(b"age,approved\n33,1\n47,0\n", name="b.csv"))
        drift_check_run(monitor=monitor, batch=batch)
        side.extra["monitor"] = monitor
        side.extra["monitoring_batch"] = batch
        side.extra["alert"] = monitor.alerts.get(kind="data_quality")
    # And an MLflow alias alert in the own team: no monitor, no Attest version, its MLflow details (so
    # schemathesis checks the alert schema's nullable fields and `mlflow` object on a real row). On a
    # model of its own: a critical alert blocks its model's gate, and the rows deploy the side's model.
    from monitoring.services.alerts import compliance_alert_raise_alias_moved
    from tests.governance.workflow_factories import model

    mirrored = model(owner=own.owner, team_=own.team, tier="limited", name="own-mlflow-model")
    compliance_alert_raise_alias_moved(actor=None, tracking_uri="https://mlflow.example.com", mlflow_name="credit",
                                       alias="champion", mlflow_version=7, previous_version=6, model=mirrored)


def _batch(side: Side, world: Any) -> dict:
    return {"monitor": side.monitor.pk,
            "file": SimpleUploadedFile("b.csv", b"age,income,approved\n30,1.5,1\n", content_type="text/csv")}


# Monitoring's writes are not one action of the matrix: monitors and alert steps are for the model's
# team (registry.write) and for alert.manage (compliance, risk officers); batches for the team only;
# the CI identity's default token has no monitoring:write scope. Hence registry.read narrowed by role.
_MONITOR_WRITERS = frozenset({"data_scientist", "ml_engineer", "compliance_officer", "risk_officer", "admin"})
_BATCH_WRITERS = frozenset({"data_scientist", "ml_engineer", "admin"})
WORLD_HOOKS.append(_monitoring_hook)
ROWS.update({
    ("GET", "/api/v1/monitors/"): Row(REGISTRY_READ, "monitor", kind="list"),
    ("POST", "/api/v1/monitors/"): Row(REGISTRY_READ, kind="create", permitted=_MONITOR_WRITERS, body=lambda s, w: {
        "model_version": s.model_version.pk, "environment": "staging"}, note="team or alert.manage"),
    ("GET", "/api/v1/monitors/{id}/"): Row(REGISTRY_READ, "monitor"),
    ("PATCH", "/api/v1/monitors/{id}/"): Row(REGISTRY_READ, "monitor", permitted=_MONITOR_WRITERS,
                                              body=lambda s, w: {"drift_share": 0.4, "reason": "security matrix"},
                                              note="team or alert.manage"),
    ("GET", "/api/v1/monitors/{id}/results/"): Row(REGISTRY_READ, "monitor"),
    ("GET", "/api/v1/monitoring-batches/"): Row(REGISTRY_READ, "monitoring_batch", kind="list"),
    ("POST", "/api/v1/monitoring-batches/"): Row(REGISTRY_READ, kind="create", permitted=_BATCH_WRITERS,
                                                 body=_batch, multipart=True, note="the model's team"),
    ("GET", "/api/v1/monitoring-batches/{id}/"): Row(REGISTRY_READ, "monitoring_batch"),
    ("GET", "/api/v1/alerts/"): Row(REGISTRY_READ, "alert", kind="list"),
    ("GET", "/api/v1/alerts/{id}/"): Row(REGISTRY_READ, "alert"),
    ("POST", "/api/v1/alerts/{id}/acknowledge/"): Row(REGISTRY_READ, "alert", permitted=_MONITOR_WRITERS,
                                                      body=_reason, note="team or alert.manage"),
    ("POST", "/api/v1/alerts/{id}/resolve/"): Row(REGISTRY_READ, "alert", permitted=_MONITOR_WRITERS,
                                                  body=_reason, note="team or alert.manage (warning alert)"),
    ("POST", "/api/v1/alerts/{id}/dismiss/"): Row(REGISTRY_READ, "alert", permitted=_MONITOR_WRITERS,
                                                  body=_reason, note="team or alert.manage (warning alert)"),
})

# Machine-to-machine receivers: no user; an HMAC signature is the credential, and a user's token is
# no substitute: every caller without the signature gets 401 (the matrix test configures the secret).
ROWS.update({
    ("POST", "/api/v1/mlflow/webhook/"): Row(
        "", kind="webhook", body=lambda s, w: {"entity": "model_version", "action": "created",
                                               "data": {"name": s.model.name, "version": "1"}},
        note="HMAC-signed by MLflow (issue 8)"),
})
