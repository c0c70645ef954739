"""Evaluations, reports, their charts and the model card over the API: parse, call one selector or service, serialize.

Another team's evaluation, report or version reads as missing (404). Requesting an evaluation
needs the `registry:write` scope on a token (it is registration of evidence about a version).
"""

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import report_selectors
from governance.api.evaluation_serializers import (
    EvaluationListQuerySerializer,
    EvaluationOutputSerializer,
    EvaluationRequestInputSerializer,
    ModelCardOutputSerializer,
    ReportOutputSerializer,
    chart_path,
)
from governance.model_card import model_card_build
from governance.services.evaluations import evaluation_request
from mlops_site.common.api.pagination import DefaultPagination
from mlops_site.common.api.schema_hooks import paginated
from registry import selectors as registry_selectors
from registry.api.serializers import ErrorResponseSerializer

ERROR = OpenApiResponse(ErrorResponseSerializer, description="Error body with a stable code.")
READ_ERRORS = {401: ERROR, 403: ERROR, 404: ERROR}


class EvaluationListCreateApi(APIView):
    """Evaluations the user may read (filter by model_version, dataset_version, status); POST requests one."""

    required_scopes = {"read": "registry:read", "write": "registry:write"}

    @extend_schema(operation_id="evaluations_list", summary="List evaluations", parameters=[
        OpenApiParameter("model_version", int), OpenApiParameter("dataset_version", int),
        OpenApiParameter("status", str, enum=["queued", "running", "succeeded", "failed"])],
        responses={200: paginated(EvaluationOutputSerializer, "PaginatedEvaluationList"), 400: ERROR, 401: ERROR,
                   403: ERROR})
    def get(self, request: Request) -> Response:
        query = EvaluationListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        evaluations = report_selectors.evaluation_list(user=request.user, filters=query.validated_data)
        paginator = DefaultPagination()
        page = paginator.paginate_queryset(evaluations, request, view=self)
        return paginator.get_paginated_response(
            EvaluationOutputSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(summary="Request an evaluation (fairness and explainability reports)",
                   request=EvaluationRequestInputSerializer,
                   responses={201: EvaluationOutputSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR})
    def post(self, request: Request) -> Response:
        """Validate the evaluation data against the model (400 naming the column) and queue the computation."""
        serializer = EvaluationRequestInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        model_version = registry_selectors.model_version_get_for_user(user=request.user, pk=data["model_version"])
        dataset_version = registry_selectors.dataset_version_get_for_user(user=request.user,
                                                                          pk=data["dataset_version"])
        evaluation = evaluation_request(
            actor=request.user, model_version=model_version, dataset_version=dataset_version,
            sensitive_features=data.get("sensitive_features") or None, positive_label=data.get("positive_label"),
            bootstrap=data.get("bootstrap"), min_group_size=data.get("min_group_size"), seed=data.get("seed"),
            target_column=data.get("target_column") or "",
        )
        # Eagerly computed already in the embedded default; queued with a broker.
        output = report_selectors.evaluation_get_for_user(user=request.user, pk=evaluation.pk)
        return Response(EvaluationOutputSerializer(output, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)


class EvaluationDetailApi(APIView):
    """One evaluation: status, progress, failure code and reason, the results and chart URLs."""

    required_scopes = {"read": "registry:read"}

    @extend_schema(summary="Read an evaluation", responses={200: EvaluationOutputSerializer, **READ_ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        evaluation = report_selectors.evaluation_get_for_user(user=request.user, pk=pk)
        return Response(EvaluationOutputSerializer(evaluation, context={"request": request}).data)


class ReportDetailApi(APIView):
    """One report: results, sha256, the hashes of the artifact and data, charts and the policy thresholds."""

    required_scopes = {"read": "registry:read"}

    @extend_schema(summary="Read a report", responses={200: ReportOutputSerializer, **READ_ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        report = report_selectors.report_get_for_user(user=request.user, pk=pk)
        return Response(ReportOutputSerializer(report, context={"request": request}).data)


class ReportChartApi(APIView):
    """One chart of a report as PNG (image/png); its sha256 is in the ETag."""

    required_scopes = {"read": "registry:read"}

    @extend_schema(summary="A report chart (PNG)", responses={
        (200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY, description="PNG image"), **READ_ERRORS})
    def get(self, request: Request, pk: int, name: str) -> HttpResponse:
        chart = report_selectors.report_chart_get_for_user(user=request.user, pk=pk, name=name)
        response = HttpResponse(bytes(chart.png), content_type="image/png")
        response["ETag"] = f'"{chart.sha256}"'
        response["Cache-Control"] = "private, max-age=3600, immutable"
        response["X-Content-Type-Options"] = "nosniff"
        return response


class ModelCardApi(APIView):
    """The model card of a version (Model Card Toolkit sections), from the registry and its newest reports."""

    required_scopes = {"read": "registry:read"}

    @extend_schema(summary="The model card of a model version", responses={200: ModelCardOutputSerializer,
                                                                          **READ_ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        model_version = registry_selectors.model_version_get_for_user(user=request.user, pk=pk)
        card = model_card_build(model_version=model_version,
                                chart_url=lambda report, name: request.build_absolute_uri(chart_path(report, name)))
        return Response(ModelCardOutputSerializer(card).data)
