"""Who may read a model's dossier, evidence bundle, compliance map and KPIs, and those reads.

Readers: the governance roles (validator, compliance and risk officers, auditor) and
administrators for every model; the model's team members for their own (404 for another
team's, as everywhere). A role that may not read approvals (the CI identity) is refused: the
dossier shows every signature.
"""

from __future__ import annotations

from typing import Any

from governance.errors import action_forbidden, invalid, not_found
from governance.permissions import Action, user_can
from governance.reports.kpis import governance_kpis
from governance.reports.mapping import compliance_evaluate, compliance_summary
from governance.reports.snapshot import dossier_snapshot_build
from registry.models import ModelVersion, RegisteredModel
from registry.selectors import model_get_for_user, model_list

VERSION_NOT_FOUND = "Model {name!r} has no version {version}."


def _reader_check(user: Any) -> None:
    if not user_can(user, Action.APPROVAL_READ):
        raise action_forbidden(user=user, action="read dossiers")


def dossier_model_get_for_user(*, user: Any, pk: Any = None, name: str | None = None,
                               version: Any = None) -> tuple[RegisteredModel, int | None]:
    """The model (and the version number asked for, checked to exist) the user may read a dossier of."""
    _reader_check(user)
    model = model_get_for_user(user=user, pk=pk, name=name)
    if version in (None, ""):
        return model, None
    try:
        number = int(version)
    except (TypeError, ValueError):
        raise invalid("version must be a whole number.", field="version") from None
    if number < 1 or number > 2**31 or not ModelVersion.objects.filter(model=model, version=number).exists():
        raise not_found(VERSION_NOT_FOUND.format(name=model.name, version=version), field="version")
    return model, number


def compliance_get(*, model: RegisteredModel, version: int | None = None) -> dict[str, Any]:
    """The compliance map of the model against the latest checkpoint, as JSON (no PDF, nothing written)."""
    snapshot = dossier_snapshot_build(model=model, version=version)
    rows = compliance_evaluate(snapshot)
    cp = snapshot.checkpoint
    return {
        "model": model.name, "model_id": model.pk, "risk_tier": model.risk_tier, "version": version,
        "generated_at": snapshot.generated_at.isoformat(),
        "checkpoint": None if cp is None else {"size": cp.size, "root": cp.root},
        "manifest_sha256": snapshot.manifest_sha256, "summary": compliance_summary(rows), "controls": rows,
    }


def kpis_for_user(*, user: Any) -> dict[str, Any]:
    """The governance KPIs over the models the user may read."""
    _reader_check(user)
    return governance_kpis(models=list(model_list(user=user)))
