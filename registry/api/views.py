"""The registry's REST API: parse, call one selector or service, serialize.

Every object is read through its `<entity>_get_for_user` selector, so an object of another
team reads as missing (404). Writes go through registry.services, which check team membership,
audit, and leave nothing behind when they refuse.
"""

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlops_site.common.api.parsers import JSONParser
from registry import errors, selectors, services
from registry.api.serializers import (
    ArchiveInputSerializer,
    DatasetCreateInputSerializer,
    DatasetOutputSerializer,
    DatasetVersionCreateInputSerializer,
    DatasetVersionOutputSerializer,
    ErrorResponseSerializer,
    LineageOutputSerializer,
    ModelCreateInputSerializer,
    ModelVersionCreateInputSerializer,
    ModelVersionOutputSerializer,
    RegisteredModelOutputSerializer,
)
from registry.filters import DatasetFilter, DatasetVersionFilter, ModelVersionFilter, RegisteredModelFilter

REGISTRY_SCOPES = {"read": "registry:read", "write": "registry:write"}
ERROR = OpenApiResponse(ErrorResponseSerializer, description="Error body with a stable code.")
READ_ERRORS = {401: ERROR, 403: ERROR, 404: ERROR}
WRITE_ERRORS = {400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR, 413: ERROR}


class _RegistryApi:
    required_scopes = REGISTRY_SCOPES


def _created(serializer_class, instance) -> Response:
    return Response(serializer_class(instance).data, status=status.HTTP_201_CREATED)


def _archive_input(request: Request) -> str:
    serializer = ArchiveInputSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data["reason"]


# --- datasets -----------------------------------------------------------------------------

@extend_schema_view(get=extend_schema(summary="List datasets", responses={200: DatasetOutputSerializer(many=True),
                                                                          **READ_ERRORS}))
class DatasetListCreateApi(_RegistryApi, generics.ListAPIView):
    """Datasets of the user's teams (all of them for governance roles); POST registers one."""

    serializer_class = DatasetOutputSerializer
    filterset_class = DatasetFilter
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def get_queryset(self):
        return selectors.dataset_list(user=self.request.user)

    @extend_schema(summary="Register a dataset", request=DatasetCreateInputSerializer,
                   responses={201: DatasetOutputSerializer, **WRITE_ERRORS})
    def post(self, request: Request) -> Response:
        """Register a named dataset owned by one of the user's teams."""
        data = _valid(DatasetCreateInputSerializer, request)
        team = selectors.team_get_for_user(user=request.user, name=data["team"])
        dataset = services.dataset_register(actor=request.user, name=data["name"], team=team,
                                            description=data["description"])
        return _created(DatasetOutputSerializer, dataset)


class DatasetDetailApi(_RegistryApi, generics.RetrieveAPIView):
    """One dataset."""

    serializer_class = DatasetOutputSerializer

    @extend_schema(summary="Retrieve a dataset", responses={200: DatasetOutputSerializer, **READ_ERRORS})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_object(self):
        return selectors.dataset_get_for_user(user=self.request.user, pk=self.kwargs["pk"])


class DatasetArchiveApi(_RegistryApi, APIView):
    """Archive a dataset (no new versions; history stays)."""

    @extend_schema(summary="Archive a dataset", request=ArchiveInputSerializer,
                   responses={200: DatasetOutputSerializer, **WRITE_ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        dataset = selectors.dataset_get_for_user(user=request.user, pk=pk)
        dataset = services.dataset_archive(actor=request.user, dataset=dataset, reason=_archive_input(request))
        return Response(DatasetOutputSerializer(dataset).data)


@extend_schema_view(get=extend_schema(summary="List dataset versions",
                                      responses={200: DatasetVersionOutputSerializer(many=True), **READ_ERRORS}))
class DatasetVersionListCreateApi(_RegistryApi, generics.ListAPIView):
    """Dataset versions the user may see; POST uploads the next version (multipart, file in `file`)."""

    serializer_class = DatasetVersionOutputSerializer
    filterset_class = DatasetVersionFilter
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self):
        return selectors.dataset_version_list(user=self.request.user)

    @extend_schema(summary="Upload a dataset version", request={"multipart/form-data":
                                                                DatasetVersionCreateInputSerializer},
                   responses={201: DatasetVersionOutputSerializer, **WRITE_ERRORS})
    def post(self, request: Request) -> Response:
        """Upload a CSV or Parquet file as the next version of the named dataset."""
        data = _valid(DatasetVersionCreateInputSerializer, request)
        dataset = selectors.dataset_get_for_user(user=request.user, name=data["dataset"])
        version = services.dataset_version_register(
            actor=request.user, dataset=dataset, file=data["file"], declared_sha256=data.get("sha256") or None,
            source_uri=data["source_uri"], target_column=data["target_column"],
            sensitive_columns=data["sensitive_columns"], license=data["license"], provenance=data["provenance"],
        )
        return _created(DatasetVersionOutputSerializer, version)


class DatasetVersionDetailApi(_RegistryApi, generics.RetrieveAPIView):
    """One dataset version."""

    serializer_class = DatasetVersionOutputSerializer

    @extend_schema(summary="Retrieve a dataset version", responses={200: DatasetVersionOutputSerializer,
                                                                    **READ_ERRORS})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_object(self):
        return selectors.dataset_version_get_for_user(user=self.request.user, pk=self.kwargs["pk"])


class DatasetVersionArchiveApi(_RegistryApi, APIView):
    """Archive a dataset version (it stays in every lineage)."""

    @extend_schema(summary="Archive a dataset version", request=ArchiveInputSerializer,
                   responses={200: DatasetVersionOutputSerializer, **WRITE_ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        version = selectors.dataset_version_get_for_user(user=request.user, pk=pk)
        version = services.dataset_version_archive(actor=request.user, dataset_version=version,
                                                   reason=_archive_input(request))
        return Response(DatasetVersionOutputSerializer(version).data)


# --- models -------------------------------------------------------------------------------

@extend_schema_view(get=extend_schema(summary="List models",
                                      responses={200: RegisteredModelOutputSerializer(many=True), **READ_ERRORS}))
class ModelListCreateApi(_RegistryApi, generics.ListAPIView):
    """Registered models the user may see; POST registers one."""

    serializer_class = RegisteredModelOutputSerializer
    filterset_class = RegisteredModelFilter
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def get_queryset(self):
        return selectors.model_list(user=self.request.user)

    @extend_schema(summary="Register a model", request=ModelCreateInputSerializer,
                   responses={201: RegisteredModelOutputSerializer, **WRITE_ERRORS})
    def post(self, request: Request) -> Response:
        """Register a model owned by one of the user's teams, with its risk tier."""
        data = _valid(ModelCreateInputSerializer, request)
        team = selectors.team_get_for_user(user=request.user, name=data["team"])
        model = services.model_register(actor=request.user, name=data["name"], team=team,
                                        risk_tier=data["risk_tier"], description=data["description"],
                                        intended_use=data["intended_use"], limitations=data["limitations"])
        return _created(RegisteredModelOutputSerializer, model)


class ModelDetailApi(_RegistryApi, generics.RetrieveAPIView):
    """One registered model."""

    serializer_class = RegisteredModelOutputSerializer

    @extend_schema(summary="Retrieve a model", responses={200: RegisteredModelOutputSerializer, **READ_ERRORS})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_object(self):
        return selectors.model_get_for_user(user=self.request.user, pk=self.kwargs["pk"])


class ModelArchiveApi(_RegistryApi, APIView):
    """Archive a model (no new versions; history stays)."""

    @extend_schema(summary="Archive a model", request=ArchiveInputSerializer,
                   responses={200: RegisteredModelOutputSerializer, **WRITE_ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        model = selectors.model_get_for_user(user=request.user, pk=pk)
        model = services.model_archive(actor=request.user, model=model, reason=_archive_input(request))
        return Response(RegisteredModelOutputSerializer(model).data)


@extend_schema_view(get=extend_schema(summary="List model versions",
                                      responses={200: ModelVersionOutputSerializer(many=True), **READ_ERRORS}))
class ModelVersionListCreateApi(_RegistryApi, generics.ListAPIView):
    """Model versions the user may see; POST registers the next version of a model.

    Multipart with the file in `artifact` (and optionally `artifact_sha256`, which must match),
    or JSON with `artifact_uri` (https) and `artifact_sha256` to register by reference.
    """

    serializer_class = ModelVersionOutputSerializer
    filterset_class = ModelVersionFilter
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self):
        return selectors.model_version_list(user=self.request.user)

    @extend_schema(summary="Register a model version",
                   request={"multipart/form-data": ModelVersionCreateInputSerializer,
                            "application/json": ModelVersionCreateInputSerializer},
                   responses={201: ModelVersionOutputSerializer, **WRITE_ERRORS})
    def post(self, request: Request) -> Response:
        """Upload (or reference) an artifact as the next version of the named model."""
        data = _valid(ModelVersionCreateInputSerializer, request)
        model = selectors.model_get_for_user(user=request.user, name=data["model"])
        parent = None
        if data["parent"] is not None:
            try:
                parent = selectors.model_version_get_for_user(user=request.user, pk=data["parent"])
            except errors.NotFoundError as exc:
                raise errors.not_found(f"Unknown model version {data['parent']}.", field="parent") from exc
        authors = _users_by_name(data["authors"])
        version = services.model_version_register(
            actor=request.user, model=model, artifact=data.get("artifact"), artifact_uri=data["artifact_uri"],
            declared_sha256=data.get("artifact_sha256") or None, framework=data["framework"],
            framework_version=data["framework_version"], task=data["task"],
            code_repository=data["code_repository"], code_commit=data["code_commit"],
            hyperparameters=data["hyperparameters"], metrics=data["metrics"], feature_names=data["feature_names"],
            training_datasets=data["training_datasets"], evaluation_datasets=data["evaluation_datasets"],
            parent=parent, authors=authors, description=data["description"],
        )
        version = selectors.model_version_get_for_user(user=request.user, pk=version.pk)
        return _created(ModelVersionOutputSerializer, version)


class ModelVersionDetailApi(_RegistryApi, generics.RetrieveAPIView):
    """One model version, with its artifact facts and whether Attest will load it."""

    serializer_class = ModelVersionOutputSerializer

    @extend_schema(summary="Retrieve a model version", responses={200: ModelVersionOutputSerializer,
                                                                  **READ_ERRORS})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_object(self):
        return selectors.model_version_get_for_user(user=self.request.user, pk=self.kwargs["pk"])


class ModelVersionArchiveApi(_RegistryApi, APIView):
    """Archive a model version; the gate refuses archived versions."""

    @extend_schema(summary="Archive a model version", request=ArchiveInputSerializer,
                   responses={200: ModelVersionOutputSerializer, **WRITE_ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        version = selectors.model_version_get_for_user(user=request.user, pk=pk)
        services.model_version_archive(actor=request.user, model_version=version, reason=_archive_input(request))
        version = selectors.model_version_get_for_user(user=request.user, pk=pk)
        return Response(ModelVersionOutputSerializer(version).data)


# --- lineage ------------------------------------------------------------------------------

class LineageApi(_RegistryApi, APIView):
    """The lineage graph upstream and downstream of one dataset or model version."""

    @extend_schema(
        summary="Lineage graph of a node",
        parameters=[OpenApiParameter("node", str, required=True,
                                     description="'dataset_version:<id>' or 'model_version:<id>'.")],
        responses={200: LineageOutputSerializer, 400: ERROR, **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.lineage_graph(user=request.user, node=request.query_params.get("node", "")))


# --- helpers ------------------------------------------------------------------------------

def _valid(serializer_class, request: Request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _users_by_name(usernames: list[str]) -> list:
    users = list(get_user_model().objects.filter(username__in=usernames, is_active=True))
    missing = sorted(set(usernames) - {user.get_username() for user in users})
    if missing:
        raise errors.not_found(f"Unknown user(s): {', '.join(missing)}.", field="authors")
    return users
