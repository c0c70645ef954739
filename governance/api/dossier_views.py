"""The dossier over the API (CONTRACT.md): `models/{id}/dossier.pdf`, `models/{id}/evidence.zip`,
`models/{id}/compliance/`, `kpis/`.

Readers: governance roles and administrators for every model, the model's team for its own;
the CI identity is refused (the dossier shows every signature). `?version=N` narrows to one
version. Reads are thin: parse, check access through the selector, call the service/selector.
"""

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.reports.selectors import compliance_get, dossier_model_get_for_user, kpis_for_user
from governance.services.dossiers import dossier_generate, evidence_bundle_export
from registry.api.serializers import ErrorResponseSerializer

ERROR = OpenApiResponse(ErrorResponseSerializer, description="Error body with a stable code.")
VERSION = OpenApiParameter("version", int, description="only this version of the model (default: all)")
ERRORS = {400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR}


class _ModelReadApi(APIView):
    required_scopes = {"read": "registry:read"}

    def model_and_version(self, request: Request, pk: int):
        return dossier_model_get_for_user(user=request.user, pk=pk, version=request.query_params.get("version"))


def _attachment(content: bytes, *, content_type: str, stem: str, version: int | None, extension: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    suffix = f"-v{version}" if version else ""
    response["Content-Disposition"] = f'attachment; filename="{stem}{suffix}.{extension}"'
    return response


class DossierPdfApi(_ModelReadApi):
    """The model's dossier PDF, generated now against a fresh checkpoint; stored with its sha256 and audit-logged."""

    @extend_schema(summary="Download the model's dossier (PDF)", parameters=[VERSION],
                   responses={(200, "application/pdf"): OpenApiTypes.BINARY, **ERRORS})
    def get(self, request: Request, pk: int) -> HttpResponse:
        model, version = self.model_and_version(request, pk)
        generated = dossier_generate(actor=request.user, model=model, version=version)
        response = _attachment(generated.pdf, content_type="application/pdf", stem=f"dossier-{model.pk}",
                               version=version, extension="pdf")
        response["X-Attest-Sha256"] = generated.dossier.sha256
        response["X-Attest-Manifest-Sha256"] = generated.dossier.manifest_sha256
        return response


class EvidenceBundleApi(_ModelReadApi):
    """The evidence bundle (zip): PDF, snapshot, model card, reports, events with proofs, checkpoint, manifests."""

    @extend_schema(summary="Download the model's evidence bundle (zip)", parameters=[VERSION],
                   responses={(200, "application/zip"): OpenApiTypes.BINARY, **ERRORS})
    def get(self, request: Request, pk: int) -> HttpResponse:
        model, version = self.model_and_version(request, pk)
        exported = evidence_bundle_export(actor=request.user, model=model, version=version)
        return _attachment(exported.zip, content_type="application/zip", stem=f"evidence-{model.pk}",
                           version=version, extension="zip")


class ComplianceApi(_ModelReadApi):
    """The regulatory mapping of the model: each control met / partly met / missing, with its evidence."""

    @extend_schema(summary="The model's compliance map", parameters=[VERSION],
                   responses={200: OpenApiTypes.OBJECT, **ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        model, version = self.model_and_version(request, pk)
        return Response(compliance_get(model=model, version=version))


class KpiApi(APIView):
    """Governance KPIs per model (the models the user may read) and overall."""

    required_scopes = {"read": "registry:read"}

    @extend_schema(summary="Governance KPIs", responses={200: OpenApiTypes.OBJECT, 401: ERROR, 403: ERROR})
    def get(self, request: Request) -> Response:
        return Response(kpis_for_user(user=request.user))
