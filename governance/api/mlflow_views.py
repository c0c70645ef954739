"""POST /api/v1/mlflow/webhook/: MLflow 3 Model Registry webhooks (issue 8).

Authenticated by MLflow's HMAC signature (X-MLflow-Signature over delivery id, timestamp and
body, with ATTEST_MLFLOW_WEBHOOK_SECRET), not by a token: MLflow cannot send one. A verified
`model_version.created` or alias event schedules the import of that model (versions, runs,
artifacts, aliases), which opens a critical alert when a governed alias moved to an
unapproved version (governance/mlflow_import.py).
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.mlflow_import import mlflow_webhook_configured, mlflow_webhook_receive
from mlops_site.common.errors import ApplicationError
from registry.api.serializers import ErrorResponseSerializer

ERROR = OpenApiResponse(ErrorResponseSerializer, description="Error body with a stable code.")


class MlflowWebhookApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes: list = []  # the raw body is what the signature covers
    required_scopes: dict = {}

    @extend_schema(summary="Receive an MLflow registry webhook", request=None,
                   responses={202: OpenApiResponse(description="accepted, ignored or duplicate"),
                              400: ERROR, 401: ERROR, 503: ERROR})
    def post(self, request: Request) -> Response:
        config = mlflow_webhook_configured()
        if config is None:
            raise ApplicationError("The MLflow webhook receiver is not configured (ATTEST_MLFLOW_WEBHOOK_SECRET, "
                                   "ATTEST_MLFLOW_TRACKING_URI, ATTEST_MLFLOW_IMPORT_USER, ATTEST_MLFLOW_TEAM).",
                                   code="mlflow_webhook_disabled", status=503)
        answer = mlflow_webhook_receive(body=request.body, headers=request.headers, config=config)
        return Response(answer, status=202)
