"""Evaluations of a model version on an evaluation dataset version, and the reports they produce."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mlops_site.common.models import AppendOnlyModel, BaseModel


class Evaluation(BaseModel):
    """A request to compute the fairness and explainability reports of one model version on one dataset version.

    Invariants: status moves queued -> running -> succeeded | failed (governance.services.evaluations
    guards it); a failed evaluation carries a stable `failure_code` and a reason; `progress` is
    0..100 and is 100 once succeeded; the model version, dataset version, sensitive features and
    options never change after creation (a recompute is a new evaluation and new reports).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")

    class Predictions(models.TextChoices):
        MODEL = "model", _("computed by Attest from the artifact")
        UPLOADED = "uploaded", _("uploaded with the data (y_pred, y_score)")

    model_version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT, related_name="evaluations")
    dataset_version = models.ForeignKey("registry.DatasetVersion", on_delete=models.PROTECT,
                                        related_name="evaluations")
    sensitive_features = models.JSONField(_("sensitive features"), default=list)
    task = models.CharField(_("task"), max_length=16, default="classification")
    target_column = models.CharField(_("target column"), max_length=200)
    positive_label = models.JSONField(_("positive label"), null=True, blank=True)
    predictions = models.CharField(_("predictions"), max_length=16, choices=Predictions.choices,
                                   default=Predictions.MODEL)
    options = models.JSONField(_("options"), default=dict, blank=True,
                               help_text=_("bootstrap, min_group_size, seed, shap_max_rows"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    failure_code = models.CharField(_("failure code"), max_length=64, blank=True)
    failure_reason = models.TextField(_("failure reason"), blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="evaluations_requested")
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("evaluation")
        verbose_name_plural = _("evaluations")
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="evaluation_progress_max_100"),
            models.CheckConstraint(condition=models.Q(status__in=["queued", "running", "succeeded", "failed"]),
                                   name="evaluation_status_valid"),
            models.CheckConstraint(condition=models.Q(task__in=["classification", "regression"]),
                                   name="evaluation_task_valid"),
        ]

    def __str__(self) -> str:
        return f"evaluation #{self.pk} of {self.model_version}"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)


class Report(AppendOnlyModel):
    """The results of one computation (fairness or explainability), bound to the exact inputs.

    Invariants: inserted once, never changed or deleted (a recompute is a new report);
    `sha256` is sha256 of the canonical JSON of `results` (governance.canonical);
    `artifact_sha256` and `dataset_sha256` are those of the artifact and the data it was computed on.
    """

    edit_refusal = "Reports are immutable; a recompute is a new report."
    delete_refusal = "Reports are evidence; they are never deleted."

    class Kind(models.TextChoices):
        FAIRNESS = "fairness", _("fairness")
        EXPLAINABILITY = "explainability", _("explainability")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    evaluation = models.ForeignKey(Evaluation, on_delete=models.PROTECT, related_name="reports")
    model_version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT, related_name="reports")
    results = models.JSONField(_("results"))
    sha256 = models.CharField(_("results sha256"), max_length=64)
    artifact_sha256 = models.CharField(_("artifact sha256"), max_length=64)
    dataset_sha256 = models.CharField(_("dataset sha256"), max_length=64)
    library_versions = models.JSONField(_("library versions"), default=dict)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("report")
        verbose_name_plural = _("reports")
        constraints = [
            models.UniqueConstraint(fields=["evaluation", "kind"], name="report_one_per_kind_per_evaluation"),
            models.CheckConstraint(condition=models.Q(kind__in=["fairness", "explainability"]),
                                   name="report_kind_valid"),
        ]
        indexes = [models.Index(fields=["model_version", "kind", "-created_at"], name="report_version_kind_idx")]

    def __str__(self) -> str:
        return f"{self.kind} report #{self.pk} of {self.model_version}"


class ReportChart(AppendOnlyModel):
    """One PNG chart of a report, kept in the database with the report (same transaction, same backup).

    Invariants: immutable; `sha256` is that of `png`; names are unique per report and safe in a URL.
    """

    edit_refusal = "Report charts are immutable."
    delete_refusal = "Report charts are evidence; they are never deleted."

    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="charts")
    name = models.SlugField(_("name"), max_length=100)
    title = models.CharField(_("title"), max_length=200, blank=True)
    png = models.BinaryField(_("PNG"))
    sha256 = models.CharField(_("sha256"), max_length=64)

    class Meta:
        ordering = ["report", "id"]
        verbose_name = _("report chart")
        verbose_name_plural = _("report charts")
        constraints = [models.UniqueConstraint(fields=["report", "name"], name="report_chart_name_unique")]

    def __str__(self) -> str:
        return f"{self.name}.png of report #{self.report_id}"
