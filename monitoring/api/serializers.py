"""Monitoring API shapes: inputs check shape only; outputs are what the contract names, and more."""

from rest_framework import serializers

from mlops_site.common.api.fields import ID_MAX
from monitoring.models import AlertSignature, ComplianceAlert, DriftMonitor, DriftResult, MonitoringBatch, Severity


class FeatureSpecSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    test = serializers.CharField(max_length=30, required=False, allow_null=True, allow_blank=True)
    threshold = serializers.FloatField(required=False, allow_null=True, min_value=0)


class DriftMonitorCreateInputSerializer(serializers.Serializer):
    model_version = serializers.IntegerField(min_value=1, max_value=ID_MAX)
    environment = serializers.CharField(max_length=50)
    reference = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=ID_MAX,
                                         help_text="Dataset version id; default: the version's training data.")
    features = FeatureSpecSerializer(many=True, required=False, allow_null=True,
                                     help_text="Default: the model's input features.")
    drift_share = serializers.FloatField(required=False, default=0.5, min_value=0.0, max_value=1.0)
    interval_minutes = serializers.IntegerField(required=False, default=60, min_value=1, max_value=525600)
    breach_severity = serializers.ChoiceField(choices=Severity.choices, required=False, default=Severity.WARNING)
    retrain_on_critical = serializers.BooleanField(required=False, default=False)
    label_column = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    prediction_column = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    metric_tolerance = serializers.FloatField(required=False, default=0.05, min_value=0.0, max_value=1e6)
    fairness_tolerance = serializers.FloatField(required=False, default=0.1, min_value=0.0, max_value=1e6)


class DriftMonitorUpdateInputSerializer(serializers.Serializer):
    features = FeatureSpecSerializer(many=True, required=False)
    drift_share = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
    interval_minutes = serializers.IntegerField(required=False, min_value=1, max_value=525600)
    breach_severity = serializers.ChoiceField(choices=Severity.choices, required=False)
    retrain_on_critical = serializers.BooleanField(required=False)
    is_active = serializers.BooleanField(required=False)
    metric_tolerance = serializers.FloatField(required=False, min_value=0.0, max_value=1e6)
    fairness_tolerance = serializers.FloatField(required=False, min_value=0.0, max_value=1e6)
    reason = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)


class DriftMonitorOutputSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model_version.model.name")
    version = serializers.IntegerField(source="model_version.version")
    reference_sha256 = serializers.CharField(source="reference.sha256")

    class Meta:
        model = DriftMonitor
        fields = ["id", "model", "version", "model_version", "environment", "reference", "reference_sha256",
                  "features", "drift_share", "interval_minutes", "breach_severity", "retrain_on_critical",
                  "label_column", "prediction_column", "metric_tolerance", "fairness_tolerance", "is_active",
                  "last_checked_at", "created_at"]


class MonitoringBatchCreateInputSerializer(serializers.Serializer):
    monitor = serializers.IntegerField()
    # Empty files reach the service, which answers 400 `empty_batch` (the contract's code).
    file = serializers.FileField(required=False, allow_empty_file=True,
                                 help_text="CSV, Parquet or JSON records (sniffed from the bytes).")
    records = serializers.ListField(child=serializers.DictField(), required=False, allow_empty=True,
                                    help_text="JSON body alternative: a list of row objects.")


class MonitoringBatchOutputSerializer(serializers.ModelSerializer):
    result = serializers.SerializerMethodField()

    class Meta:
        model = MonitoringBatch
        fields = ["id", "monitor", "sha256", "size", "format", "source", "row_count", "schema", "has_labels",
                  "has_predictions", "quality_findings", "received_at", "result"]

    def get_result(self, obj) -> int | None:
        result = obj.results.first()
        return result.pk if result else None


class DriftResultOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = DriftResult
        fields = ["id", "monitor", "batch", "dataset_drift", "drift_share", "drifted_features", "features",
                  "quality_findings", "concept", "fairness", "severity", "alerts", "duration_ms", "checked_at"]


class AlertSignatureOutputSerializer(serializers.ModelSerializer):
    signer_name = serializers.CharField(source="printed_name")

    class Meta:
        model = AlertSignature
        fields = ["id", "signer_name", "role", "meaning", "reason", "signed_at", "record_sha256"]


class ComplianceAlertMlflowOutputSerializer(serializers.Serializer):
    """Where an `alias_moved` alert's MLflow alias went (ComplianceAlert.mlflow)."""

    tracking_uri = serializers.CharField()
    model_name = serializers.CharField()
    alias = serializers.CharField()
    version = serializers.IntegerField(help_text="The MLflow version the alias points at.")


class ComplianceAlertOutputSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    # Null for an `alias_moved` alert: no monitor (so no environment), and no Attest version
    # when the MLflow version it names was never imported.
    version = serializers.IntegerField(source="model_version.version", default=None, allow_null=True)
    environment = serializers.CharField(source="monitor.environment", default=None, allow_null=True)
    mlflow = ComplianceAlertMlflowOutputSerializer(read_only=True, allow_null=True,
                                                   help_text="The MLflow alias of an `alias_moved` alert; "
                                                             "null for drift alerts.")
    assigned_team = serializers.CharField(source="assigned_team.name")
    acknowledged_by = serializers.CharField(source="acknowledged_by.username", default=None, allow_null=True)
    closed_by = serializers.CharField(source="closed_by.username", default=None, allow_null=True)
    signatures = AlertSignatureOutputSerializer(many=True, read_only=True)

    class Meta:
        model = ComplianceAlert
        fields = ["id", "model", "version", "environment", "monitor", "kind", "severity", "status", "title",
                  "mlflow", "evidence", "repeat_count", "first_seen_at", "last_seen_at", "assigned_team",
                  "retraining_request", "acknowledged_by", "acknowledged_at", "acknowledge_reason", "closed_by",
                  "closed_at", "close_reason", "signatures"]


class AlertActionInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)
    password = serializers.CharField(max_length=200, required=False, allow_blank=True, trim_whitespace=False,
                                     help_text="Needed to resolve or dismiss a critical alert (e-signature).")
