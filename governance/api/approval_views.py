"""Approval requests, signatures and policies over the API: parse, call one selector or service, serialize.

A request of another team reads as missing (404). Signing always needs the password in the
body, also over token auth: a token alone never signs (governance.services.signatures).
"""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import errors, selectors
from governance.api.approval_serializers import (
    ApprovalRequestOpenInputSerializer,
    ApprovalRequestOutputSerializer,
    ApprovalRequestSignInputSerializer,
    ApprovalRequestWithdrawInputSerializer,
    PolicyOutputSerializer,
    PolicyUpdateInputSerializer,
)
from governance.permissions import Action, user_can
from governance.services.approvals import (
    approval_request_open,
    approval_request_sign,
    approval_request_withdraw,
    signer_allowed_check,
)
from governance.services.policies import policy_update
from mlops_site.common.api.schema_hooks import paginated
from registry import selectors as registry_selectors
from registry.api.serializers import ErrorResponseSerializer

ERROR = OpenApiResponse(ErrorResponseSerializer, description="Error body with a stable code.")
READ_ERRORS = {401: ERROR, 403: ERROR, 404: ERROR}
WRITE_ERRORS = {400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR}


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _request_output(request_id: int, user) -> dict:
    return ApprovalRequestOutputSerializer(selectors.approval_request_get_for_user(user=user, pk=request_id)).data


class ApprovalRequestListCreateApi(generics.ListAPIView):
    """Approval requests the user may read (filter by kind, status, model, environment); POST opens one."""

    required_scopes = {"read": None, "write": "approvals:write"}
    serializer_class = ApprovalRequestOutputSerializer
    filter_backends: list = []

    def get_queryset(self):
        params = self.request.query_params
        return selectors.approval_request_list(user=self.request.user, filters={
            key: params.get(key) for key in ("kind", "status", "model", "environment")})

    @extend_schema(summary="List approval requests", parameters=[
        OpenApiParameter(name, str, description=f"filter by {name}")
        for name in ("kind", "status", "model", "environment")],
        responses={200: ApprovalRequestOutputSerializer(many=True), **READ_ERRORS})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(summary="Open an approval request", request=ApprovalRequestOpenInputSerializer,
                   responses={201: ApprovalRequestOutputSerializer, **WRITE_ERRORS})
    def post(self, request: Request) -> Response:
        """Open a deployment request (model_version + environment) or a retraining request (model + reason)."""
        data = _valid(ApprovalRequestOpenInputSerializer, request.data)
        user = request.user
        if data["kind"] == "deployment":
            model_version = registry_selectors.model_version_get_for_user(user=user, pk=data["model_version"])
            created = approval_request_open(actor=user, kind="deployment", model_version=model_version,
                                            environment=data["environment"], reason=data["reason"])
        else:
            model = registry_selectors.model_get_for_user(user=user, name=data["model"])
            datasets = [registry_selectors.dataset_version_get_for_user(user=user, pk=pk)
                        for pk in data["dataset_versions"]]
            created = approval_request_open(actor=user, kind="retraining", model=model, reason=data["reason"],
                                            dataset_versions=datasets)
        return Response(_request_output(created.pk, user), status=status.HTTP_201_CREATED)


class ApprovalRequestDetailApi(APIView):
    """One approval request with its evidence and signatures."""

    required_scopes = {"read": None}

    @extend_schema(summary="Get an approval request", responses={200: ApprovalRequestOutputSerializer,
                                                                 **READ_ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        return Response(_request_output(pk, request.user))


class ApprovalRequestSignApi(APIView):
    """Sign a request: re-authenticate with the password, give the meaning (approve, reject, reviewed) and reason.

    No token scope is asked: the password is the credential, and CI identities are refused
    by the service whatever their token (403 `signature_not_allowed`).
    """

    required_scopes: dict = {}

    @extend_schema(summary="Sign an approval request", request=ApprovalRequestSignInputSerializer,
                   responses={201: ApprovalRequestOutputSerializer, **WRITE_ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        # Before the look-up: a CI identity is told it never signs, not that the request is missing.
        signer_allowed_check(actor=request.user)
        target = selectors.approval_request_get_for_user(user=request.user, pk=pk)
        data = _valid(ApprovalRequestSignInputSerializer, request.data)
        approval_request_sign(actor=request.user, request=target, password=data["password"],
                              meaning=data["meaning"], reason=data["reason"], role=data["role"] or None)
        return Response(_request_output(target.pk, request.user), status=status.HTTP_201_CREATED)


class ApprovalRequestWithdrawApi(APIView):
    """Withdraw a pending request (its requester or a compliance officer)."""

    required_scopes = {"write": "approvals:write"}

    @extend_schema(summary="Withdraw an approval request", request=ApprovalRequestWithdrawInputSerializer,
                   responses={200: ApprovalRequestOutputSerializer, **WRITE_ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        target = selectors.approval_request_get_for_user(user=request.user, pk=pk)
        data = _valid(ApprovalRequestWithdrawInputSerializer, request.data)
        approval_request_withdraw(actor=request.user, request=target, reason=data["reason"])
        return Response(_request_output(target.pk, request.user))


class PolicyListUpdateApi(APIView):
    """The approval policy in force per risk tier (`?all=1`: every version); POST makes a tier's next version."""

    required_scopes = {"read": None, "write": "approvals:write"}

    @extend_schema(summary="List approval policies",
                   parameters=[OpenApiParameter("all", bool, description="every version, not only the current")],
                   responses={200: paginated(PolicyOutputSerializer, "PaginatedPolicyList"), **READ_ERRORS})
    def get(self, request: Request) -> Response:
        if not user_can(request.user, Action.POLICY_READ):
            raise errors.action_forbidden(user=request.user, action="read policies")
        all_versions = request.query_params.get("all") in ("1", "true", "yes")
        policies = selectors.policy_list(all_versions=all_versions)
        return Response({"count": len(policies), "next": None, "previous": None,
                         "results": PolicyOutputSerializer(policies, many=True).data})

    @extend_schema(summary="Edit a tier's policy (creates its next version)", request=PolicyUpdateInputSerializer,
                   responses={201: PolicyOutputSerializer, **WRITE_ERRORS})
    def post(self, request: Request) -> Response:
        """Compliance officers only; the change is a new version; open requests keep theirs."""
        data = dict(_valid(PolicyUpdateInputSerializer, request.data))
        tier, reason = data.pop("risk_tier"), data.pop("reason")
        policy = policy_update(actor=request.user, risk_tier=tier, changes=data, reason=reason)
        return Response(PolicyOutputSerializer(policy).data, status=status.HTTP_201_CREATED)
