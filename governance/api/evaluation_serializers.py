"""Serializers of evaluations, reports and model cards. Inputs check shape only; the service checks the data."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from governance.models import Evaluation, Report


def chart_path(report: Report, name: str) -> str:
    return reverse("governance:report-chart", kwargs={"pk": report.pk, "name": name})


def _latest(evaluation: Evaluation, kind: str) -> Report | None:
    return next((r for r in evaluation.reports.all() if r.kind == kind), None)


class EvaluationRequestInputSerializer(serializers.Serializer):
    model_version = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    dataset_version = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    sensitive_features = serializers.ListField(child=serializers.CharField(max_length=200), required=False,
                                               allow_empty=True, max_length=20)
    target_column = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    positive_label = serializers.JSONField(required=False, allow_null=True, default=None,
                                           help_text="The favourable outcome; default: the model's second class.")
    bootstrap = serializers.IntegerField(required=False, min_value=0, max_value=10_000)
    min_group_size = serializers.IntegerField(required=False, min_value=1, max_value=10**9)
    seed = serializers.IntegerField(required=False, min_value=0, max_value=2**32 - 1)

    def validate_positive_label(self, value):
        if value is not None and not isinstance(value, str | int | float | bool):
            raise serializers.ValidationError("A label is a string, number or boolean.")
        return value


class EvaluationListQuerySerializer(serializers.Serializer):
    model_version = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    dataset_version = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    status = serializers.ChoiceField(choices=Evaluation.Status.choices, required=False)


class ReportSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    sha256 = serializers.CharField()
    url = serializers.SerializerMethodField()

    def get_url(self, report: Report) -> str:
        return reverse("governance:report-detail", kwargs={"pk": report.pk})


class EvaluationOutputSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model_version.model.name")
    version = serializers.IntegerField(source="model_version.version")
    artifact_sha256 = serializers.CharField(source="model_version.artifact_sha256")
    dataset = serializers.CharField(source="dataset_version.dataset.name")
    dataset_sha256 = serializers.CharField(source="dataset_version.sha256")
    requested_by = serializers.SerializerMethodField()
    positive_label = serializers.JSONField()
    fairness = serializers.SerializerMethodField()
    explainability = serializers.SerializerMethodField()
    reports = serializers.SerializerMethodField()
    charts = serializers.SerializerMethodField()

    class Meta:
        model = Evaluation
        fields = ["id", "model_version", "model", "version", "artifact_sha256", "dataset_version", "dataset",
                  "dataset_sha256", "sensitive_features", "task", "target_column", "positive_label", "predictions",
                  "options", "status", "progress", "failure_code", "failure_reason", "requested_by", "created_at",
                  "started_at", "finished_at", "fairness", "explainability", "reports", "charts"]

    def get_requested_by(self, evaluation: Evaluation) -> str | None:
        requester = evaluation.requested_by
        return requester.get_username() if requester is not None else None

    @extend_schema_field(serializers.JSONField(allow_null=True))
    def get_fairness(self, evaluation: Evaluation):
        report = _latest(evaluation, Report.Kind.FAIRNESS)
        return report.results if report else None

    @extend_schema_field(serializers.JSONField(allow_null=True))
    def get_explainability(self, evaluation: Evaluation):
        report = _latest(evaluation, Report.Kind.EXPLAINABILITY)
        return report.results if report else None

    @extend_schema_field(ReportSummarySerializer(many=True))
    def get_reports(self, evaluation: Evaluation):
        return ReportSummarySerializer(list(evaluation.reports.all()), many=True).data

    def get_charts(self, evaluation: Evaluation) -> list[str]:
        request = self.context.get("request")
        paths = [chart_path(report, chart.name) for report in evaluation.reports.all() for chart in report.charts.all()]
        return [request.build_absolute_uri(p) if request else p for p in paths]


class ReportChartOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    sha256 = serializers.CharField()
    url = serializers.CharField()


class ReportThresholdSerializer(serializers.Serializer):
    threshold = serializers.CharField()
    metric = serializers.CharField()
    limit = serializers.FloatField()
    value = serializers.FloatField(allow_null=True)
    passed = serializers.BooleanField()
    where = serializers.JSONField(allow_null=True)
    policy = serializers.CharField()


class ReportOutputSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(help_text="fairness or explainability")
    model = serializers.CharField(source="model_version.model.name")
    version = serializers.IntegerField(source="model_version.version")
    charts = serializers.SerializerMethodField()
    thresholds = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = ["id", "kind", "evaluation", "model_version", "model", "version", "sha256", "artifact_sha256",
                  "dataset_sha256", "library_versions", "created_at", "results", "charts", "thresholds"]

    @extend_schema_field(ReportChartOutputSerializer(many=True))
    def get_charts(self, report: Report):
        request = self.context.get("request")
        rows = []
        for chart in report.charts.all():
            path = chart_path(report, chart.name)
            rows.append({"name": chart.name, "title": chart.title, "sha256": chart.sha256,
                         "url": request.build_absolute_uri(path) if request else path})
        return rows

    @extend_schema_field(ReportThresholdSerializer(many=True))
    def get_thresholds(self, report: Report):
        from governance.report_selectors import report_thresholds

        return ReportThresholdSerializer(report_thresholds(report), many=True).data


class ModelCardOutputSerializer(serializers.Serializer):
    """Model Card Toolkit sections plus Mitchell et al.'s section names (governance.model_card)."""

    schema = serializers.CharField()
    model_details = serializers.JSONField()
    model_parameters = serializers.JSONField()
    quantitative_analysis = serializers.JSONField()
    considerations = serializers.JSONField()
    intended_use = serializers.JSONField()
    factors = serializers.JSONField()
    metrics = serializers.JSONField()
    evaluation_data = serializers.JSONField()
    training_data = serializers.JSONField()
    quantitative_analyses = serializers.JSONField()
    ethical_considerations = serializers.JSONField()
    caveats_and_recommendations = serializers.JSONField()
    reports = serializers.JSONField()
