"""The gate and deployments over the API (CONTRACT.md: `POST gate/`, `deployments/`)."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import errors, selectors
from governance.api.approval_serializers import (
    DeploymentListQuerySerializer,
    DeploymentOutputSerializer,
    DeploymentRecordInputSerializer,
    GateDecisionOutputSerializer,
    GateInputSerializer,
)
from governance.audit import audit_log_sequence, audit_seq_for_entry
from governance.gate import gate_evaluate
from governance.services.deployments import deployment_record
from mlops_site.common.api.pagination import DefaultPagination
from mlops_site.common.api.schema_hooks import paginated
from registry import selectors as registry_selectors
from registry.api.serializers import ErrorResponseSerializer

# The answer's time, formatted as the API formats every time (REST_FRAMEWORK settings).
_EVALUATED_AT = serializers.DateTimeField()
ERROR = OpenApiResponse(ErrorResponseSerializer, description="Error body with a stable code.")


class GateApi(APIView):
    """May this artifact of this model version go to this environment now? A denial is a 200.

    The answer carries every check, the stored decision's id (a deployment cites it) and the
    seq of the decision's audit event.
    """

    required_scopes = {"write": "gate:check"}

    @extend_schema(summary="Ask the deployment gate", request=GateInputSerializer,
                   responses={200: GateDecisionOutputSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR})
    def post(self, request: Request) -> Response:
        serializer = GateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        decision = gate_evaluate(actor=request.user, model_name=data["model"], version=data["version"],
                                 environment=data["environment"], artifact_sha256=data["artifact_sha256"])
        seq = audit_seq_for_entry(decision.audit_entry)
        if seq is None:
            # Chained on commit already, except inside an enclosing transaction (tests): chain it now.
            audit_log_sequence(entry_ids=[decision.audit_entry.pk])
            seq = audit_seq_for_entry(decision.audit_entry)
        # The body GateDecisionOutputSerializer describes, built directly: its eleven nested check
        # serializers cost more CPU than the gate's reads (docs/BENCHMARKS.md, "Gate"); a test
        # keeps the two equal, and the checks are already plain {"code", "passed", "message"}.
        body = {
            "allowed": decision.allowed, "decision_id": str(decision.decision_id), "model": data["model"],
            "version": data["version"], "environment": data["environment"],
            "evaluated_at": _EVALUATED_AT.to_representation(decision.evaluated_at), "audit_seq": seq,
            "checks": decision.checks,
        }
        return Response(body, status=status.HTTP_200_OK)


class DeploymentListRecordApi(APIView):
    """Deployments the user may read; `?environment=E&at=T` answers what was live in E at T. POST records one."""

    required_scopes = {"read": None, "write": "deployments:write"}

    @extend_schema(summary="List deployments, or what was live at a time", parameters=[
        OpenApiParameter("environment", str), OpenApiParameter("model", str),
        OpenApiParameter("at", str, description="ISO 8601 time: what was live then")],
        responses={200: paginated(DeploymentOutputSerializer, "PaginatedDeploymentList"), 400: ERROR, 401: ERROR,
                   403: ERROR})
    def get(self, request: Request) -> Response:
        query = DeploymentListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        deployments = selectors.deployment_list(user=request.user, **query.validated_data)
        paginator = DefaultPagination()
        page = paginator.paginate_queryset(deployments, request, view=self)
        return paginator.get_paginated_response(DeploymentOutputSerializer(page, many=True).data)

    @extend_schema(summary="Record a deployment", request=DeploymentRecordInputSerializer,
                   responses={201: DeploymentOutputSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR,
                              409: ERROR})
    def post(self, request: Request) -> Response:
        """Record that a version went live, citing the gate decision that allowed it (used once, within 15 minutes)."""
        serializer = DeploymentRecordInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        candidates = registry_selectors.model_version_list(user=request.user).filter(
            model__name=data["model"], version=data["version"])
        model_version = candidates.select_related("model").first()
        if model_version is None:
            raise errors.not_found(f"Model {data['model']!r} has no version {data['version']} you can see.",
                                      field="version")
        deployment = deployment_record(actor=request.user, model_version=model_version,
                                       environment=data["environment"], decision_id=data["decision_id"])
        output = selectors.deployment_list(user=request.user).get(pk=deployment.pk)
        return Response(DeploymentOutputSerializer(output).data, status=status.HTTP_201_CREATED)
