"""django-filter FilterSets for the registry's lists (API query parameters and selectors)."""

import datetime as dt

import django_filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField

from registry.models import Dataset, DatasetVersion, ModelVersion, RegisteredModel


class UtcIsoDateTimeField(IsoDateTimeField):
    """ISO 8601 with any offset Python accepts, normalised to UTC before it reaches the database.

    PostgreSQL refuses offsets beyond ±15:59 (`-16:41` was a 500, found by schemathesis); the column
    stores UTC anyway. A value that leaves the calendar once in UTC is a 400, not an OverflowError.
    """

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:
            raise ValidationError("The date and time is out of range once in UTC.", code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class _ArchivedFilterMixin(django_filters.FilterSet):
    archived = django_filters.BooleanFilter(field_name="archived_at", lookup_expr="isnull", exclude=True,
                                            label="true: only archived; false: only active")


class DatasetFilter(_ArchivedFilterMixin):
    name = django_filters.CharFilter(lookup_expr="icontains")
    team = django_filters.CharFilter(field_name="team__name")

    class Meta:
        model = Dataset
        fields = ["name", "team", "archived"]


class DatasetVersionFilter(_ArchivedFilterMixin):
    dataset = django_filters.CharFilter(field_name="dataset__name")
    sha256 = django_filters.CharFilter()
    format = django_filters.ChoiceFilter(choices=DatasetVersion.Format.choices)
    version = django_filters.NumberFilter()

    class Meta:
        model = DatasetVersion
        fields = ["dataset", "sha256", "format", "version", "archived"]


class RegisteredModelFilter(_ArchivedFilterMixin):
    name = django_filters.CharFilter(lookup_expr="icontains")
    team = django_filters.CharFilter(field_name="team__name")
    risk_tier = django_filters.ChoiceFilter(choices=RegisteredModel.RiskTier.choices)

    class Meta:
        model = RegisteredModel
        fields = ["name", "team", "risk_tier", "archived"]


class ModelVersionFilter(_ArchivedFilterMixin):
    model = django_filters.CharFilter(field_name="model__name")
    version = django_filters.NumberFilter()
    status = django_filters.ChoiceFilter(choices=ModelVersion.Status.choices)
    artifact_sha256 = django_filters.CharFilter()
    artifact_format = django_filters.ChoiceFilter(choices=ModelVersion.ArtifactFormat.choices)
    framework = django_filters.CharFilter()
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = ModelVersion
        fields = ["model", "version", "status", "artifact_sha256", "artifact_format", "framework",
                  "created_after", "created_before", "archived"]
