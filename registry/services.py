"""Every state change of the registry: one transactional function per use case, each audited.

A service checks who acts (members of the owning team, superusers, or the system itself when
`actor` is None, as management commands do), validates, writes, and records exactly one audit
event in the same transaction. A refused call raises a coded ApplicationError and leaves no row,
no event, and no blob it wrote behind.
"""

import ipaddress
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from governance.audit import AuditAction, audit_event_record
from governance.permissions import Action, user_can
from registry import errors, hooks, selectors, storage
from registry.models import Dataset, DatasetVersion, ModelVersion, RegisteredModel, Team
from registry.sniff import NOTE_REFERENCE, artifact_sniff, dataset_sniff

TEAM_ADMIN_REQUIRED = "Only staff may create teams."
TEAM_MEMBERS_ONLY = "Only members of the team or staff may change its membership."
REASON_REQUIRED = "Archiving needs a reason."
FILE_REQUIRED = "A dataset version is registered with its file."
ARTIFACT_ONE_OF = "Give either an artifact file or an artifact URI, not both."
ARTIFACT_MISSING = "Give an artifact file, or an https artifact URI with its sha256."
URI_NEEDS_SHA256 = "An artifact registered by reference needs its sha256."
INVALID_URI = "An artifact URI is an https URL without credentials that does not point at a private address."
INVALID_NAME = "A name is 1 to {max} printable characters."
REGISTRY_WRITE_FORBIDDEN = "{user} holds no role that registers or archives datasets and models."


# --- helpers ------------------------------------------------------------------------------

def _is_system(actor: Any) -> bool:
    return actor is None


def _is_admin(actor: Any) -> bool:
    return _is_system(actor) or bool(actor.is_superuser)


def _member_required(*, actor: Any, team: Team) -> None:
    """Writes need a role that may write the registry (governance.permissions: registry.write) and
    membership of the owning team (superusers and the system are exempt)."""
    if _is_admin(actor):
        return
    if not selectors.user_is_team_member(user=actor, team=team):
        raise errors.not_team_member(team=team)
    if not user_can(actor, Action.REGISTRY_WRITE):
        raise errors.PermissionDeniedError(REGISTRY_WRITE_FORBIDDEN.format(user=actor.get_username()),
                                           code="permission_denied")


def _name_clean(name: Any, *, max_length: int, field: str = "name") -> str:
    if not isinstance(name, str):
        raise errors.invalid(INVALID_NAME.format(max=max_length), code="validation_error", field=field)
    name = name.strip()
    if not name or len(name) > max_length or any(not ch.isprintable() for ch in name):
        raise errors.invalid(INVALID_NAME.format(max=max_length), code="validation_error", field=field)
    return name


def _reason_clean(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise errors.invalid(REASON_REQUIRED, code="reason_required", field="reason")
    return reason.strip()


def _save_new(obj: Any, *, on_conflict: Any) -> None:
    """full_clean and insert; a unique-name race lost to another request becomes a 409."""
    obj.full_clean(validate_unique=False)
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError as exc:
        raise on_conflict from exc


def _json_type_check(value: Any, expected: type, field: str) -> Any:
    if value is None:
        return expected()
    if not isinstance(value, expected):
        raise errors.invalid(f"{field} must be a JSON {'object' if expected is dict else 'array'}.",
                             code="validation_error", field=field)
    return value


def _artifact_uri_check(uri: str) -> str:
    uri = uri.strip()
    invalid = errors.invalid(INVALID_URI, code="invalid_artifact_uri", field="artifact_uri")
    if len(uri) > 1000 or any(ord(ch) < 33 or ch == "\\" for ch in uri):
        raise invalid
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        raise invalid from exc
    if parts.scheme != "https" or not host or "@" in parts.netloc:
        raise invalid
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith((".localhost", ".local", ".internal")) or "." not in host:
            raise invalid from None
    else:
        if not address.is_global:
            raise invalid
    return uri


def _next_version(queryset) -> int:
    return (queryset.aggregate(top=Max("version"))["top"] or 0) + 1


# --- teams --------------------------------------------------------------------------------

@transaction.atomic
def team_create(*, actor: Any, name: str, description: str = "") -> Team:
    """Create a team (staff, superusers or the system only)."""
    if not (_is_admin(actor) or actor.is_staff):
        raise errors.PermissionDeniedError(TEAM_ADMIN_REQUIRED, code="team_admin_required")
    name = _name_clean(name, max_length=100)
    if Team.objects.filter(name=name).exists():
        raise errors.name_taken(kind="team", name=name, code="team_name_taken")
    team = Team(name=name, description=description or "")
    _save_new(team, on_conflict=errors.name_taken(kind="team", name=name, code="team_name_taken"))
    audit_event_record(actor=actor, action=AuditAction.TEAM_CREATED, target=team,
                       after={"name": team.name, "description": team.description})
    return team


def _membership_guard(*, actor: Any, team: Team) -> None:
    if _is_admin(actor) or actor.is_staff or selectors.user_is_team_member(user=actor, team=team):
        return
    raise errors.PermissionDeniedError(TEAM_MEMBERS_ONLY, code="not_team_member")


@transaction.atomic
def team_member_add(*, actor: Any, team: Team, user: Any) -> Team:
    """Add a user to a team. Adding a current member changes nothing and records nothing."""
    team = Team.objects.select_for_update().get(pk=team.pk)
    _membership_guard(actor=actor, team=team)
    if team.members.filter(pk=user.pk).exists():
        return team
    team.members.add(user)
    audit_event_record(actor=actor, action=AuditAction.TEAM_MEMBER_ADDED, target=team,
                       after={"member": user.get_username()}, payload={"user_id": user.pk})
    return team


@transaction.atomic
def team_member_remove(*, actor: Any, team: Team, user: Any) -> Team:
    """Remove a user from a team. Removing a non-member changes nothing and records nothing."""
    team = Team.objects.select_for_update().get(pk=team.pk)
    _membership_guard(actor=actor, team=team)
    if not team.members.filter(pk=user.pk).exists():
        return team
    team.members.remove(user)
    audit_event_record(actor=actor, action=AuditAction.TEAM_MEMBER_REMOVED, target=team,
                       before={"member": user.get_username()}, payload={"user_id": user.pk})
    return team


# --- datasets -----------------------------------------------------------------------------

@transaction.atomic
def dataset_register(*, actor: Any, name: str, team: Team, description: str = "") -> Dataset:
    """Register a named data set owned by `team` (the actor must belong to it)."""
    if actor is None:
        raise errors.invalid("A dataset needs a creating user.", code="actor_required")
    _member_required(actor=actor, team=team)
    name = _name_clean(name, max_length=150)
    conflict = errors.name_taken(kind="dataset", name=name, code="dataset_name_taken")
    if Dataset.objects.filter(name=name).exists():
        raise conflict
    dataset = Dataset(name=name, team=team, description=description or "", created_by=actor)
    _save_new(dataset, on_conflict=conflict)
    audit_event_record(actor=actor, action=AuditAction.DATASET_REGISTERED, target=dataset,
                       after={"name": dataset.name, "team": team.name, "description": dataset.description})
    return dataset


@transaction.atomic
def dataset_version_register(
    *,
    actor: Any,
    dataset: Dataset,
    file: Any = None,
    declared_sha256: str | None = None,
    source_uri: str = "",
    target_column: str = "",
    sensitive_columns: Iterable[str] = (),
    license: str = "",  # noqa: A002 - the domain's word, and the contract's field name
    provenance: str = "",
) -> DatasetVersion:
    """Register the next version of a data set from its file (CSV or Parquet, sniffed from the bytes).

    The sha256, size, format, schema and row count are read by the server; a declared sha256
    must match; target and sensitive columns must be columns of the schema.
    """
    if actor is None:
        raise errors.invalid("A dataset version needs a creating user.", code="actor_required")
    _member_required(actor=actor, team=dataset.team)
    if dataset.archived_at is not None:
        raise errors.parent_archived(obj=dataset, code="dataset_archived")
    if file is None:
        raise errors.invalid(FILE_REQUIRED, code="file_required", field="file")
    sensitive = list(sensitive_columns or ())
    if any(not isinstance(column, str) for column in sensitive):
        raise errors.invalid("sensitive_columns is a list of column names.", code="validation_error",
                             field="sensitive_columns")

    sha256, size = storage.file_digest(file)
    storage.declared_sha256_check(declared=declared_sha256, actual=sha256, field="sha256")
    facts = dataset_sniff(file)
    columns = {column["name"] for column in facts.schema}
    if target_column and target_column not in columns:
        raise errors.unknown_column(column=target_column, field="target_column")
    for column in sensitive:
        if column not in columns:
            raise errors.unknown_column(column=column, field="sensitive_columns")

    # The parent row's lock makes "highest version + 1" race-free; the unique constraint backs it.
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
    if dataset.archived_at is not None:
        raise errors.parent_archived(obj=dataset, code="dataset_archived")
    blob = storage.blob_store(file=file, sha256=sha256, size=size)
    try:
        version = DatasetVersion(
            dataset=dataset, version=_next_version(dataset.versions.all()), sha256=sha256, size=size,
            format=facts.format, storage_key=blob.key, source_uri=source_uri or "", schema=facts.schema,
            row_count=facts.row_count, target_column=target_column or "", sensitive_columns=sensitive,
            license=license or "", provenance=provenance or "", created_by=actor,
        )
        # The model field does not allow blank (an empty list); the columns were checked above.
        version.full_clean()
        version.save()
        audit_event_record(actor=actor, action=AuditAction.DATASET_VERSION_REGISTERED, target=version,
                           after=_dataset_version_facts(version))
    except BaseException:
        storage.blob_discard(blob)
        raise
    return version


def _dataset_version_facts(version: DatasetVersion) -> dict[str, Any]:
    return {
        "dataset": version.dataset.name, "version": version.version, "sha256": version.sha256,
        "size": version.size, "format": version.format, "row_count": version.row_count,
        "schema": version.schema, "target_column": version.target_column,
        "sensitive_columns": version.sensitive_columns, "source_uri": version.source_uri,
        "license": version.license,
    }


# --- models -------------------------------------------------------------------------------

@transaction.atomic
def model_register(*, actor: Any, name: str, team: Team, risk_tier: str, description: str = "",
                   intended_use: str = "", limitations: str = "") -> RegisteredModel:
    """Register a model (the product) owned by `team`, with its EU AI Act risk tier."""
    if actor is None:
        raise errors.invalid("A model needs a creating user.", code="actor_required")
    _member_required(actor=actor, team=team)
    name = _name_clean(name, max_length=150)
    if risk_tier not in RegisteredModel.RiskTier.values:
        raise errors.invalid(f"risk_tier is one of {', '.join(RegisteredModel.RiskTier.values)}.",
                             code="validation_error", field="risk_tier")
    conflict = errors.name_taken(kind="model", name=name, code="model_name_taken")
    if RegisteredModel.objects.filter(name=name).exists():
        raise conflict
    model = RegisteredModel(name=name, team=team, risk_tier=risk_tier, description=description or "",
                            intended_use=intended_use or "", limitations=limitations or "", created_by=actor)
    _save_new(model, on_conflict=conflict)
    audit_event_record(actor=actor, action=AuditAction.MODEL_REGISTERED, target=model,
                       after={"name": model.name, "team": team.name, "risk_tier": model.risk_tier,
                              "description": model.description, "intended_use": model.intended_use,
                              "limitations": model.limitations})
    return model


def _visible_or_refused(*, actor: Any, objects: Iterable[Any], selector, field: str) -> list[Any]:
    """Referenced versions must exist and be visible to the actor (a foreign id reads as unknown)."""
    resolved = []
    for obj in objects:
        pk = obj.pk if hasattr(obj, "pk") else obj
        try:
            resolved.append(selector(user=actor, pk=pk))
        except errors.NotFoundError as exc:
            raise errors.not_found(f"Unknown id {pk}.", field=field) from exc
    return resolved


@transaction.atomic
def model_version_register(
    *,
    actor: Any,
    model: RegisteredModel,
    artifact: Any = None,
    artifact_uri: str = "",
    declared_sha256: str | None = None,
    framework: str = "",
    framework_version: str = "",
    task: str = "",
    code_repository: str = "",
    code_commit: str = "",
    hyperparameters: dict | None = None,
    metrics: dict | None = None,
    feature_names: list | None = None,
    training_datasets: Iterable[Any] = (),
    evaluation_datasets: Iterable[Any] = (),
    parent: ModelVersion | None = None,
    authors: Iterable[Any] = (),
    description: str = "",
) -> ModelVersion:
    """Register the next version of a model from its artifact (uploaded, or by https reference).

    The server hashes and sniffs an uploaded artifact; only skops files whose types are all
    trusted are marked loadable. A reference is never fetched: its sha256 is the client's word.
    """
    if actor is None:
        raise errors.invalid("A model version needs a creating user.", code="actor_required")
    _member_required(actor=actor, team=model.team)
    if model.archived_at is not None:
        raise errors.parent_archived(obj=model, code="model_archived")
    if artifact is not None and artifact_uri:
        raise errors.invalid(ARTIFACT_ONE_OF, code="artifact_ambiguous", field="artifact")
    if artifact is None and not artifact_uri:
        raise errors.invalid(ARTIFACT_MISSING, code="artifact_missing", field="artifact")
    hyperparameters = _json_type_check(hyperparameters, dict, "hyperparameters")
    metrics = _json_type_check(metrics, dict, "metrics")
    feature_names = _json_type_check(feature_names, list, "feature_names")
    if any(not isinstance(name, str) for name in feature_names):
        raise errors.invalid("feature_names is a list of strings.", code="validation_error", field="feature_names")
    training = _visible_or_refused(actor=actor, objects=training_datasets,
                                   selector=selectors.dataset_version_get_for_user, field="training_datasets")
    evaluation = _visible_or_refused(actor=actor, objects=evaluation_datasets,
                                     selector=selectors.dataset_version_get_for_user, field="evaluation_datasets")
    if parent is not None:
        parent = _visible_or_refused(actor=actor, objects=[parent],
                                     selector=selectors.model_version_get_for_user, field="parent")[0]
    authors = list(authors or ())

    blob = None
    if artifact is not None:
        sha256, size = storage.file_digest(artifact)
        storage.declared_sha256_check(declared=declared_sha256, actual=sha256, field="artifact_sha256")
        facts = artifact_sniff(artifact)
        artifact_format, loadable, note = facts.format, facts.loadable, facts.note
    else:
        artifact_uri = _artifact_uri_check(artifact_uri)
        if not declared_sha256:
            raise errors.invalid(URI_NEEDS_SHA256, code="artifact_sha256_required", field="artifact_sha256")
        sha256 = declared_sha256.strip().lower()
        if not storage.sha256_is_valid(sha256):
            raise errors.invalid_sha256(field="artifact_sha256")
        size, artifact_format, loadable, note = None, ModelVersion.ArtifactFormat.REFERENCE, False, NOTE_REFERENCE

    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    if model.archived_at is not None:
        raise errors.parent_archived(obj=model, code="model_archived")
    hooks.model_version_register_guards_run(actor=actor, model=model, parent=parent)
    if artifact is not None:
        blob = storage.blob_store(file=artifact, sha256=sha256, size=size)  # type: ignore[arg-type]  # set with artifact
    try:
        version = ModelVersion(
            model=model, version=_next_version(model.versions.all()), artifact_sha256=sha256,
            artifact_size=size, artifact_format=artifact_format, artifact_loadable=loadable,
            artifact_note=note, storage_key=blob.key if blob else "", artifact_uri=artifact_uri or "",
            framework=framework or "", framework_version=framework_version or "", task=task or "",
            code_repository=code_repository or "", code_commit=code_commit or "",
            hyperparameters=hyperparameters, metrics=metrics, feature_names=feature_names,
            parent=parent, description=description or "", created_by=actor,
        )
        version.full_clean()
        version.save()
        version.training_datasets.set(training)
        version.evaluation_datasets.set(evaluation)
        version.authors.set(authors)
        audit_event_record(actor=actor, action=AuditAction.MODEL_VERSION_REGISTERED, target=version,
                           after=_model_version_facts(version))
    except BaseException:
        if blob is not None:
            storage.blob_discard(blob)
        raise
    return version


def _model_version_facts(version: ModelVersion) -> dict[str, Any]:
    return {
        "model": version.model.name, "version": version.version, "artifact_sha256": version.artifact_sha256,
        "artifact_size": version.artifact_size, "artifact_format": version.artifact_format,
        "artifact_loadable": version.artifact_loadable, "artifact_uri": version.artifact_uri,
        "framework": version.framework, "framework_version": version.framework_version, "task": version.task,
        "code_repository": version.code_repository, "code_commit": version.code_commit,
        "hyperparameters": version.hyperparameters, "metrics": version.metrics,
        "feature_names": version.feature_names,
        "training_datasets": sorted(version.training_datasets.values_list("pk", flat=True)),
        "evaluation_datasets": sorted(version.evaluation_datasets.values_list("pk", flat=True)),
        "parent": version.parent_id,
        "authors": sorted(version.authors.values_list("username", flat=True)),
    }


# --- model version status -----------------------------------------------------------------

_Status = ModelVersion.Status
# The status follows governance forward only; archived is final and reached only by archiving.
MODEL_VERSION_STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    _Status.REGISTERED: frozenset({_Status.APPROVED, _Status.DEPLOYED}),
    _Status.APPROVED: frozenset({_Status.DEPLOYED}),
    _Status.DEPLOYED: frozenset(),
    _Status.ARCHIVED: frozenset(),
}
STATUS_UNKNOWN = "status must be one of {choices}."
STATUS_INVALID_TRANSITION = "{version} is {status}; it cannot become {target}."
STATUS_REASON_REQUIRED = "A status change needs a reason."
STATUS_ARCHIVE_ONLY = "{version} becomes archived only by archiving it, with a reason."


@transaction.atomic
def model_version_status_set(*, actor: Any, version: ModelVersion, status: str, reason: str) -> ModelVersion:
    """Move a model version's status (registered -> approved -> deployed) as governance decides.

    Governance's services call this in their own transaction when a deployment request is
    approved or a deployment is recorded; they have authorised `actor` for that decision, so
    no team membership is asked here, and no API view calls it. Setting the current status
    changes nothing and records nothing. Refuses an unknown status (400 `validation_error`),
    `archived` (409 `invalid_transition`: use model_version_archive) and any move the table
    above does not allow, e.g. out of `archived` or back from `deployed` (409
    `invalid_transition`). Writes MODEL_VERSION_STATUS_CHANGED with before/after.
    """
    if status not in _Status.values:
        raise errors.invalid(STATUS_UNKNOWN.format(choices=", ".join(_Status.values)), code="validation_error",
                             field="status")
    if not isinstance(reason, str) or not reason.strip():
        raise errors.invalid(STATUS_REASON_REQUIRED, code="reason_required", field="reason")
    reason = reason.strip()
    # Only this row: the model row is locked by the deployment path, always before its versions.
    version = ModelVersion.objects.select_for_update(of=("self",)).select_related("model").get(pk=version.pk)
    if version.status == status:
        return version
    if status == _Status.ARCHIVED:
        raise errors.ConflictError(STATUS_ARCHIVE_ONLY.format(version=version), code="invalid_transition")
    if status not in MODEL_VERSION_STATUS_TRANSITIONS[version.status]:
        raise errors.ConflictError(
            STATUS_INVALID_TRANSITION.format(version=version, status=version.status, target=status),
            code="invalid_transition")
    before = {"status": version.status}
    version.status = status
    version.full_clean()
    version.save(update_fields=["status", "updated_at"])
    audit_event_record(actor=actor, action=AuditAction.MODEL_VERSION_STATUS_CHANGED, target=version,
                       before=before, after={"status": status}, reason=reason)
    return version


# --- archiving ----------------------------------------------------------------------------

def _archive(*, actor: Any, obj: Any, team: Team, reason: str, action: AuditAction,
             extra_update: dict[str, Any] | None = None) -> Any:
    reason = _reason_clean(reason)
    obj = type(obj).objects.select_for_update().get(pk=obj.pk)
    _member_required(actor=actor, team=team)
    if obj.archived_at is not None:
        raise errors.already_archived(obj=obj)
    before = {"archived_at": None, **{key: getattr(obj, key) for key in (extra_update or {})}}
    obj.archived_at = timezone.now()
    for key, value in (extra_update or {}).items():
        setattr(obj, key, value)
    obj.save(update_fields=["archived_at", "updated_at", *(extra_update or {})])
    audit_event_record(actor=actor, action=action, target=obj, before=before,
                       after={"archived_at": obj.archived_at, **(extra_update or {})}, reason=reason)
    return obj


@transaction.atomic
def dataset_archive(*, actor: Any, dataset: Dataset, reason: str) -> Dataset:
    """Archive a data set: it stays readable, and no new versions may be registered."""
    return _archive(actor=actor, obj=dataset, team=dataset.team, reason=reason, action=AuditAction.DATASET_ARCHIVED)


@transaction.atomic
def dataset_version_archive(*, actor: Any, dataset_version: DatasetVersion, reason: str) -> DatasetVersion:
    """Archive one dataset version (it stays in every lineage that used it)."""
    return _archive(actor=actor, obj=dataset_version, team=dataset_version.dataset.team, reason=reason,
                    action=AuditAction.DATASET_VERSION_ARCHIVED)


@transaction.atomic
def model_archive(*, actor: Any, model: RegisteredModel, reason: str) -> RegisteredModel:
    """Archive a model: it stays readable, and no new versions may be registered."""
    return _archive(actor=actor, obj=model, team=model.team, reason=reason, action=AuditAction.MODEL_ARCHIVED)


@transaction.atomic
def model_version_archive(*, actor: Any, model_version: ModelVersion, reason: str) -> ModelVersion:
    """Archive a model version; its status becomes `archived`, which the gate refuses."""
    return _archive(actor=actor, obj=model_version, team=model_version.model.team, reason=reason,
                    action=AuditAction.MODEL_VERSION_ARCHIVED,
                    extra_update={"status": ModelVersion.Status.ARCHIVED})
