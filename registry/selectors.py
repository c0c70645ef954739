"""Every non-trivial read of the registry, scoped to what the user may see.

Users see the datasets and models of the teams they belong to; superusers, staff and the
governance reading roles (validators, compliance and risk officers, auditors) see all. An object
the user may not see is reported as missing, never as forbidden, so its existence does not leak.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet

from mlops_site.common.ids import is_id_text
from mlops_site.common.roles import GOVERNANCE_READ_ROLES
from registry import errors
from registry.filters import DatasetFilter, DatasetVersionFilter, ModelVersionFilter, RegisteredModelFilter
from registry.models import Dataset, DatasetVersion, ModelVersion, RegisteredModel, Team

LINEAGE_MAX_NODES = 2000
INVALID_NODE = "A node is 'dataset_version:<id>' or 'model_version:<id>'."


def user_reads_everything(user: Any) -> bool:
    """Superusers, staff and the governance reading roles read the whole registry."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser or user.is_staff:
        return True
    return user.groups.filter(name__in=[str(role) for role in GOVERNANCE_READ_ROLES]).exists()


def user_is_team_member(*, user: Any, team: Team) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return team.members.filter(pk=user.pk).exists()


def _team_scope(user: Any, prefix: str) -> Q | None:
    """None: no restriction. Otherwise the Q limiting rows to the user's teams."""
    if user_reads_everything(user):
        return None
    if user is None or not getattr(user, "is_authenticated", False):
        return Q(pk__in=[])
    return Q(**{f"{prefix}members": user})


def _scoped(queryset: QuerySet, user: Any, prefix: str) -> QuerySet:
    scope = _team_scope(user, prefix)
    # One owning team per row and one membership row per (team, user): the join never repeats a row.
    return queryset if scope is None else queryset.filter(scope)


def _filtered(queryset: QuerySet, filterset_class, filters: dict | None) -> QuerySet:
    if not filters:
        return queryset
    filterset = filterset_class(data=filters, queryset=queryset)
    if not filterset.is_valid():
        raise errors.invalid("Invalid filter.", code="validation_error")
    return filterset.qs


# --- teams --------------------------------------------------------------------------------

def team_list(*, user: Any) -> QuerySet[Team]:
    return _scoped(Team.objects.all(), user, "")


def team_get_for_user(*, user: Any, pk: Any = None, name: str | None = None) -> Team:
    lookup = {"pk": pk} if pk is not None else {"name": name}
    team = team_list(user=user).filter(**lookup).first()
    if team is None:
        raise errors.not_found("No such team.", field="team")
    return team


# --- datasets -----------------------------------------------------------------------------

def dataset_list(*, user: Any, filters: dict | None = None) -> QuerySet[Dataset]:
    queryset = _scoped(Dataset.objects.select_related("team", "created_by"), user, "team__")
    return _filtered(queryset, DatasetFilter, filters)


def dataset_get_for_user(*, user: Any, pk: Any = None, name: str | None = None) -> Dataset:
    lookup = {"pk": pk} if pk is not None else {"name": name}
    dataset = dataset_list(user=user).filter(**lookup).first()
    if dataset is None:
        raise errors.not_found("No such dataset.", field="dataset")
    return dataset


def dataset_version_list(*, user: Any, filters: dict | None = None) -> QuerySet[DatasetVersion]:
    queryset = _scoped(DatasetVersion.objects.select_related("dataset", "dataset__team", "created_by"),
                       user, "dataset__team__")
    return _filtered(queryset, DatasetVersionFilter, filters)


def dataset_version_get_for_user(*, user: Any, pk: Any) -> DatasetVersion:
    version = dataset_version_list(user=user).filter(pk=pk).first()
    if version is None:
        raise errors.not_found("No such dataset version.")
    return version


# --- models -------------------------------------------------------------------------------

def model_list(*, user: Any, filters: dict | None = None) -> QuerySet[RegisteredModel]:
    queryset = _scoped(RegisteredModel.objects.select_related("team", "created_by"), user, "team__")
    return _filtered(queryset, RegisteredModelFilter, filters)


def model_get_for_user(*, user: Any, pk: Any = None, name: str | None = None) -> RegisteredModel:
    lookup = {"pk": pk} if pk is not None else {"name": name}
    model = model_list(user=user).filter(**lookup).first()
    if model is None:
        raise errors.not_found("No such model.", field="model")
    return model


def model_version_list(*, user: Any, filters: dict | None = None) -> QuerySet[ModelVersion]:
    queryset = _scoped(
        ModelVersion.objects.select_related("model", "model__team", "parent", "parent__model", "created_by")
        .prefetch_related("training_datasets__dataset", "evaluation_datasets__dataset", "authors"),
        user, "model__team__",
    )
    return _filtered(queryset, ModelVersionFilter, filters)


def model_version_get_for_user(*, user: Any, pk: Any) -> ModelVersion:
    version = model_version_list(user=user).filter(pk=pk).first()
    if version is None:
        raise errors.not_found("No such model version.")
    return version


# --- lineage ------------------------------------------------------------------------------

@dataclass
class LineageGraph:
    """Nodes keyed by id ("model_version:3") and edges {source, target, relation}."""

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: list[dict[str, str]] = field(default_factory=list)
    truncated: bool = False

    def node_add(self, node: dict[str, Any]) -> bool:
        """Adds a node; False when it was already there or the graph is full."""
        if node["id"] in self.nodes:
            return False
        if len(self.nodes) >= LINEAGE_MAX_NODES:
            self.truncated = True
            return False
        self.nodes[node["id"]] = node
        return True

    def edge_add(self, source: str, target: str, relation: str) -> None:
        edge = {"source": source, "target": target, "relation": relation}
        if edge not in self.edges:
            self.edges.append(edge)

    def as_dict(self) -> dict[str, Any]:
        ids = set(self.nodes)
        edges = [e for e in self.edges if e["source"] in ids and e["target"] in ids]
        return {"nodes": list(self.nodes.values()), "edges": edges, "truncated": self.truncated}


# A provider adds what lies downstream of model versions (governance adds deployments) without the
# registry importing it: provider(user=, graph=, model_versions=) -> None, adding nodes and edges.
LineageProvider = Callable[..., None]
_downstream_providers: list[LineageProvider] = []


def lineage_downstream_provider_register(provider: LineageProvider) -> LineageProvider:
    """Register a provider of nodes downstream of model versions (usable as a decorator)."""
    if provider not in _downstream_providers:
        _downstream_providers.append(provider)
    return provider


def lineage_downstream_provider_unregister(provider: LineageProvider) -> None:
    if provider in _downstream_providers:
        _downstream_providers.remove(provider)


def dataset_version_node(version: DatasetVersion) -> dict[str, Any]:
    return {
        "id": f"dataset_version:{version.pk}",
        "type": "dataset_version",
        "label": f"{version.dataset.name} v{version.version}",
        "sha256": version.sha256,
        "dataset": version.dataset.name,
        "version": version.version,
        "archived": version.archived_at is not None,
        "created_at": version.created_at.isoformat(),
    }


def model_version_node(version: ModelVersion) -> dict[str, Any]:
    return {
        "id": f"model_version:{version.pk}",
        "type": "model_version",
        "label": f"{version.model.name} v{version.version}",
        "sha256": version.artifact_sha256,
        "model": version.model.name,
        "version": version.version,
        "status": version.status,
        "archived": version.archived_at is not None,
        "created_at": version.created_at.isoformat(),
    }


def lineage_node_parse(node: str) -> tuple[str, int]:
    """("dataset_version" | "model_version", id) or ApplicationError `invalid_node`."""
    kind, _, raw_id = (node or "").partition(":")
    if kind not in ("dataset_version", "model_version") or not is_id_text(raw_id):
        raise errors.invalid(INVALID_NODE, code="invalid_node", field="node")
    return kind, int(raw_id)


def lineage_graph(*, user: Any, node: str) -> dict[str, Any]:
    """The graph upstream and downstream of one node, limited to what the user may see.

    Upstream of a model version: its training and evaluation data and its parent, transitively.
    Downstream of a dataset version: the model versions trained or evaluated on it; downstream of
    a model version: its child versions and what registered providers add (deployments).
    """
    kind, pk = lineage_node_parse(node)
    mv_visible = model_version_list(user=user)
    dv_visible = dataset_version_list(user=user)
    graph = LineageGraph()
    if kind == "dataset_version":
        start_dv = dv_visible.filter(pk=pk).first()
        if start_dv is None:
            raise errors.not_found("No such dataset version.", field="node")
        graph.node_add(dataset_version_node(start_dv))
        downstream_mvs = _models_of_datasets(graph, mv_visible, [start_dv.pk])
        _descendants(graph, user, mv_visible, downstream_mvs)
    else:
        start_mv = mv_visible.filter(pk=pk).first()
        if start_mv is None:
            raise errors.not_found("No such model version.", field="node")
        graph.node_add(model_version_node(start_mv))
        _ancestors(graph, mv_visible, dv_visible, [start_mv])
        _descendants(graph, user, mv_visible, [start_mv])
    return graph.as_dict()


def _models_of_datasets(graph: LineageGraph, mv_visible: QuerySet, dv_ids: Iterable[int]) -> list[ModelVersion]:
    found: dict[int, ModelVersion] = {}
    for relation, through in (("training_data", "training_datasets"), ("evaluation_data", "evaluation_datasets")):
        for mv in mv_visible.filter(**{f"{through}__in": list(dv_ids)}).prefetch_related(through):
            graph.node_add(model_version_node(mv))
            for dv in getattr(mv, through).all():
                if dv.pk in dv_ids:
                    graph.edge_add(f"dataset_version:{dv.pk}", f"model_version:{mv.pk}", relation)
            found[mv.pk] = mv
    return list(found.values())


def _descendants(graph: LineageGraph, user: Any, mv_visible: QuerySet, frontier: list[ModelVersion]) -> None:
    reached = list(frontier)
    seen = {mv.pk for mv in frontier}
    while frontier and not graph.truncated:
        children = list(mv_visible.filter(parent__in=[mv.pk for mv in frontier]))
        frontier = []
        for child in children:
            graph.edge_add(f"model_version:{child.parent_id}", f"model_version:{child.pk}", "parent")
            if child.pk not in seen:
                seen.add(child.pk)
                graph.node_add(model_version_node(child))
                frontier.append(child)
                reached.append(child)
    for provider in list(_downstream_providers):
        provider(user=user, graph=graph, model_versions=reached)


def _ancestors(graph: LineageGraph, mv_visible: QuerySet, dv_visible: QuerySet,
               frontier: list[ModelVersion]) -> None:
    seen = {mv.pk for mv in frontier}
    while frontier and not graph.truncated:
        next_frontier: list[ModelVersion] = []
        for mv in frontier:
            for relation, through in (("training_data", mv.training_datasets), ("evaluation_data",
                                                                               mv.evaluation_datasets)):
                for dv in dv_visible.filter(pk__in=through.values("pk")):
                    graph.node_add(dataset_version_node(dv))
                    graph.edge_add(f"dataset_version:{dv.pk}", f"model_version:{mv.pk}", relation)
            if mv.parent_id is not None:
                parent = mv_visible.filter(pk=mv.parent_id).first()
                if parent is not None:
                    graph.node_add(model_version_node(parent))
                    graph.edge_add(f"model_version:{parent.pk}", f"model_version:{mv.pk}", "parent")
                    if parent.pk not in seen:
                        seen.add(parent.pk)
                        next_frontier.append(parent)
        frontier = next_frontier
