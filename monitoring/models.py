"""Drift monitors, monitoring batches, drift results, and the compliance alerts a breach opens.

The flow: a `DriftMonitor` watches one model version in one environment against a reference
dataset version; production samples arrive as `MonitoringBatch`es (content-hashed, never
changed); a check writes exactly one `DriftResult` per (monitor, batch); a breach raises or
repeats a `ComplianceAlert`, whose closing, when critical, needs an `AlertSignature` by a
compliance officer (21 CFR 11.50 manifestation, like governance's approval signatures).
Every state change goes through monitoring.services and writes its audit event.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from mlops_site.common.models import AppendOnlyModel, BaseModel


class Severity(models.TextChoices):
    INFO = "info", _("info")
    WARNING = "warning", _("warning")
    CRITICAL = "critical", _("critical")


SEVERITY_RANK: dict[str, int] = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class DriftMonitor(BaseModel):
    """What to watch for one model version in one environment, and what a breach means.

    Invariants: (model_version, environment) is unique; `features` is the resolved list of
    {"name", "kind", "test", "threshold"} (test/threshold null = the default for the column's
    type and size, chosen at each check); the reference is a dataset version whose columns
    include every watched feature; `breach_severity` is what a data-drift breach raises;
    `retrain_on_critical` opens a retraining request when a critical alert is raised.
    """

    model_version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT,
                                      related_name="drift_monitors")
    environment = models.CharField(_("environment"), max_length=50)
    reference = models.ForeignKey("registry.DatasetVersion", on_delete=models.PROTECT,
                                  related_name="drift_monitors", verbose_name=_("reference dataset version"))
    features = models.JSONField(_("features watched"), default=list)
    drift_share = models.FloatField(_("share of drifted features for dataset drift"), default=0.5)
    interval_minutes = models.PositiveIntegerField(_("check interval (minutes)"), default=60)
    breach_severity = models.CharField(_("severity a breach raises"), max_length=16, choices=Severity.choices,
                                       default=Severity.WARNING)
    retrain_on_critical = models.BooleanField(_("a critical breach opens a retraining request"), default=False)
    label_column = models.CharField(_("label column"), max_length=200, blank=True)
    prediction_column = models.CharField(_("prediction column"), max_length=200, blank=True)
    metric_tolerance = models.FloatField(_("concept drift: largest allowed metric drop"), default=0.05)
    fairness_tolerance = models.FloatField(_("fairness drift: largest allowed change"), default=0.1)
    is_active = models.BooleanField(_("active"), default=True)
    last_checked_at = models.DateTimeField(_("last checked at"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="drift_monitors_created")

    class Meta:
        ordering = ["model_version__model__name", "model_version__version", "environment"]
        verbose_name = _("drift monitor")
        verbose_name_plural = _("drift monitors")
        constraints = [
            models.UniqueConstraint(fields=["model_version", "environment"], name="drift_monitor_unique"),
            models.CheckConstraint(condition=models.Q(drift_share__gt=0) & models.Q(drift_share__lte=1),
                                   name="drift_monitor_share_range"),
            models.CheckConstraint(condition=models.Q(interval_minutes__gte=1), name="drift_monitor_interval_pos"),
            models.CheckConstraint(condition=models.Q(breach_severity__in=["info", "warning", "critical"]),
                                   name="drift_monitor_severity_valid"),
        ]

    def __str__(self) -> str:
        return f"monitor #{self.pk} {self.model_version} @ {self.environment}"

    @property
    def feature_names(self) -> list[str]:
        return [feature["name"] for feature in self.features]


class MonitoringBatch(AppendOnlyModel):
    """One batch of production samples: content-addressed, never edited, never deleted.

    Invariants: (monitor, sha256) is unique (the same bytes sent twice are one batch);
    sha256, size, format, schema and row count were read by the server from the bytes; the
    data-quality findings are those of ingestion (schema against the reference).
    """

    edit_refusal = "Monitoring batches are evidence; they are never edited."
    delete_refusal = "Monitoring batches are evidence; they are never deleted."

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        PARQUET = "parquet", "Parquet"
        JSON = "json", _("JSON records")

    class Source(models.TextChoices):
        UPLOAD = "upload", _("upload")
        PATH = "path", _("file path (batch job)")

    monitor = models.ForeignKey(DriftMonitor, on_delete=models.PROTECT, related_name="batches")
    sha256 = models.CharField(_("content sha256"), max_length=64)
    size = models.BigIntegerField(_("size in bytes"))
    format = models.CharField(_("format"), max_length=16, choices=Format.choices)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices, default=Source.UPLOAD)
    storage_key = models.CharField(_("storage key"), max_length=200)
    row_count = models.BigIntegerField(_("rows"))
    schema = models.JSONField(_("schema"), default=list)
    has_labels = models.BooleanField(_("carries true labels"), default=False)
    has_predictions = models.BooleanField(_("carries predictions"), default=False)
    quality_findings = models.JSONField(_("data-quality findings"), default=list, blank=True)
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="monitoring_batches_sent")
    received_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("monitoring batch")
        verbose_name_plural = _("monitoring batches")
        constraints = [
            models.UniqueConstraint(fields=["monitor", "sha256"], name="monitoring_batch_content_unique"),
            models.CheckConstraint(condition=models.Q(sha256__regex=r"^[0-9a-f]{64}$"),
                                   name="monitoring_batch_sha256_hex"),
        ]

    def __str__(self) -> str:
        return f"batch #{self.pk} ({self.row_count} rows, {self.sha256[:12]}…)"


class DriftResult(AppendOnlyModel):
    """The outcome of one drift check of one batch by one monitor. One per pair, never edited.

    Invariants: (monitor, batch) is unique, so a check that runs twice (a retried task, two
    workers) leaves one result; `features` are the per-feature statistics as computed;
    `severity` is empty when nothing breached, else the highest severity raised.
    """

    edit_refusal = "Drift results are evidence; a new check of another batch is a new result."
    delete_refusal = "Drift results are evidence; they are never deleted."

    monitor = models.ForeignKey(DriftMonitor, on_delete=models.PROTECT, related_name="results")
    batch = models.ForeignKey(MonitoringBatch, on_delete=models.PROTECT, related_name="results")
    dataset_drift = models.BooleanField(_("dataset drift"))
    drift_share = models.FloatField(_("share of features drifted"))
    drifted_features = models.JSONField(_("drifted features"), default=list)
    features = models.JSONField(_("per-feature results"), default=list)
    quality_findings = models.JSONField(_("data-quality findings"), default=list, blank=True)
    concept = models.JSONField(_("concept drift (metrics on the labelled batch)"), null=True, blank=True)
    fairness = models.JSONField(_("fairness drift"), null=True, blank=True)
    severity = models.CharField(_("severity raised"), max_length=16, blank=True)
    alerts = models.JSONField(_("alerts raised or repeated (ids)"), default=list, blank=True)
    duration_ms = models.FloatField(_("duration (ms)"), default=0)
    checked_at = models.DateTimeField(_("checked at"), db_index=True)

    class Meta:
        ordering = ["-checked_at", "-id"]
        verbose_name = _("drift result")
        verbose_name_plural = _("drift results")
        constraints = [
            models.UniqueConstraint(fields=["monitor", "batch"], name="drift_result_once_per_batch"),
        ]

    def __str__(self) -> str:
        return f"result #{self.pk} of {self.batch} ({'drift' if self.dataset_drift else 'no drift'})"


class ComplianceAlert(BaseModel):
    """The compliance case a breach opens, until someone closes it with a reason.

    Two sources open one kind of case, told apart by `kind` (a database check keeps each shape):
    - a drift monitor's breach (`data_drift`, `concept_drift`, `fairness_drift`, `data_quality`):
      `monitor` and `model_version` are set, the `mlflow_*` fields are empty;
    - an MLflow alias moved to a version no approval covers (`alias_moved`, always critical,
      raised through governance.mlflow_import's hook): no `monitor`; `mlflow_tracking_uri`,
      `mlflow_name`, `mlflow_alias` and `mlflow_version` say which alias went where;
      `model_version` is the Attest version it points at, or null when that MLflow version was
      never imported.

    Invariants: status moves open -> acknowledged -> resolved | dismissed, or open ->
    resolved | dismissed (monitoring.services guards it); at most one active (open or
    acknowledged) alert per (monitor, kind), and per (tracking URI, MLflow model, alias) for
    `alias_moved`: a repeat increments `repeat_count`, refreshes `evidence` and may raise the
    severity, never opens a second case; closing a critical alert carries a compliance
    officer's AlertSignature, whatever raised it.
    """

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        ACKNOWLEDGED = "acknowledged", _("acknowledged")
        RESOLVED = "resolved", _("resolved")
        DISMISSED = "dismissed", _("dismissed")

    class Kind(models.TextChoices):
        DATA_DRIFT = "data_drift", _("data drift")
        CONCEPT_DRIFT = "concept_drift", _("concept drift (performance)")
        FAIRNESS_DRIFT = "fairness_drift", _("fairness drift")
        DATA_QUALITY = "data_quality", _("data quality")
        ALIAS_MOVED = "alias_moved", _("MLflow alias moved to an unapproved version")

    ACTIVE = (Status.OPEN, Status.ACKNOWLEDGED)

    model = models.ForeignKey("registry.RegisteredModel", on_delete=models.PROTECT, related_name="compliance_alerts")
    model_version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT, null=True, blank=True,
                                      related_name="compliance_alerts")
    monitor = models.ForeignKey(DriftMonitor, on_delete=models.PROTECT, null=True, blank=True, related_name="alerts")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    severity = models.CharField(_("severity"), max_length=16, choices=Severity.choices)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.OPEN)
    title = models.CharField(_("title"), max_length=300)
    evidence = models.JSONField(_("evidence (latest breach)"))
    repeat_count = models.PositiveIntegerField(_("breaches"), default=1)
    first_seen_at = models.DateTimeField(_("first breach at"))
    last_seen_at = models.DateTimeField(_("last breach at"))
    last_result = models.ForeignKey(DriftResult, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="+")
    assigned_team = models.ForeignKey("registry.Team", on_delete=models.PROTECT, related_name="compliance_alerts")
    retraining_request = models.ForeignKey("governance.ApprovalRequest", on_delete=models.PROTECT, null=True,
                                           blank=True, related_name="compliance_alerts")
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                        related_name="alerts_acknowledged")
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    acknowledge_reason = models.TextField(_("acknowledgement note"), blank=True)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="alerts_closed")
    closed_at = models.DateTimeField(_("resolved or dismissed at"), null=True, blank=True)
    close_reason = models.TextField(_("resolution or dismissal reason"), blank=True)
    # Where an `alias_moved` alert comes from (empty for drift alerts).
    mlflow_tracking_uri = models.CharField(_("MLflow tracking URI"), max_length=500, blank=True, default="")
    mlflow_name = models.CharField(_("MLflow model name"), max_length=500, blank=True, default="")
    mlflow_alias = models.CharField(_("MLflow alias"), max_length=255, blank=True, default="")
    mlflow_version = models.PositiveIntegerField(_("MLflow version the alias points at"), null=True, blank=True)

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        verbose_name = _("compliance alert")
        verbose_name_plural = _("compliance alerts")
        constraints = [
            models.UniqueConstraint(fields=["monitor", "kind"], condition=models.Q(status__in=["open", "acknowledged"]),
                                    name="compliance_alert_one_active"),
            models.UniqueConstraint(fields=["mlflow_tracking_uri", "mlflow_name", "mlflow_alias"],
                                    condition=models.Q(kind="alias_moved", status__in=["open", "acknowledged"]),
                                    name="compliance_alert_one_active_alias"),
            models.CheckConstraint(
                condition=(models.Q(kind="alias_moved", monitor__isnull=True, mlflow_version__isnull=False)
                           & ~models.Q(mlflow_tracking_uri="") & ~models.Q(mlflow_name="") & ~models.Q(mlflow_alias=""))
                | (~models.Q(kind="alias_moved") & models.Q(monitor__isnull=False, model_version__isnull=False,
                                                            mlflow_tracking_uri="", mlflow_name="", mlflow_alias="",
                                                            mlflow_version__isnull=True)),
                name="compliance_alert_source_shape"),
            models.CheckConstraint(condition=models.Q(status__in=["open", "acknowledged", "resolved", "dismissed"]),
                                   name="compliance_alert_status_valid"),
            models.CheckConstraint(condition=models.Q(severity__in=["info", "warning", "critical"]),
                                   name="compliance_alert_severity_valid"),
            models.CheckConstraint(condition=models.Q(repeat_count__gte=1), name="compliance_alert_count_pos"),
        ]
        indexes = [models.Index(fields=["model", "severity", "status"], name="compliance_alert_gate_idx")]

    def __str__(self) -> str:
        return f"alert #{self.pk} {self.severity} {self.title}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def is_alias_moved(self) -> bool:
        return self.kind == self.Kind.ALIAS_MOVED

    @property
    def subject(self) -> str:
        """What the alert is about, in words: "credit v3 @ production" or "credit: MLflow credit@champion -> 4"."""
        model_version, monitor = self.model_version, self.monitor
        version = f" v{model_version.version}" if model_version is not None else ""
        if self.is_alias_moved or monitor is None:
            return f"{self.model.name}{version}: MLflow {self.mlflow_name}@{self.mlflow_alias} -> {self.mlflow_version}"
        return f"{self.model.name}{version} @ {monitor.environment}"

    @property
    def mlflow(self) -> dict | None:
        """The MLflow alias an `alias_moved` alert is about; None for drift alerts."""
        if not self.is_alias_moved:
            return None
        return {"tracking_uri": self.mlflow_tracking_uri, "model_name": self.mlflow_name, "alias": self.mlflow_alias,
                "version": self.mlflow_version}


class AlertSignature(AppendOnlyModel):
    """A compliance officer's electronic signature closing a critical alert. Never edited.

    Invariants: `record_sha256` is sha256 of the canonical JSON of the alert's record at
    signing (monitoring.services.alerts.alert_record); printed name, role, meaning, reason
    and UTC time are its manifestation (21 CFR 11.50); it was made after re-authentication.
    """

    edit_refusal = "Signatures are never edited."
    delete_refusal = "Signatures are never deleted."

    class Meaning(models.TextChoices):
        RESOLVE = "resolve", _("resolve")
        DISMISS = "dismiss", _("dismiss")

    alert = models.ForeignKey(ComplianceAlert, on_delete=models.PROTECT, related_name="signatures")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="alert_signatures")
    printed_name = models.CharField(_("printed name"), max_length=300)
    role = models.CharField(_("role signed as"), max_length=32)
    meaning = models.CharField(_("meaning"), max_length=16, choices=Meaning.choices)
    reason = models.TextField(_("reason"))
    signed_at = models.DateTimeField(_("signed at (UTC)"))
    record_sha256 = models.CharField(_("sha256 of the record signed"), max_length=64)

    class Meta:
        ordering = ["signed_at", "id"]
        verbose_name = _("alert signature")
        verbose_name_plural = _("alert signatures")
        constraints = [models.CheckConstraint(condition=~models.Q(reason=""), name="alert_signature_has_reason")]

    def __str__(self) -> str:
        return f"{self.printed_name} ({self.role}) {self.meaning} alert #{self.alert_id}"
