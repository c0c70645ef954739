"""Governance's approvals part of the demo: a deployment request pending for the compliance officer.

So that a new user, logged in as the demo's compliance officer, finds a request waiting for
their signature on the dashboard, with its evidence, right after `make demo`. Runs last in
`load_demo` (registry.demo.demo_step_add, order 900), after the reports and monitoring steps,
so that the evidence it records is the evidence as it stands at the end of the demo (a request
opened before a report landed would be refused as stale when signed).

Idempotent: when a pending deployment request still needs a compliance officer's approval, it
does nothing; otherwise it opens one for the first demo target that has no request at all.
"""

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model

from governance.dashboard_selectors import approval_request_roles_open
from governance.models import ApprovalRequest
from governance.services.approvals import approval_request_open
from mlops_site.common.errors import ApplicationError
from mlops_site.common.roles import Role
from registry.demo import ARRESTS_MODEL, DEMO_ML_ENGINEER, DIABETES_MODEL
from registry.models import ModelVersion

# (model, version, environment): the first free one is opened, the high-risk classifier first.
DEMO_PENDING_TARGETS = (
    (ARRESTS_MODEL, 2, "production"),
    (ARRESTS_MODEL, 1, "production"),
    (ARRESTS_MODEL, 2, "staging"),
    (DIABETES_MODEL, 1, "production"),
)
DEMO_STEP_ORDER = 900


def _waiting_for_compliance() -> ApprovalRequest | None:
    pending = (ApprovalRequest.objects.filter(status=ApprovalRequest.Status.PENDING, kind="deployment")
               .select_related("policy", "model").prefetch_related("signatures").order_by("created_at"))
    for request in pending:
        if Role.COMPLIANCE_OFFICER in approval_request_roles_open(request):
            return request
    return None


def demo_pending_request(*, log: Callable[[str], None] = lambda line: None, result: Any = None) -> None:
    """Open one deployment request that waits for the compliance officer, unless one already does."""
    log("Approvals: a deployment request pending for the compliance officer")
    existing = _waiting_for_compliance()
    if existing is not None:
        log(f"  already there: request #{existing.pk} ({existing.model.name}, {existing.environment}) is pending")
        if result is not None:
            result.skipped.append(f"approval request #{existing.pk}")
        return
    requester = get_user_model().objects.filter(username=DEMO_ML_ENGINEER).first()
    if requester is None:
        log(f"  skipped: the demo user {DEMO_ML_ENGINEER} does not exist")
        return
    for model_name, number, environment in DEMO_PENDING_TARGETS:
        version = ModelVersion.objects.select_related("model").filter(model__name=model_name, version=number).first()
        if version is None or ApprovalRequest.objects.filter(model_version=version, environment=environment).exists():
            continue
        try:
            request = approval_request_open(actor=requester, kind="deployment", model_version=version,
                                            environment=environment)
        except ApplicationError as exc:
            log(f"  could not open a request for {model_name} v{number} -> {environment}: {exc.message}")
            continue
        what = f"approval request #{request.pk}: deploy {model_name} v{number} -> {environment} (pending)"
        log(f"  opened {what}")
        if result is not None:
            result.created.append(what)
        return
    log("  skipped: every demo target already has a request")
