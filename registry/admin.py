"""Back-office for the registry: browse, search, register through services, archive with a reason.

Querysets are the API's selectors, so a user sees in the admin what the API shows them. Versions
are immutable and registered through the API (uploads are streamed and hashed there); the admin
shows them read-only, with a model version's lineage and artifact facts.
"""

import contextvars

from django.contrib import admin, messages
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from governance.permissions import Action, user_can
from mlops_site.common.admin import AuditHistoryMixin
from mlops_site.common.errors import ApplicationError
from registry import selectors, services
from registry.models import Dataset, DatasetVersion, ModelVersion, RegisteredModel, Team

ADMIN_ARCHIVE_REASON = "Archived in the admin by {user}."
# The viewer of the change page being rendered: readonly field callables receive only the object.
_viewer: contextvars.ContextVar = contextvars.ContextVar("registry_admin_viewer", default=None)


class _ServiceAdmin(AuditHistoryMixin, admin.ModelAdmin):
    """No deletes; nothing changes an existing row except the archive action."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.add_readonly_fields
        return [f.name for f in self.model._meta.fields] + list(self.extra_readonly_fields)

    add_readonly_fields: tuple = ()
    extra_readonly_fields: tuple = ()

    def has_change_permission(self, request, obj=None) -> bool:
        # The change page is a read-only view; saving it would bypass the services.
        return super().has_change_permission(request, obj) if obj is None else False

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "team":
            # Only teams the user may register for: the service would refuse the others.
            teams = Team.objects.all()
            kwargs["queryset"] = teams if request.user.is_superuser else teams.filter(members=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_archive_permission(self, request) -> bool:
        # Django's model perms don't say who writes the registry (every role views it); the matrix does.
        # Team membership is object-level and stays with the archive services.
        return user_can(request.user, Action.REGISTRY_WRITE)

    def _archive_selected(self, request, queryset, service, kwarg: str) -> None:
        reason = ADMIN_ARCHIVE_REASON.format(user=request.user.get_username())
        done = 0
        for obj in queryset:
            try:
                service(actor=request.user, reason=reason, **{kwarg: obj})
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{obj}: {exc.message}", level=messages.WARNING)
        if done:
            self.message_user(request, f"Archived {done}.", level=messages.SUCCESS)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    """Teams are created and their members changed through services, one audit event per change."""

    list_display = ["name", "member_count", "created_at"]
    search_fields = ["name", "description", "members__username"]
    filter_horizontal = ["members"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_fields(self, request, obj=None):
        return ["name", "description", "members"] if obj is None else ["name", "description", "members",
                                                                        "created_at"]

    def get_readonly_fields(self, request, obj=None):
        # No service renames a team: its name is how models and datasets point at it.
        return [] if obj is None else ["name", "description", "created_at"]

    def get_queryset(self, request):
        return selectors.team_list(user=request.user)

    @admin.display(description=_("members"))
    def member_count(self, obj: Team) -> int:
        return obj.members.count()

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            created = services.team_create(actor=request.user, name=form.cleaned_data["name"],
                                           description=form.cleaned_data.get("description", ""))
            obj.pk, obj.created_at, obj.updated_at = created.pk, created.created_at, created.updated_at

    def save_related(self, request, form, formsets, change) -> None:
        team = Team.objects.get(pk=form.instance.pk)
        wanted = set(form.cleaned_data.get("members") or [])
        current = set(team.members.all())
        for user in sorted(wanted - current, key=lambda u: u.pk):
            services.team_member_add(actor=request.user, team=team, user=user)
        for user in sorted(current - wanted, key=lambda u: u.pk):
            services.team_member_remove(actor=request.user, team=team, user=user)


@admin.register(Dataset)
class DatasetAdmin(_ServiceAdmin):
    list_display = ["name", "team", "created_by", "created_at", "archived_at"]
    list_filter = ["team", ("archived_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "description"]
    actions = ["archive_selected"]

    def get_fields(self, request, obj=None):
        return ["name", "team", "description"] if obj is None else super().get_fields(request, obj)

    def get_queryset(self, request):
        return selectors.dataset_list(user=request.user)

    def save_model(self, request, obj, form, change) -> None:
        created = services.dataset_register(actor=request.user, name=form.cleaned_data["name"],
                                            team=form.cleaned_data["team"],
                                            description=form.cleaned_data.get("description", ""))
        obj.pk = created.pk

    def save_related(self, request, form, formsets, change) -> None:
        pass

    @admin.action(permissions=["archive"], description=_("Archive selected datasets"))
    def archive_selected(self, request, queryset) -> None:
        self._archive_selected(request, queryset, services.dataset_archive, "dataset")


@admin.register(DatasetVersion)
class DatasetVersionAdmin(_ServiceAdmin):
    list_display = ["dataset", "version", "format", "row_count", "short_sha256", "size", "created_at", "archived_at"]
    list_filter = ["format", ("archived_at", admin.EmptyFieldListFilter), "dataset__team"]
    search_fields = ["dataset__name", "sha256"]
    list_select_related = ["dataset"]
    actions = ["archive_selected"]

    def has_add_permission(self, request) -> bool:
        return False  # uploads go through the API, which streams and hashes them

    def get_queryset(self, request):
        return selectors.dataset_version_list(user=request.user)

    @admin.display(description=_("sha256"))
    def short_sha256(self, obj: DatasetVersion) -> str:
        return obj.sha256[:12] + "…"

    @admin.action(permissions=["archive"], description=_("Archive selected dataset versions"))
    def archive_selected(self, request, queryset) -> None:
        self._archive_selected(request, queryset, services.dataset_version_archive, "dataset_version")


@admin.register(RegisteredModel)
class RegisteredModelAdmin(_ServiceAdmin):
    list_display = ["name", "team", "risk_tier", "created_by", "created_at", "archived_at"]
    list_filter = ["risk_tier", "team", ("archived_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "description", "intended_use"]
    actions = ["archive_selected"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "team", "risk_tier", "description", "intended_use", "limitations"]
        return super().get_fields(request, obj)

    def get_queryset(self, request):
        return selectors.model_list(user=request.user)

    def save_model(self, request, obj, form, change) -> None:
        data = form.cleaned_data
        created = services.model_register(actor=request.user, name=data["name"], team=data["team"],
                                          risk_tier=data["risk_tier"], description=data.get("description", ""),
                                          intended_use=data.get("intended_use", ""),
                                          limitations=data.get("limitations", ""))
        obj.pk = created.pk

    def save_related(self, request, form, formsets, change) -> None:
        pass

    @admin.action(permissions=["archive"], description=_("Archive selected models"))
    def archive_selected(self, request, queryset) -> None:
        self._archive_selected(request, queryset, services.model_archive, "model")


def _node_link(node: dict) -> str:
    kind, _, pk = node["id"].partition(":")
    try:
        url = reverse(f"admin:registry_{kind.replace('_', '')}_change", args=[pk])
    except NoReverseMatch:
        return format_html("{}", node["label"])
    return format_html('<a href="{}">{}</a>', url, node["label"])


def _reachable(start: str, edges: list[dict], *, forward: bool) -> list[tuple[str, str]]:
    """(node id, relation) of every node reachable from start along (or against) the edges."""
    found: list[tuple[str, str]] = []
    seen = {start}
    frontier = [start]
    while frontier:
        current = frontier.pop(0)
        for edge in edges:
            here, there = (edge["source"], edge["target"]) if forward else (edge["target"], edge["source"])
            if here == current and there not in seen:
                seen.add(there)
                found.append((there, edge["relation"]))
                frontier.append(there)
    return found


def _node_items(nodes: dict, reached: list[tuple[str, str]]) -> str:
    if not reached:
        return format_html("<li>{}</li>", "—")
    return format_html_join("", "<li>{} <small>({}, sha256 {})</small></li>",
                            ((_node_link(nodes[pk]), rel, (nodes[pk].get("sha256") or "")[:12]) for pk, rel in reached))


_NODE_ADMIN = {"dataset_version": "admin:registry_datasetversion_change",
               "model_version": "admin:registry_modelversion_change",
               "deployment": "admin:governance_deployment_change"}
_RELATION_WORDS = {"training_data": "trained on", "evaluation_data": "evaluated on", "parent": "parent",
                   "deployed_to": "deployed to"}


def _node_view(node: dict, relation: str = "") -> dict:
    kind, _, pk = node["id"].partition(":")
    try:
        url = reverse(_NODE_ADMIN[kind], args=[pk]) if kind in _NODE_ADMIN else ""
    except NoReverseMatch:
        url = ""
    return {**node, "kind": kind, "url": url, "relation": _RELATION_WORDS.get(relation, relation),
            "short_sha": (node.get("sha256") or "")[:12]}


def lineage_columns(*, user, version: ModelVersion) -> dict | None:
    """The version's direct lineage as three columns (what it came from, itself, what came of it),
    read through the API's lineage selector, so only what `user` may see; None when it is not visible."""
    me = f"model_version:{version.pk}"
    try:
        graph = selectors.lineage_graph(user=user, node=me)
    except ApplicationError:
        return None
    nodes = {node["id"]: node for node in graph["nodes"]}
    upstream = [_node_view(nodes[e["source"]], e["relation"]) for e in graph["edges"] if e["target"] == me]
    downstream = [_node_view(nodes[e["target"]], e["relation"]) for e in graph["edges"] if e["source"] == me]
    return {"me": _node_view(nodes[me]), "upstream": upstream, "downstream": downstream,
            "truncated": graph.get("truncated", False)}


@admin.register(ModelVersion)
class ModelVersionAdmin(_ServiceAdmin):
    list_display = ["model", "version", "status", "artifact_format", "artifact_loadable", "short_sha256",
                    "artifact_size", "created_at", "archived_at"]
    list_filter = ["status", "artifact_format", "artifact_loadable", "model__risk_tier", "model__team",
                   ("archived_at", admin.EmptyFieldListFilter)]
    search_fields = ["model__name", "artifact_sha256", "code_commit"]
    list_select_related = ["model"]
    actions = ["archive_selected"]
    extra_readonly_fields = ("training_data", "evaluation_data", "author_names", "lineage")

    def has_add_permission(self, request) -> bool:
        return False  # uploads go through the API, which streams and hashes them

    def get_queryset(self, request):
        return selectors.model_version_list(user=request.user)

    def get_fields(self, request, obj=None):
        return [f.name for f in ModelVersion._meta.fields] + list(self.extra_readonly_fields)

    @admin.display(description=_("sha256"))
    def short_sha256(self, obj: ModelVersion) -> str:
        return obj.artifact_sha256[:12] + "…"

    @admin.display(description=_("training data"))
    def training_data(self, obj: ModelVersion) -> str:
        return ", ".join(str(dv) for dv in obj.training_datasets.all()) or "—"

    @admin.display(description=_("evaluation data"))
    def evaluation_data(self, obj: ModelVersion) -> str:
        return ", ".join(str(dv) for dv in obj.evaluation_datasets.all()) or "—"

    @admin.display(description=_("authors"))
    def author_names(self, obj: ModelVersion) -> str:
        return ", ".join(obj.authors.values_list("username", flat=True)) or "—"

    @admin.display(description=_("lineage"))
    def lineage(self, obj: ModelVersion) -> str:
        try:
            graph = selectors.lineage_graph(user=_viewer.get(), node=f"model_version:{obj.pk}")
        except ApplicationError:
            return "—"
        me = f"model_version:{obj.pk}"
        nodes = {node["id"]: node for node in graph["nodes"]}
        upstream = _reachable(me, graph["edges"], forward=False)
        downstream = _reachable(me, graph["edges"], forward=True)
        return format_html("<strong>upstream</strong><ul>{}</ul><strong>downstream</strong><ul>{}</ul>",
                           _node_items(nodes, upstream), _node_items(nodes, downstream))

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        token = _viewer.set(request.user)
        try:
            response = super().changeform_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render"):
                response.render()  # while the viewer is known; a TemplateResponse renders lazily
            return response
        finally:
            _viewer.reset(token)

    @admin.action(permissions=["archive"], description=_("Archive selected model versions"))
    def archive_selected(self, request, queryset) -> None:
        self._archive_selected(request, queryset, services.model_version_archive, "model_version")
