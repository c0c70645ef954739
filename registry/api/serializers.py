"""Input serializers check shape only; output serializers render what the selectors return.

Multipart uploads cannot carry JSON natively, so the JSON-valued fields (hyperparameters,
metrics, lists of names or ids) accept a JSON string as well as the value itself.
"""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.utils import html

from mlops_site.common.api.parsers import JsonDocumentError, json_document_loads
from mlops_site.common.nul_guard import MESSAGE as NUL_MESSAGE
from mlops_site.common.nul_guard import nul_location
from registry.models import Dataset, DatasetVersion, ModelVersion, RegisteredModel

# --- JSON in multipart --------------------------------------------------------------------


class _JsonValueField(serializers.Field):
    """Accepts the value, or a JSON string of it (as multipart forms must send it)."""

    expected: type = dict
    child: serializers.Field | None = None
    type_message = "Must be a JSON object."

    def get_value(self, dictionary: Any) -> Any:
        if html.is_html_input(dictionary):
            if self.field_name not in dictionary:
                return empty
            values = dictionary.getlist(self.field_name)
            # Repeated form fields (a=1&a=2) are a list; a single one may hold a JSON document.
            return values if self.expected is list and len(values) > 1 else values[0]
        return dictionary.get(self.field_name, empty)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str):
            try:
                data = json_document_loads(data)
            except JsonDocumentError as exc:  # NaN, Infinity, too deep: JSON in name only
                raise serializers.ValidationError(str(exc)) from None
            except ValueError:
                if self.expected is not list:
                    self.fail_invalid()
                data = [data]
        if self.expected is list and not isinstance(data, list) and isinstance(data, str | int):
            data = [data]
        if not isinstance(data, self.expected):
            self.fail_invalid()
        if nul_location(data) is not None:  # a form field's JSON, which the API's JSON parser never saw
            raise serializers.ValidationError(NUL_MESSAGE)
        if self.child is not None:
            return [self.child.run_validation(item) for item in data]
        return data

    def to_representation(self, value: Any) -> Any:
        return value

    def fail_invalid(self) -> None:
        raise serializers.ValidationError(self.type_message)


@extend_schema_field(OpenApiTypes.OBJECT)
class JsonObjectField(_JsonValueField):
    expected = dict


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class JsonStringListField(_JsonValueField):
    expected = list
    type_message = "Must be a JSON array of strings."

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.child = serializers.CharField(max_length=200, allow_blank=False)


@extend_schema_field({"type": "array", "items": {"type": "integer"}})
class JsonIdListField(_JsonValueField):
    expected = list
    type_message = "Must be a JSON array of ids."

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.child = serializers.IntegerField(min_value=1, max_value=2**62)


# --- errors (for the schema) --------------------------------------------------------------


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField()


class ErrorResponseSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


# --- inputs -------------------------------------------------------------------------------


class ArchiveInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class DatasetCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=150)
    team = serializers.CharField(max_length=100, help_text="The owning team's name.")
    description = serializers.CharField(required=False, allow_blank=True, default="")


class DatasetVersionCreateInputSerializer(serializers.Serializer):
    dataset = serializers.CharField(max_length=150, help_text="The dataset's name.")
    file = serializers.FileField(help_text="CSV or Parquet; the format is read from the bytes.")
    sha256 = serializers.CharField(required=False, allow_blank=True, max_length=100,
                                   help_text="The client's sha256 of the file; must match.")
    target_column = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    sensitive_columns = JsonStringListField(required=False, default=list)
    source_uri = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)
    license = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    provenance = serializers.CharField(required=False, allow_blank=True, default="")


class ModelCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=150)
    team = serializers.CharField(max_length=100, help_text="The owning team's name.")
    risk_tier = serializers.ChoiceField(choices=RegisteredModel.RiskTier.choices)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    intended_use = serializers.CharField(required=False, allow_blank=True, default="")
    limitations = serializers.CharField(required=False, allow_blank=True, default="")


class ModelVersionCreateInputSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=150, help_text="The registered model's name.")
    artifact = serializers.FileField(required=False, help_text="The artifact; its format is read from the bytes.")
    artifact_sha256 = serializers.CharField(required=False, allow_blank=True, max_length=100,
                                            help_text="The client's sha256 of the artifact; must match.")
    artifact_uri = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000,
                                         help_text="https reference instead of an upload (with artifact_sha256).")
    framework = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
    framework_version = serializers.CharField(required=False, allow_blank=True, default="", max_length=50)
    task = serializers.CharField(required=False, allow_blank=True, default="", max_length=30)
    code_repository = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    code_commit = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)
    hyperparameters = JsonObjectField(required=False, default=dict)
    metrics = JsonObjectField(required=False, default=dict)
    feature_names = JsonStringListField(required=False, default=list)
    training_datasets = JsonIdListField(required=False, default=list, help_text="Dataset version ids.")
    evaluation_datasets = JsonIdListField(required=False, default=list, help_text="Dataset version ids.")
    parent = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1,
                                      max_value=2**62, help_text="The model version this one derives from.")
    authors = JsonStringListField(required=False, default=list, help_text="Usernames.")
    description = serializers.CharField(required=False, allow_blank=True, default="")


# --- outputs ------------------------------------------------------------------------------


class DatasetOutputSerializer(serializers.ModelSerializer):
    team = serializers.CharField(source="team.name")
    created_by = serializers.CharField(source="created_by.username")

    class Meta:
        model = Dataset
        fields = ["id", "name", "description", "team", "created_by", "created_at", "updated_at", "archived_at"]


class SchemaColumnSerializer(serializers.Serializer):
    name = serializers.CharField()
    dtype = serializers.CharField()


class DatasetVersionOutputSerializer(serializers.ModelSerializer):
    dataset = serializers.CharField(source="dataset.name")
    schema = SchemaColumnSerializer(many=True)
    sensitive_columns = serializers.ListField(child=serializers.CharField())
    created_by = serializers.CharField(source="created_by.username")

    class Meta:
        model = DatasetVersion
        fields = ["id", "dataset", "version", "sha256", "size", "format", "schema", "row_count", "target_column",
                  "sensitive_columns", "source_uri", "license", "provenance", "created_by", "created_at",
                  "archived_at"]


class RegisteredModelOutputSerializer(serializers.ModelSerializer):
    team = serializers.CharField(source="team.name")
    created_by = serializers.CharField(source="created_by.username")

    class Meta:
        model = RegisteredModel
        fields = ["id", "name", "team", "risk_tier", "description", "intended_use", "limitations", "created_by",
                  "created_at", "updated_at", "archived_at"]


class ModelVersionOutputSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    hyperparameters = serializers.DictField()
    metrics = serializers.DictField()
    feature_names = serializers.ListField(child=serializers.CharField())
    training_datasets = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    evaluation_datasets = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    parent = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    authors = serializers.SlugRelatedField(many=True, read_only=True, slug_field="username")
    created_by = serializers.CharField(source="created_by.username")

    class Meta:
        model = ModelVersion
        fields = ["id", "model", "version", "artifact_sha256", "artifact_size", "artifact_format",
                  "artifact_loadable", "artifact_note", "artifact_uri", "framework", "framework_version", "task",
                  "code_repository", "code_commit", "hyperparameters", "metrics", "feature_names",
                  "training_datasets", "evaluation_datasets", "parent", "authors", "description", "status",
                  "created_by", "created_at", "archived_at"]


class LineageNodeSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="'<type>:<id>', e.g. 'model_version:3'.")
    type = serializers.CharField(help_text="dataset_version, model_version, or a type a provider adds.")
    label = serializers.CharField()
    sha256 = serializers.CharField(allow_blank=True)
    version = serializers.IntegerField(required=False)
    archived = serializers.BooleanField(required=False)
    created_at = serializers.DateTimeField(required=False)


class LineageEdgeSerializer(serializers.Serializer):
    source = serializers.CharField()
    target = serializers.CharField()
    relation = serializers.CharField(help_text="training_data, evaluation_data, parent, or a provider's.")


class LineageOutputSerializer(serializers.Serializer):
    nodes = LineageNodeSerializer(many=True)
    edges = LineageEdgeSerializer(many=True)
    truncated = serializers.BooleanField(help_text="True when the graph hit the node limit.")
