"""The roles of CONTRACT.md. Each is a Django group created by migration (governance 0002).

Lives outside the apps because registry selectors scope reads by role too."""

from django.db import models


class Role(models.TextChoices):
    DATA_SCIENTIST = "data_scientist", "Data scientist"
    ML_ENGINEER = "ml_engineer", "ML engineer"
    MODEL_VALIDATOR = "model_validator", "Model validator"
    COMPLIANCE_OFFICER = "compliance_officer", "Compliance officer"
    RISK_OFFICER = "risk_officer", "Risk officer"
    AUDITOR = "auditor", "Auditor (read-only)"
    CI_SERVICE = "ci_service", "CI service"


def role_order(role: str) -> tuple[int, str]:
    """Sort key: the roles in Role's order (who builds, then who signs, then who reads), others last.

    A policy's roles come from a JSON object, whose key order PostgreSQL's jsonb does not keep.
    """
    return (Role.values.index(role) if role in Role.values else len(Role.values), role)


# Roles that read every model regardless of team: they review, validate or audit the whole registry.
GOVERNANCE_READ_ROLES = frozenset(
    {Role.MODEL_VALIDATOR, Role.COMPLIANCE_OFFICER, Role.RISK_OFFICER, Role.AUDITOR}
)
