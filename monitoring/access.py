"""Who may do what in monitoring, in governance's permission matrix (governance.permissions).

Monitors and batches belong to the model's team: its members (data scientists, ML engineers,
its CI identity) write them; compliance and risk officers (`alert.manage`) manage monitors
and alerts of every team. Closing a critical alert needs a compliance officer's signature.
The auditor reads everything and writes nothing (governance.permissions.FORBIDDEN).
"""

from typing import Any

from governance.permissions import Action, user_can, user_roles
from mlops_site.common.roles import Role


def can_manage_monitor(user: Any, model_version: Any) -> bool:
    return user_can(user, Action.REGISTRY_WRITE, model_version) or user_can(user, Action.ALERT_MANAGE)


def can_send_batch(user: Any, monitor: Any) -> bool:
    return user is None or user_can(user, Action.REGISTRY_WRITE, monitor.model_version)


def can_handle_alert(user: Any, alert: Any) -> bool:
    return user_can(user, Action.ALERT_MANAGE) or user_can(user, Action.REGISTRY_WRITE, alert.model)


def can_sign_alert(user: Any) -> bool:
    """A compliance officer who may sign (never an auditor or a CI identity, whatever else they hold)."""
    roles = user_roles(user)
    return (Role.COMPLIANCE_OFFICER in roles and Role.AUDITOR not in roles and Role.CI_SERVICE not in roles
            and user_can(user, Action.ALERT_MANAGE))
