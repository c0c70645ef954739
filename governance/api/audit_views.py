"""The audit log's read API: events, checkpoints, Merkle proofs and verification.

Readers: auditors, compliance and risk officers, model validators, staff and superusers; a token
also needs the `audit:read` scope. Every view is read-only and thin: parse, call a selector,
serialize.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import audit_selectors
from governance.api.audit_serializers import (
    MAX_BIGINT,
    AuditCheckpointOutputSerializer,
    AuditConsistencyInputSerializer,
    AuditConsistencyOutputSerializer,
    AuditErrorOutputSerializer,
    AuditEventFilterInputSerializer,
    AuditEventOutputSerializer,
    AuditProofInputSerializer,
    AuditProofOutputSerializer,
    AuditVerifyOutputSerializer,
)
from mlops_site.common.api.permissions import TokenScopePermission
from mlops_site.common.errors import NotFoundError
from mlops_site.common.roles import GOVERNANCE_READ_ROLES

ERROR = OpenApiResponse(AuditErrorOutputSerializer, description="Error body with a stable code.")
READ_ERRORS = {401: ERROR, 403: ERROR}


class AuditReaderPermission(BasePermission):
    """Only the governance read roles, staff and superusers read the audit log."""

    message = "Reading the audit log needs the auditor, compliance officer, risk officer or model validator role."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        return user.is_staff or user.is_superuser or user.groups.filter(name__in=GOVERNANCE_READ_ROLES).exists()


class _AuditApi:
    permission_classes = [IsAuthenticated, TokenScopePermission, AuditReaderPermission]
    required_scopes = {"read": "audit:read"}
    filter_backends: list = []


def _validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


@extend_schema(summary="List audit events", parameters=[AuditEventFilterInputSerializer],
               responses={200: AuditEventOutputSerializer(many=True), 400: ERROR, **READ_ERRORS})
class AuditEventListApi(_AuditApi, generics.ListAPIView):
    """Events in seq order, filterable by object_type, object_id, actor, action, since and until."""

    serializer_class = AuditEventOutputSerializer

    def get_queryset(self):
        filters = _validated(AuditEventFilterInputSerializer, self.request.query_params)
        return audit_selectors.audit_event_list(filters=filters)


class AuditEventProofApi(_AuditApi, APIView):
    """The inclusion proof of one event in a signed checkpoint (default: the latest)."""

    @extend_schema(summary="Inclusion proof of an audit event", parameters=[AuditProofInputSerializer],
                   responses={200: AuditProofOutputSerializer, 400: ERROR, 404: ERROR, **READ_ERRORS})
    def get(self, request: Request, seq: int) -> Response:
        params = _validated(AuditProofInputSerializer, request.query_params)
        if seq > MAX_BIGINT:
            raise NotFoundError(audit_selectors.AUDIT_EVENT_NOT_FOUND.format(seq=seq), code="audit_event_not_found")
        proof = audit_selectors.audit_event_inclusion_proof(seq=seq, checkpoint_size=params.get("checkpoint"))
        return Response(AuditProofOutputSerializer(proof).data)


@extend_schema(summary="List signed checkpoints",
               responses={200: AuditCheckpointOutputSerializer(many=True), **READ_ERRORS})
class AuditCheckpointListApi(_AuditApi, generics.ListAPIView):
    """Every signed checkpoint, smallest first."""

    serializer_class = AuditCheckpointOutputSerializer

    def get_queryset(self):
        return audit_selectors.audit_checkpoint_list()


class AuditCheckpointDetailApi(_AuditApi, APIView):
    """One signed checkpoint by its size."""

    @extend_schema(summary="A signed checkpoint",
                   responses={200: AuditCheckpointOutputSerializer, 404: ERROR, **READ_ERRORS})
    def get(self, request: Request, size: int) -> Response:
        if size > MAX_BIGINT:
            raise NotFoundError(audit_selectors.CHECKPOINT_NOT_FOUND.format(size=size), code="checkpoint_not_found")
        return Response(AuditCheckpointOutputSerializer(audit_selectors.audit_checkpoint_get(size=size)).data)


class AuditCheckpointConsistencyApi(_AuditApi, APIView):
    """The consistency proof that checkpoint `first` is a prefix of checkpoint `second`."""

    @extend_schema(summary="Consistency proof between two checkpoints", parameters=[AuditConsistencyInputSerializer],
                   responses={200: AuditConsistencyOutputSerializer, 400: ERROR, 404: ERROR, **READ_ERRORS})
    def get(self, request: Request) -> Response:
        params = _validated(AuditConsistencyInputSerializer, request.query_params)
        proof = audit_selectors.audit_checkpoint_consistency_proof(first=params["first"], second=params["second"])
        return Response(AuditConsistencyOutputSerializer(proof).data)


class AuditVerifyApi(_AuditApi, APIView):
    """Re-verify the whole stored log (chain, head, checkpoints); OK or the first broken seq."""

    @extend_schema(summary="Verify the audit log", responses={200: AuditVerifyOutputSerializer, **READ_ERRORS})
    def get(self, request: Request) -> Response:
        from governance.audit_verify import audit_log_verify

        result = audit_log_verify()
        return Response(AuditVerifyOutputSerializer({
            "ok": result.ok, "count": result.count, "head": result.head, "broken_seq": result.broken_seq,
            "reason": result.reason, "line": result.as_line(),
        }).data)
