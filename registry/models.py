"""The registry: teams, datasets and their versions, models and their versions, and lineage.

Versions are immutable records of content identified by sha256: a correction is a new
version, and the only change a version accepts after registration is archiving (and, for
model versions, the status governance owns).
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from mlops_site.common.models import BaseModel

SHA256_REGEX = r"^[0-9a-f]{64}$"


def _sha256_check(field: str, name: str) -> models.CheckConstraint:
    # Lower-case hex of length 64; LIKE/GLOB differ by database, so check length and range only.
    return models.CheckConstraint(condition=models.Q(**{f"{field}__regex": SHA256_REGEX}), name=name)


class Team(BaseModel):
    """A group of people who own models and datasets. Names are unique."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("team")
        verbose_name_plural = _("teams")

    def __str__(self) -> str:
        return self.name


class Dataset(BaseModel):
    """A named data set owned by a team. Its content lives in its versions. Names are unique."""

    name = models.CharField(_("name"), max_length=150, unique=True)
    description = models.TextField(_("description"), blank=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="datasets")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="datasets_created")
    archived_at = models.DateTimeField(_("archived at"), null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("dataset")
        verbose_name_plural = _("datasets")

    def __str__(self) -> str:
        return self.name


class DatasetVersion(BaseModel):
    """One immutable content of a dataset, identified by its sha256.

    Invariants: (dataset, version) is unique and versions count 1, 2, 3…; sha256 is 64
    lower-case hex; the schema and row count were read from the bytes, not from the client;
    sensitive columns and the target are columns of the schema.
    """

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        PARQUET = "parquet", "Parquet"

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField(_("version"))
    sha256 = models.CharField(_("content sha256"), max_length=64, db_index=True)
    size = models.BigIntegerField(_("size in bytes"))
    format = models.CharField(_("format"), max_length=16, choices=Format.choices)
    storage_key = models.CharField(_("storage key"), max_length=200, blank=True)
    source_uri = models.CharField(_("source URI"), max_length=1000, blank=True)
    schema = models.JSONField(_("schema"), default=list, help_text=_("[{name, dtype}] read from the file"))
    row_count = models.BigIntegerField(_("row count"), null=True, blank=True)
    target_column = models.CharField(_("target column"), max_length=200, blank=True)
    sensitive_columns = models.JSONField(_("sensitive columns"), default=list, blank=True)
    license = models.CharField(_("licence"), max_length=200, blank=True)
    provenance = models.TextField(_("provenance notes"), blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="dataset_versions_created")
    archived_at = models.DateTimeField(_("archived at"), null=True, blank=True)

    class Meta:
        ordering = ["dataset__name", "version"]
        verbose_name = _("dataset version")
        verbose_name_plural = _("dataset versions")
        constraints = [
            models.UniqueConstraint(fields=["dataset", "version"], name="dataset_version_unique"),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="dataset_version_positive"),
            models.CheckConstraint(condition=models.Q(size__gte=0), name="dataset_version_size_nonneg"),
            _sha256_check("sha256", "dataset_version_sha256_hex"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.name} v{self.version}"

    @property
    def column_names(self) -> list[str]:
        return [column["name"] for column in self.schema]


class RegisteredModel(BaseModel):
    """A model as a product: its name, owner, purpose and EU AI Act risk tier. Names are unique."""

    class RiskTier(models.TextChoices):
        MINIMAL = "minimal", _("minimal")
        LIMITED = "limited", _("limited")
        HIGH = "high", _("high")
        UNACCEPTABLE = "unacceptable", _("unacceptable")

    name = models.CharField(_("name"), max_length=150, unique=True)
    description = models.TextField(_("description"), blank=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="models")
    risk_tier = models.CharField(_("risk tier"), max_length=16, choices=RiskTier.choices)
    intended_use = models.TextField(_("intended use"), blank=True)
    limitations = models.TextField(_("limitations"), blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="models_created")
    archived_at = models.DateTimeField(_("archived at"), null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("registered model")
        verbose_name_plural = _("registered models")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(risk_tier__in=["minimal", "limited", "high", "unacceptable"]),
                name="registered_model_risk_tier_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ModelVersion(BaseModel):
    """One trained artifact of a model, identified by its sha256.

    Invariants: (model, version) is unique and versions count 1, 2, 3… (assigned under a
    lock on the model row); the artifact's sha256 and size were computed by the server from
    the bytes it stored (or declared with a https reference); the artifact is loaded only
    through registry.loader (skops with the settings' trusted types), never unpickled.
    """

    class Status(models.TextChoices):
        REGISTERED = "registered", _("registered")
        APPROVED = "approved", _("approved")
        DEPLOYED = "deployed", _("deployed")
        ARCHIVED = "archived", _("archived")

    class ArtifactFormat(models.TextChoices):
        SKOPS = "skops", "skops"
        PICKLE = "pickle", "pickle"
        JOBLIB = "joblib", _("joblib (compressed pickle)")
        ONNX = "onnx", "ONNX"
        ZIP = "zip", _("zip archive")
        UNKNOWN = "unknown", _("unknown")
        REFERENCE = "reference", _("external reference")

    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField(_("version"))
    artifact_sha256 = models.CharField(_("artifact sha256"), max_length=64, db_index=True)
    artifact_size = models.BigIntegerField(_("artifact size in bytes"), null=True, blank=True)
    artifact_format = models.CharField(_("artifact format"), max_length=16, choices=ArtifactFormat.choices)
    artifact_loadable = models.BooleanField(_("loadable by Attest"), default=False)
    artifact_note = models.CharField(_("artifact note"), max_length=300, blank=True)
    storage_key = models.CharField(_("storage key"), max_length=200, blank=True)
    artifact_uri = models.CharField(_("artifact URI"), max_length=1000, blank=True)
    framework = models.CharField(_("framework"), max_length=100, blank=True)
    framework_version = models.CharField(_("framework version"), max_length=50, blank=True)
    task = models.CharField(_("task"), max_length=30, blank=True,
                            help_text=_("classification, regression, …"))
    code_repository = models.CharField(_("code repository"), max_length=500, blank=True)
    code_commit = models.CharField(_("code commit"), max_length=64, blank=True)
    hyperparameters = models.JSONField(_("hyperparameters"), default=dict, blank=True)
    metrics = models.JSONField(_("metrics"), default=dict, blank=True)
    feature_names = models.JSONField(_("feature names"), default=list, blank=True)
    training_datasets = models.ManyToManyField(DatasetVersion, related_name="trained_model_versions",
                                               blank=True)
    evaluation_datasets = models.ManyToManyField(DatasetVersion, related_name="evaluated_model_versions",
                                                 blank=True)
    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                               related_name="children")
    authors = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="authored_model_versions",
                                     blank=True)
    description = models.TextField(_("description"), blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.REGISTERED)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="model_versions_created")
    archived_at = models.DateTimeField(_("archived at"), null=True, blank=True)

    class Meta:
        ordering = ["model__name", "version"]
        verbose_name = _("model version")
        verbose_name_plural = _("model versions")
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="model_version_unique"),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="model_version_positive"),
            _sha256_check("artifact_sha256", "model_version_sha256_hex"),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"
