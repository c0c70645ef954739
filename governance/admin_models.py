"""The model and model version pages with their governance: lineage graph, reports and charts,
approval requests, deployments, gate decisions, drift and alerts, and the dossier download.

The registry's admin classes stay free of governance (registry never imports governance); this
module replaces their registration with subclasses that add governance's evidence to the change
page. Every list is read through the API's selectors for the logged-in user; nothing here writes.
Imported from governance/admin.py.
"""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from governance import selectors
from governance.dashboard_selectors import (
    approval_request_roles_open,
    dossier_url,
    drift_status,
    gate_decisions_for_user,
    report_panels,
)
from registry.admin import ModelVersionAdmin, RegisteredModelAdmin, lineage_columns
from registry.models import ModelVersion, RegisteredModel
from registry.selectors import model_version_list


def _requests(user: Any, **lookup) -> list[dict[str, Any]]:
    rows = []
    for request in selectors.approval_request_list(user=user).filter(**lookup)[:20]:
        rows.append({"r": request, "roles_open": approval_request_roles_open(request)
                     if request.status == "pending" else {}})
    return rows


class GovernedModelVersionAdmin(ModelVersionAdmin):
    change_form_template = "admin/registry/modelversion/governed_change_form.html"

    def changeform_view(self, request: HttpRequest, object_id=None, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        version = model_version_list(user=request.user).filter(pk=object_id).first() if object_id else None
        if version is not None:
            extra_context.update(self.governance_context(request, version))
        return super().changeform_view(request, object_id, form_url, extra_context)

    @staticmethod
    def governance_context(request: HttpRequest, version: ModelVersion) -> dict[str, Any]:
        user = request.user
        return {
            "mv": version,
            "lineage": lineage_columns(user=user, version=version),
            "report_panels": report_panels(version=version),
            "requests": _requests(user, model_version=version),
            "deployments": list(selectors.deployment_list(user=user).filter(model_version=version)[:20]),
            "decisions": list(gate_decisions_for_user(user=user).filter(model_version=version)
                              .order_by("-evaluated_at", "-id")[:8]),
            "drift": drift_status(user=user, version=version),
            "dossier_url": dossier_url(model=version.model),
        }


class GovernedRegisteredModelAdmin(RegisteredModelAdmin):
    change_form_template = "admin/registry/registeredmodel/governed_change_form.html"

    def changeform_view(self, request: HttpRequest, object_id=None, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        model = self.get_queryset(request).filter(pk=object_id).first() if object_id else None
        if model is not None:
            user = request.user
            versions = list(model_version_list(user=user).filter(model=model).order_by("-version"))
            live = selectors.model_live_versions(model=model)
            latest = versions[0] if versions else None
            extra_context.update({
                "rm": model, "versions": [{"v": v, "live": v.pk in live} for v in versions],
                "requests": _requests(user, model=model),
                "deployments": list(selectors.deployment_list(user=user).filter(model=model)[:20]),
                "drift": drift_status(user=user, version=latest) if latest is not None else None,
                "dossier_url": dossier_url(model=model),
            })
        return super().changeform_view(request, object_id, form_url, extra_context)


for _model, _admin_class in ((ModelVersion, GovernedModelVersionAdmin),
                             (RegisteredModel, GovernedRegisteredModelAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin_class)
