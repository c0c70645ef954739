"""Approval policy versions. An edit never changes a version: it adds the next one.

Requests keep the version they were opened under (ApprovalRequest.policy), so an edit
cannot loosen or tighten a sign-off already under way; the gate, however, compares the
version an approval was signed under with the tier's current one and voids approvals
signed under an older version (`approval_missing`).
"""

from typing import Any

from django.db import transaction

from governance.audit import AuditAction, audit_event_record
from governance.environments import environment_require_known
from governance.errors import action_forbidden, invalid
from governance.models import ApprovalPolicy
from governance.permissions import Action, user_can
from governance.selectors import policy_current

EDITABLE_FIELDS = ("environments", "required_roles", "required_reports", "thresholds", "max_report_age_days",
                   "max_approval_age_days", "approvable")
UNACCEPTABLE_NEVER_APPROVABLE = "The unacceptable tier can never be approved for deployment."
NOTHING_CHANGED = "The new version would equal the current one; nothing to change."
UNKNOWN_FIELDS = "Not editable: {fields}."


@transaction.atomic
def policy_update(*, actor: Any, risk_tier: str, changes: dict[str, Any], reason: str) -> ApprovalPolicy:
    """Create the next version of the tier's policy with `changes` applied; returns it.

    Only compliance officers (and administrators) edit policies (403 `permission_denied`);
    the `unacceptable` tier stays unapprovable (400 `not_approvable`); a change that changes
    nothing is refused (400 `policy_unchanged`). Writes POLICY_UPDATED with before and after.
    """
    if not user_can(actor, Action.POLICY_UPDATE):
        raise action_forbidden(user=actor, action="edit approval policies")
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise invalid(UNKNOWN_FIELDS.format(fields=", ".join(unknown)), code="validation_error",
                      field=unknown[0])
    if not reason or not reason.strip():
        raise invalid("A policy change needs a reason.", code="reason_required", field="reason")
    environments = changes.get("environments")
    if isinstance(environments, list):  # not a list of names: the model's clean() says so
        for environment in environments:
            environment_require_known(environment, field="environments")
    # Lock the tier's current row so two editors cannot both create version n+1.
    current = policy_current(risk_tier=risk_tier)
    current = ApprovalPolicy.objects.select_for_update().get(pk=current.pk)
    rules = {field: getattr(current, field) for field in EDITABLE_FIELDS}
    new_rules = {**rules, **changes}
    if risk_tier == "unacceptable" and new_rules["approvable"]:
        raise invalid(UNACCEPTABLE_NEVER_APPROVABLE, code="not_approvable", field="approvable")
    if new_rules == rules:
        raise invalid(NOTHING_CHANGED, code="policy_unchanged")
    policy = ApprovalPolicy(risk_tier=risk_tier, version=current.version + 1, created_by=actor,
                            change_reason=reason.strip(), **new_rules)
    policy.full_clean()
    policy.save()
    audit_event_record(actor=actor, action=AuditAction.POLICY_UPDATED, target=policy,
                       before=current.as_rules(), after=policy.as_rules(), reason=policy.change_reason)
    return policy
