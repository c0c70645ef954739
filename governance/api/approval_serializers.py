"""Serializers of the approval, policy, deployment and gate API. Inputs check shape only; services decide."""

from rest_framework import serializers

from governance.gate import CHECK_CODES
from governance.models import ApprovalPolicy, ApprovalRequest, Deployment, Signature
from mlops_site.common.api.fields import ID_MAX, VERSION_MAX

SHA256_PATTERN = r"^[0-9a-f]{64}$"
ENVIRONMENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$"


# --- inputs ----------------------------------------------------------------------------------------

class ApprovalRequestOpenInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ApprovalRequest.Kind.choices)
    model_version = serializers.IntegerField(required=False, min_value=1, max_value=ID_MAX)
    environment = serializers.RegexField(ENVIRONMENT_PATTERN, required=False)
    model = serializers.CharField(required=False, max_length=150)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    dataset_versions = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=ID_MAX),
                                             required=False, max_length=100, default=list)

    def validate(self, attrs):
        if attrs["kind"] == ApprovalRequest.Kind.DEPLOYMENT:
            missing = {f: ["Required for a deployment request."] for f in ("model_version", "environment")
                       if f not in attrs}
        else:
            missing = {f: ["Required for a retraining request."] for f in ("model", "reason")
                       if not attrs.get(f)}
        if missing:
            raise serializers.ValidationError(missing)
        return attrs


class ApprovalRequestSignInputSerializer(serializers.Serializer):
    password = serializers.CharField(required=False, allow_blank=True, default="", max_length=512,
                                     trim_whitespace=False, style={"input_type": "password"})
    meaning = serializers.ChoiceField(choices=Signature.Meaning.choices)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    role = serializers.CharField(required=False, allow_blank=True, default="", max_length=32)


class ApprovalRequestWithdrawInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class PolicyUpdateInputSerializer(serializers.Serializer):
    risk_tier = serializers.ChoiceField(choices=["minimal", "limited", "high", "unacceptable"])
    reason = serializers.CharField(max_length=5000)
    environments = serializers.ListField(child=serializers.RegexField(ENVIRONMENT_PATTERN), required=False,
                                         max_length=20)
    required_roles = serializers.DictField(child=serializers.IntegerField(min_value=0, max_value=20),
                                           required=False)
    required_reports = serializers.ListField(child=serializers.CharField(max_length=50), required=False,
                                             max_length=10)
    thresholds = serializers.DictField(required=False)
    max_report_age_days = serializers.IntegerField(required=False, min_value=1, max_value=3650)
    max_approval_age_days = serializers.IntegerField(required=False, min_value=1, max_value=3650)
    approvable = serializers.BooleanField(required=False)


class GateInputSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=150)
    version = serializers.IntegerField(min_value=1, max_value=VERSION_MAX)
    environment = serializers.RegexField(ENVIRONMENT_PATTERN)
    artifact_sha256 = serializers.RegexField(SHA256_PATTERN)


class DeploymentRecordInputSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=150)
    version = serializers.IntegerField(min_value=1, max_value=VERSION_MAX)
    environment = serializers.RegexField(ENVIRONMENT_PATTERN)
    decision_id = serializers.UUIDField()


class DeploymentListQuerySerializer(serializers.Serializer):
    environment = serializers.CharField(required=False, max_length=50)
    model = serializers.CharField(required=False, max_length=150)
    at = serializers.DateTimeField(required=False)


# --- outputs ---------------------------------------------------------------------------------------

class SignatureOutputSerializer(serializers.ModelSerializer):
    signer_name = serializers.CharField(source="printed_name")
    signer = serializers.CharField(source="signer.username")

    class Meta:
        model = Signature
        fields = ["id", "signer_name", "signer", "role", "meaning", "reason", "signed_at", "record_sha256"]


class PolicyRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApprovalPolicy
        fields = ["id", "risk_tier", "version"]


class ApprovalRequestOutputSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    version = serializers.IntegerField(source="model_version.version", allow_null=True, default=None)
    requested_by = serializers.CharField(source="requested_by.username")
    policy = PolicyRefSerializer()
    signatures = SignatureOutputSerializer(many=True)

    class Meta:
        model = ApprovalRequest
        fields = ["id", "kind", "status", "model", "model_version", "version", "environment", "reason", "policy",
                  "evidence", "evidence_sha256", "report_refs", "requested_by", "created_at", "decided_at",
                  "decision_reason", "signatures"]


class PolicyOutputSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)

    class Meta:
        model = ApprovalPolicy
        fields = ["id", "risk_tier", "version", "approvable", "environments", "required_roles", "required_reports",
                  "thresholds", "max_report_age_days", "max_approval_age_days", "change_reason", "created_by",
                  "created_at"]


class DeploymentApprovalSerializer(serializers.ModelSerializer):
    signatures = SignatureOutputSerializer(many=True)

    class Meta:
        model = ApprovalRequest
        fields = ["id", "evidence_sha256", "signatures"]


class DeploymentOutputSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    version = serializers.IntegerField(source="model_version.version")
    deployed_by = serializers.CharField(source="deployed_by.username")
    decision_id = serializers.UUIDField(source="decision.decision_id")
    approval = DeploymentApprovalSerializer(source="approval_request", allow_null=True)

    class Meta:
        model = Deployment
        fields = ["id", "model", "version", "environment", "artifact_sha256", "deployed_at", "deployed_by",
                  "decision_id", "is_rollback", "approval"]


class GateCheckOutputSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=CHECK_CODES)
    passed = serializers.BooleanField()
    message = serializers.CharField()


class GateDecisionOutputSerializer(serializers.Serializer):
    """CONTRACT.md's answer of the gate, exactly."""

    allowed = serializers.BooleanField()
    decision_id = serializers.UUIDField()
    model = serializers.CharField()
    version = serializers.IntegerField()
    environment = serializers.CharField()
    evaluated_at = serializers.DateTimeField()
    audit_seq = serializers.IntegerField(allow_null=True)
    checks = GateCheckOutputSerializer(many=True)
