"""Monitors, monitoring batches, drift results and compliance alerts over the API.

Thin: parse, call one selector or service, serialize. Objects of another team read as missing
(404). Writes need the `monitoring:write` scope on a token; the auditor reads only.
"""

from django.core.files.base import ContentFile
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlops_site.common.api.parsers import JSONParser
from monitoring import errors, selectors
from monitoring.api.serializers import (
    AlertActionInputSerializer,
    ComplianceAlertOutputSerializer,
    DriftMonitorCreateInputSerializer,
    DriftMonitorOutputSerializer,
    DriftMonitorUpdateInputSerializer,
    DriftResultOutputSerializer,
    MonitoringBatchCreateInputSerializer,
    MonitoringBatchOutputSerializer,
)
from monitoring.models import ComplianceAlert, Severity
from monitoring.services.alerts import compliance_alert_acknowledge, compliance_alert_dismiss, compliance_alert_resolve
from monitoring.services.batches import monitoring_batch_ingest
from monitoring.services.monitors import drift_monitor_create, drift_monitor_update
from monitoring.tables import records_bytes
from registry import selectors as registry_selectors
from registry.api.serializers import ErrorResponseSerializer

SCOPES = {"read": "registry:read", "write": "monitoring:write"}
ERROR = OpenApiResponse(ErrorResponseSerializer, description="Error body with a stable code.")
READ_ERRORS = {401: ERROR, 403: ERROR, 404: ERROR}
WRITE_ERRORS = {400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR, 413: ERROR}


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError as exc:
        raise errors.invalid(f"{name} is a whole number.", field=name) from exc
    # An id filter: beyond a 64-bit key no row can match, and the database refuses to bind it
    # (SQLite OverflowError, PostgreSQL bigint out of range), so it is bad input, not a 500.
    if not -(2**63) <= number < 2**63:
        raise errors.invalid(f"{name} is out of range for an id.", field=name)
    return number


class _MonitoringApi:
    required_scopes = SCOPES
    filter_backends: list = []


# --- monitors -------------------------------------------------------------------------------------

@extend_schema_view(get=extend_schema(
    summary="List drift monitors",
    parameters=[OpenApiParameter("model", str), OpenApiParameter("environment", str)],
    responses={200: DriftMonitorOutputSerializer(many=True), **READ_ERRORS}))
class DriftMonitorListCreateApi(_MonitoringApi, generics.ListAPIView):
    """Drift monitors the user may read; POST creates one for a model version and environment."""

    serializer_class = DriftMonitorOutputSerializer
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def get_queryset(self):
        queryset = selectors.drift_monitor_list(user=self.request.user)
        params = self.request.query_params
        if params.get("model"):
            queryset = queryset.filter(model_version__model__name=params["model"])
        if params.get("environment"):
            queryset = queryset.filter(environment=params["environment"])
        return queryset.order_by("pk")

    @extend_schema(summary="Create a drift monitor", request=DriftMonitorCreateInputSerializer,
                   responses={201: DriftMonitorOutputSerializer, **WRITE_ERRORS})
    def post(self, request: Request) -> Response:
        """Watch a model version in an environment (reference default: its training data)."""
        data = _valid(DriftMonitorCreateInputSerializer, request.data)
        try:
            version = registry_selectors.model_version_get_for_user(user=request.user, pk=data["model_version"])
        except errors.NotFoundError as exc:
            raise errors.not_found("No such model version.", field="model_version") from exc
        reference = None
        if data.get("reference") is not None:
            try:
                reference = registry_selectors.dataset_version_get_for_user(user=request.user, pk=data["reference"])
            except errors.NotFoundError as exc:
                raise errors.not_found("No such dataset version.", field="reference") from exc
        features = data.get("features")
        monitor = drift_monitor_create(
            actor=request.user, model_version=version, environment=data["environment"], reference=reference,
            features=[dict(f) for f in features] if features is not None else None,
            drift_share=data["drift_share"], interval_minutes=data["interval_minutes"],
            breach_severity=data["breach_severity"], retrain_on_critical=data["retrain_on_critical"],
            label_column=data["label_column"], prediction_column=data["prediction_column"],
            metric_tolerance=data["metric_tolerance"], fairness_tolerance=data["fairness_tolerance"],
        )
        return Response(DriftMonitorOutputSerializer(monitor).data, status=status.HTTP_201_CREATED)


class DriftMonitorDetailApi(_MonitoringApi, APIView):
    """One drift monitor; PATCH changes what it watches or how it reacts."""

    parser_classes = [JSONParser]

    @extend_schema(summary="Retrieve a drift monitor", responses={200: DriftMonitorOutputSerializer, **READ_ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        return Response(DriftMonitorOutputSerializer(selectors.drift_monitor_get_for_user(user=request.user,
                                                                                         pk=pk)).data)

    @extend_schema(summary="Change a drift monitor", request=DriftMonitorUpdateInputSerializer,
                   responses={200: DriftMonitorOutputSerializer, **WRITE_ERRORS})
    def patch(self, request: Request, pk: int) -> Response:
        monitor = selectors.drift_monitor_get_for_user(user=request.user, pk=pk)
        data = dict(_valid(DriftMonitorUpdateInputSerializer, request.data))
        reason = data.pop("reason", "")
        if "features" in data:
            data["features"] = [dict(f) for f in data["features"]]
        monitor = drift_monitor_update(actor=request.user, monitor=monitor, reason=reason, **data)
        return Response(DriftMonitorOutputSerializer(monitor).data)


@extend_schema_view(get=extend_schema(summary="Drift results of a monitor",
                                      responses={200: DriftResultOutputSerializer(many=True), **READ_ERRORS}))
class DriftResultListApi(_MonitoringApi, generics.ListAPIView):
    """The drift results of one monitor, newest first."""

    serializer_class = DriftResultOutputSerializer

    def get_queryset(self):
        monitor = selectors.drift_monitor_get_for_user(user=self.request.user, pk=self.kwargs["pk"])
        return selectors.drift_result_list(user=self.request.user).filter(monitor=monitor).order_by(
            "-checked_at", "-id")


# --- batches --------------------------------------------------------------------------------------

@extend_schema_view(get=extend_schema(summary="List monitoring batches",
                                      parameters=[OpenApiParameter("monitor", int)],
                                      responses={200: MonitoringBatchOutputSerializer(many=True), **READ_ERRORS}))
class MonitoringBatchListCreateApi(_MonitoringApi, generics.ListAPIView):
    """Monitoring batches; POST sends one (multipart `file`: CSV, Parquet or JSON records; or JSON `records`)."""

    serializer_class = MonitoringBatchOutputSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self):
        queryset = selectors.monitoring_batch_list(user=self.request.user).prefetch_related("results")
        monitor = _int_param(self.request, "monitor")
        if monitor is not None:
            queryset = queryset.filter(monitor_id=monitor)
        return queryset.order_by("-received_at", "-id")

    @extend_schema(summary="Send a monitoring batch",
                   request={"multipart/form-data": MonitoringBatchCreateInputSerializer,
                            "application/json": MonitoringBatchCreateInputSerializer},
                   responses={201: MonitoringBatchOutputSerializer, 200: MonitoringBatchOutputSerializer,
                              **WRITE_ERRORS})
    def post(self, request: Request) -> Response:
        """Store a batch (201), or answer the stored one (200) when these bytes were sent before.

        The drift check runs on commit (a Celery task). Empty or non-tabular content is 400
        `empty_batch` / `not_tabular` / `unreadable_batch`, and nothing is stored.
        """
        data = _valid(MonitoringBatchCreateInputSerializer, request.data)
        monitor = selectors.drift_monitor_get_for_user(user=request.user, pk=data["monitor"])
        file = data.get("file")
        if file is None:
            if "records" not in data:
                raise errors.invalid("Send the batch as `file` (multipart) or as `records` (JSON).",
                                     code="file_required", field="file")
            if not data["records"]:
                raise errors.batch_empty()
            file = ContentFile(records_bytes(data["records"]), name="records.json")
        batch, created = monitoring_batch_ingest(actor=request.user, monitor=monitor, file=file)
        batch = selectors.monitoring_batch_get_for_user(user=request.user, pk=batch.pk)
        return Response(MonitoringBatchOutputSerializer(batch).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class MonitoringBatchDetailApi(_MonitoringApi, APIView):
    """One monitoring batch, with its data-quality findings and its result's id."""

    @extend_schema(summary="Retrieve a monitoring batch", responses={200: MonitoringBatchOutputSerializer,
                                                                     **READ_ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        return Response(MonitoringBatchOutputSerializer(
            selectors.monitoring_batch_get_for_user(user=request.user, pk=pk)).data)


# --- alerts ---------------------------------------------------------------------------------------

@extend_schema_view(get=extend_schema(
    summary="List compliance alerts",
    parameters=[OpenApiParameter("status", str, enum=ComplianceAlert.Status.values),
                OpenApiParameter("severity", str, enum=Severity.values),
                OpenApiParameter("kind", str, enum=ComplianceAlert.Kind.values), OpenApiParameter("model", str)],
    responses={200: ComplianceAlertOutputSerializer(many=True), **READ_ERRORS}))
class ComplianceAlertListApi(_MonitoringApi, generics.ListAPIView):
    """Compliance alerts the user may read, most recent breach first (filter by status, severity, kind, model)."""

    serializer_class = ComplianceAlertOutputSerializer

    def get_queryset(self):
        queryset = selectors.compliance_alert_list(user=self.request.user)
        params = self.request.query_params
        for key, choices in (("status", ComplianceAlert.Status.values), ("severity", Severity.values),
                             ("kind", ComplianceAlert.Kind.values)):
            value = params.get(key)
            if value:
                if value not in choices:
                    raise errors.invalid(f"{key} is one of {', '.join(choices)}.", field=key)
                queryset = queryset.filter(**{key: value})
        if params.get("model"):
            queryset = queryset.filter(model__name=params["model"])
        return queryset.order_by("-last_seen_at", "-id")


class ComplianceAlertDetailApi(_MonitoringApi, APIView):
    """One compliance alert, with its evidence and signatures."""

    @extend_schema(summary="Retrieve a compliance alert", responses={200: ComplianceAlertOutputSerializer,
                                                                     **READ_ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        return Response(ComplianceAlertOutputSerializer(
            selectors.compliance_alert_get_for_user(user=request.user, pk=pk)).data)


class _AlertActionApi(_MonitoringApi, APIView):
    parser_classes = [JSONParser, FormParser]
    action_name = ""

    def _act(self, request: Request, alert: ComplianceAlert, data: dict) -> ComplianceAlert:
        raise NotImplementedError

    def post(self, request: Request, pk: int) -> Response:
        alert = selectors.compliance_alert_get_for_user(user=request.user, pk=pk)
        data = _valid(AlertActionInputSerializer, request.data)
        self._act(request, alert, data)
        return Response(ComplianceAlertOutputSerializer(
            selectors.compliance_alert_get_for_user(user=request.user, pk=pk)).data)


class ComplianceAlertAcknowledgeApi(_AlertActionApi):
    """open -> acknowledged, with a reason (the model's team or alert managers)."""

    @extend_schema(summary="Acknowledge an alert", request=AlertActionInputSerializer,
                   responses={200: ComplianceAlertOutputSerializer, **WRITE_ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def _act(self, request, alert, data):
        return compliance_alert_acknowledge(actor=request.user, alert=alert, reason=data["reason"])


class ComplianceAlertResolveApi(_AlertActionApi):
    """Close as dealt with; a critical alert needs a compliance officer's password (e-signature)."""

    @extend_schema(summary="Resolve an alert", request=AlertActionInputSerializer,
                   responses={200: ComplianceAlertOutputSerializer, **WRITE_ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def _act(self, request, alert, data):
        return compliance_alert_resolve(actor=request.user, alert=alert, reason=data["reason"],
                                        password=data.get("password") or None)


class ComplianceAlertDismissApi(_AlertActionApi):
    """Close as not a problem; a critical alert needs a compliance officer's password (e-signature)."""

    @extend_schema(summary="Dismiss an alert", request=AlertActionInputSerializer,
                   responses={200: ComplianceAlertOutputSerializer, **WRITE_ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def _act(self, request, alert, data):
        return compliance_alert_dismiss(actor=request.user, alert=alert, reason=data["reason"],
                                        password=data.get("password") or None)
