"""Import an MLflow Model Registry into Attest's registry over MLflow's REST API (issue 8).

MLflow is not a dependency: this module speaks HTTP (urllib) to a tracking server:
`registered-models/search`, `model-versions/search`, `model-versions/get-download-uri`,
`runs/get`, and the artifact proxy `mlflow-artifacts/artifacts` (MLflow >= 2, `mlflow server`
with artifact serving, the default).

For each MLflow model version, in one transaction:
- the Attest model of the same name (created in `team` with `risk_tier` when missing);
- the next Attest version of it, registered through `registry.services.model_version_register`:
  the run's parameters (hyperparameters), latest metrics, git commit and repository tags;
  the artifact's files downloaded through the tracking server and packed into one canonical
  zip (sorted paths, fixed timestamps, stored), whose sha256 becomes the version's
  `artifact_sha256` and whose bytes Attest keeps; each file's own sha256 is kept too;
- training/evaluation lineage to the Attest dataset version whose sha256 starts with an MLflow
  dataset input's digest (MLflow caps digests at 36 characters; at least 8 hex characters and
  one match needed); every dataset input (name, digest, context, source) is kept;
- an `MlflowModelVersionLink` keyed by (tracking URI, name, version), and an audit event.
A version already linked is left alone, so importing twice creates nothing the second time.
A version whose artifact cannot be read through the server is skipped, with the reason.

Aliases: each alias's target is remembered (`MlflowAliasState`). When a governed alias
(settings.ATTEST_MLFLOW_GOVERNED_ALIASES; "*" = every alias) moves to a version that is not
approved or deployed in Attest, a critical compliance alert of kind `alias_moved` opens (or
the alias's active one repeats): the same `ComplianceAlert` as a drift breach, in the same
inbox, closed only by a compliance officer's signature, and while it is active the gate
denies the model with `open_critical_alert`. Compliance alerts belong to monitoring, which
sits above governance: monitoring installs the handler that raises them
(`mlflow_alias_alert_handler_set`, at its ready()), so this module never imports it.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import io
import json
import logging
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.core.files import File
from django.db import transaction

from governance.audit import AuditAction, audit_event_record
from governance.models.mlflow import MlflowAliasState, MlflowModelVersionLink
from mlops_site.common.errors import ApplicationError
from registry import services as registry
from registry.models import DatasetVersion, ModelVersion, RegisteredModel, Team

log = logging.getLogger(__name__)
SYSTEM = "mlflow_import"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
APPROVED_STATUSES = (ModelVersion.Status.APPROVED, ModelVersion.Status.DEPLOYED)
MAX_ARTIFACT_BYTES_DEFAULT = 512 * 1024 * 1024


class MlflowError(ApplicationError):
    code = "mlflow_unavailable"
    status = 502


class ArtifactUnreadable(Exception):
    """The artifact cannot be read through the tracking server (another store, or missing)."""


@dataclasses.dataclass
class ImportSummary:
    models_created: list[str] = dataclasses.field(default_factory=list)
    versions_imported: list[tuple[str, int, int]] = dataclasses.field(default_factory=list)  # name, mlflow, attest
    versions_unchanged: int = 0
    versions_skipped: list[tuple[str, int, str]] = dataclasses.field(default_factory=list)
    alias_moves: list[tuple[str, str, int | None, int]] = dataclasses.field(default_factory=list)
    alerts_opened: list[str] = dataclasses.field(default_factory=list)
    alerts_repeated: list[str] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- the REST client ------------------------------------------------------------------------------

class MlflowRestClient:
    """GET/POST JSON and download bytes from a tracking server; MLFLOW_TRACKING_TOKEN or
    MLFLOW_TRACKING_USERNAME/PASSWORD from the environment authenticate, as MLflow's own client does."""

    def __init__(self, tracking_uri: str, *, timeout: float = 60.0):
        parsed = urllib.parse.urlparse(tracking_uri)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ApplicationError(f"The tracking URI must be an http(s) URL, got {tracking_uri!r}.",
                                   code="invalid_tracking_uri", fields={"tracking_uri": ["An http(s) URL."]})
        self.base = tracking_uri.rstrip("/")
        self.timeout = timeout
        self.headers = {"Accept": "application/json", "User-Agent": "attest-mlflow-import"}
        if os.environ.get("MLFLOW_TRACKING_TOKEN"):
            self.headers["Authorization"] = f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"
        elif os.environ.get("MLFLOW_TRACKING_USERNAME"):
            pair = f"{os.environ['MLFLOW_TRACKING_USERNAME']}:{os.environ.get('MLFLOW_TRACKING_PASSWORD', '')}"
            self.headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()

    def _open(self, path: str, query: dict[str, Any] | None = None):
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        request = urllib.request.Request(url, headers=self.headers)
        return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310 # nosec B310 # http(s): __init__

    def get(self, path: str, query: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            with self._open(path, query) as response:
                return json.loads(response.read().decode("utf-8") or "{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise MlflowError(f"MLflow answered {exc.code} to {path}: {detail}") from exc
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            raise MlflowError(f"Cannot reach MLflow at {self.base}: {exc}") from exc

    def pages(self, path: str, key: str, query: dict[str, Any]) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page = self.get(path, {**query, **({"page_token": token} if token else {})})
            yield from page.get(key, [])
            token = page.get("next_page_token")
            if not token:
                return

    def download(self, path: str, sink, limit: int) -> tuple[str, int]:
        """Stream an artifact into `sink`; its sha256 and size. ArtifactUnreadable on any failure."""
        digest, size = hashlib.sha256(), 0
        try:
            with self._open(path) as response:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    size += len(chunk)
                    if size > limit:
                        raise ArtifactUnreadable(f"artifact larger than {limit} bytes")
                    digest.update(chunk)
                    sink.write(chunk)
        except urllib.error.HTTPError as exc:
            raise ArtifactUnreadable(f"MLflow answered {exc.code} for {path}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise ArtifactUnreadable(f"cannot download {path}: {exc}") from exc
        return digest.hexdigest(), size


# --- artifacts ------------------------------------------------------------------------------------

def _proxy_path(uri: str) -> str | None:
    """'mlflow-artifacts:/1/abc/artifacts/model' -> '1/abc/artifacts/model' (None for other stores)."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme != "mlflow-artifacts":
        return None
    return parsed.path.strip("/")


def _artifact_files(client: MlflowRestClient, root: str) -> list[dict[str, Any]]:
    """Every file under `root` (a file itself, or a directory walked recursively), sorted by path."""
    files, stack = [], [root]
    while stack:
        directory = stack.pop()
        listing = client.get("/api/2.0/mlflow-artifacts/artifacts", {"path": directory}).get("files", [])
        for entry in listing:
            full = f"{directory}/{entry['path']}".strip("/")  # listed relative to the directory asked
            if entry.get("is_dir"):
                stack.append(full)
            else:
                files.append({"path": full, "size": int(entry.get("file_size") or 0)})
    if not files:
        # A listing of a file is empty: the root is the file.
        files.append({"path": root, "size": None})
    return sorted(files, key=lambda f: f["path"])


def artifact_pack(client: MlflowRestClient, uri: str, sink, *, limit: int) -> list[dict[str, Any]]:
    """Download the artifact at `uri` into a canonical zip written to `sink`; the files' manifest.

    Canonical: entries sorted by path relative to the artifact root, each stored (no
    compression) with the date 1980-01-01 and mode 0644, so the same files give the same bytes.
    """
    root = _proxy_path(uri)
    if root is None:
        raise ArtifactUnreadable(f"{uri} is not served by the tracking server (only mlflow-artifacts:/ is read)")
    files = _artifact_files(client, root)
    manifest = []
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
        for entry in files:
            relative = entry["path"][len(root):].strip("/") or os.path.basename(root)
            with tempfile.TemporaryFile() as buffer:
                quoted = urllib.parse.quote(entry["path"])
                sha256, size = client.download(f"/api/2.0/mlflow-artifacts/artifacts/{quoted}", buffer, limit)
                buffer.seek(0)
                info = zipfile.ZipInfo(relative, date_time=ZIP_DATE)
                info.external_attr = 0o100644 << 16
                info.compress_type = zipfile.ZIP_STORED
                with archive.open(info, "w", force_zip64=True) as target:
                    for chunk in iter(lambda: buffer.read(1 << 20), b""):
                        target.write(chunk)
            manifest.append({"path": relative, "size": size, "sha256": sha256})
    return manifest


# --- the import -----------------------------------------------------------------------------------

def _tracking_key(tracking_uri: str) -> str:
    return tracking_uri.rstrip("/")


def _numeric(value: str) -> Any:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number


def _run_facts(client: MlflowRestClient, run_id: str) -> dict[str, Any]:
    if not run_id:
        return {"params": {}, "metrics": {}, "tags": {}, "datasets": []}
    run = client.get("/api/2.0/mlflow/runs/get", {"run_id": run_id}).get("run", {})
    data = run.get("data", {})
    datasets = []
    for item in (run.get("inputs") or {}).get("dataset_inputs", []) or []:
        dataset = item.get("dataset", {})
        tags = {t.get("key"): t.get("value") for t in item.get("tags", []) or []}
        datasets.append({"name": dataset.get("name", ""), "digest": dataset.get("digest", ""),
                         "context": tags.get("mlflow.data.context", ""), "source_type": dataset.get("source_type", ""),
                         "source": dataset.get("source", "")})
    return {
        "params": {p["key"]: _numeric(p.get("value", "")) for p in data.get("params", []) or []},
        "metrics": {m["key"]: m.get("value") for m in data.get("metrics", []) or []},
        "tags": {t["key"]: t.get("value", "") for t in data.get("tags", []) or []},
        "datasets": datasets,
    }


def _lineage(datasets: list[dict[str, Any]]) -> tuple[list[DatasetVersion], list[DatasetVersion]]:
    """Attest dataset versions an input's digest names, by context (training / other).

    MLflow caps a digest at 36 characters, so a digest of at least 8 hex characters names the
    one Attest dataset version whose sha256 starts with it (none when several do).
    """
    training: list[DatasetVersion] = []
    evaluation: list[DatasetVersion] = []
    for item in datasets:
        digest = (item.get("digest") or "").lower()
        if len(digest) < 8 or any(ch not in "0123456789abcdef" for ch in digest):
            continue
        found = list(DatasetVersion.objects.filter(sha256__startswith=digest, archived_at__isnull=True)[:2])
        if len(found) == 1:
            (training if item.get("context") in ("", "training", "train") else evaluation).append(found[0])
    return training, evaluation


def _model_for(*, actor: Any, name: str, team: Team, risk_tier: str, tracking_uri: str,
               summary: ImportSummary) -> RegisteredModel:
    model = RegisteredModel.objects.filter(name=name).first()
    if model is not None:
        return model
    model = registry.model_register(actor=actor, name=name, team=team, risk_tier=risk_tier,
                                    description=f"Imported from the MLflow Model Registry at {tracking_uri}.")
    summary.models_created.append(name)
    return model


def _version_import(*, client: MlflowRestClient, actor: Any, tracking_uri: str, team: Team, risk_tier: str,
                    name: str, mlflow_version: dict[str, Any], summary: ImportSummary, limit: int) -> None:
    number = int(mlflow_version["version"])
    if MlflowModelVersionLink.objects.filter(tracking_uri=tracking_uri, mlflow_name=name,
                                             mlflow_version=number).exists():
        summary.versions_unchanged += 1
        return
    run_id = mlflow_version.get("run_id") or ""
    try:
        uri = client.get("/api/2.0/mlflow/model-versions/get-download-uri",
                         {"name": name, "version": str(number)}).get("artifact_uri") or mlflow_version.get("source", "")
    except MlflowError:
        uri = mlflow_version.get("source", "")
    facts = _run_facts(client, run_id)
    with tempfile.NamedTemporaryFile(suffix=".zip") as packed:
        try:
            manifest = artifact_pack(client, uri, packed, limit=limit)
        except ArtifactUnreadable as exc:
            summary.versions_skipped.append((name, number, str(exc)))
            return
        packed.flush()
        packed.seek(0)
        training, evaluation = _lineage(facts["datasets"])
        tags = facts["tags"]
        with transaction.atomic():
            model = _model_for(actor=actor, name=name, team=team, risk_tier=risk_tier, tracking_uri=tracking_uri,
                               summary=summary)
            description = (mlflow_version.get("description") or "").strip()
            version = registry.model_version_register(
                actor=actor, model=model, artifact=File(packed, name=f"{name}-v{number}.mlflow.zip"),
                framework="mlflow",
                code_repository=tags.get("mlflow.source.git.repoURL", "")[:500],
                code_commit=tags.get("mlflow.source.git.commit", "")[:64],
                hyperparameters=facts["params"], metrics=facts["metrics"],
                training_datasets=training, evaluation_datasets=evaluation,
                description=(f"MLflow {name} version {number} (run {run_id or '—'}, source {uri}) from {tracking_uri}."
                             + (f"\n\n{description}" if description else "")),
            )
            link = MlflowModelVersionLink.objects.create(
                tracking_uri=tracking_uri, mlflow_name=name, mlflow_version=number, run_id=run_id,
                source=uri[:1000], artifact_files=manifest, datasets=facts["datasets"], model_version=version)
            audit_event_record(
                actor=actor, action=AuditAction.MLFLOW_VERSION_IMPORTED, target=link,
                object_repr=f"MLflow {name}/{number} -> {model.name} v{version.version}",
                after={"tracking_uri": tracking_uri, "mlflow_name": name, "mlflow_version": number, "run_id": run_id,
                       "source": uri, "model_version": version.pk, "version": version.version,
                       "artifact_sha256": version.artifact_sha256, "files": manifest,
                       "datasets": facts["datasets"]},
            )
    summary.versions_imported.append((name, number, version.version))


def _governed(alias: str) -> bool:
    governed = [a.lower() for a in getattr(settings, "ATTEST_MLFLOW_GOVERNED_ALIASES", ["*"])]
    return "*" in governed or alias.lower() in governed


# The alert handler (monitoring.services.alerts.compliance_alert_raise_alias_moved, installed by
# monitoring's ready()): keyword arguments actor, system, tracking_uri, mlflow_name, alias,
# mlflow_version, previous_version, model, model_version -> (alert, created).
AliasAlertHandler = Callable[..., tuple[Any, bool]]
_alias_alert_handler: list[AliasAlertHandler] = []


def mlflow_alias_alert_handler_set(handler: AliasAlertHandler | None) -> None:
    """Install (or, with None, remove) what raises the compliance alert for an unapproved alias move."""
    _alias_alert_handler.clear()
    if handler is not None:
        _alias_alert_handler.append(handler)


@transaction.atomic
def mlflow_alias_observe(*, actor: Any, tracking_uri: str, name: str, alias: str, mlflow_version: int,
                         summary: ImportSummary | None = None) -> Any:
    """Record where `alias` of MLflow model `name` points; raise its alert when the move is unapproved.

    A move (or the first sighting) of a governed alias to a version that Attest has not
    approved (status approved or deployed) opens a critical `alias_moved` compliance alert, or
    repeats the alias's active one, through the installed handler, in this transaction. A move
    to an approved version closes nothing: only a compliance officer's signature closes a
    critical alert. Seeing the same target again changes nothing. Returns the alert raised or
    repeated, if any.
    """
    summary = summary if summary is not None else ImportSummary()
    state = MlflowAliasState.objects.select_for_update().filter(
        tracking_uri=tracking_uri, mlflow_name=name, alias=alias).first()
    previous = state.mlflow_version if state else None
    if previous == mlflow_version:
        return None
    if state is None:
        state = MlflowAliasState(tracking_uri=tracking_uri, mlflow_name=name, alias=alias,
                                 mlflow_version=mlflow_version)
    state.mlflow_version = mlflow_version
    state.save()
    summary.alias_moves.append((name, alias, previous, mlflow_version))
    link = MlflowModelVersionLink.objects.select_related("model_version__model").filter(
        tracking_uri=tracking_uri, mlflow_name=name, mlflow_version=mlflow_version).first()
    model_version = link.model_version if link else None
    model = model_version.model if model_version else RegisteredModel.objects.filter(name=name).first()
    audit_event_record(
        actor=actor, system=SYSTEM, action=AuditAction.MLFLOW_ALIAS_MOVED, object_type="governance.mlflowaliasstate",
        object_id=state.pk, object_repr=f"MLflow {name}@{alias}: {previous} -> {mlflow_version}",
        before={"version": previous}, after={"version": mlflow_version},
        payload={"tracking_uri": tracking_uri, "model_version": model_version.pk if model_version else None,
                 "attest_status": model_version.status if model_version else None},
    )
    approved = model_version is not None and model_version.status in APPROVED_STATUSES
    if approved or not _governed(alias) or model is None:
        return None
    if not _alias_alert_handler:
        # Only without the monitoring app: the move is in the audit log, but no alert can open.
        log.warning("MLflow alias %s@%s moved to unapproved version %s; no compliance alert handler is installed",
                    name, alias, mlflow_version)
        return None
    alert, created = _alias_alert_handler[0](
        actor=actor, system=SYSTEM, tracking_uri=tracking_uri, mlflow_name=name, alias=alias,
        mlflow_version=mlflow_version, previous_version=previous, model=model, model_version=model_version)
    (summary.alerts_opened if created else summary.alerts_repeated).append(alert.title)
    return alert


def mlflow_import(*, actor: Any, tracking_uri: str, team: Team, risk_tier: str = "high",
                  names: list[str] | None = None, progress: Callable[[str], None] | None = None,
                  client: MlflowRestClient | None = None) -> ImportSummary:
    """Import every registered model (or those in `names`) of the tracking server; idempotent.

    `actor` registers the models and versions (a member of `team`, or a superuser).
    """
    tracking_uri = _tracking_key(tracking_uri)
    client = client or MlflowRestClient(tracking_uri)
    limit = getattr(settings, "ATTEST_MAX_UPLOAD_BYTES", MAX_ARTIFACT_BYTES_DEFAULT)
    summary = ImportSummary()
    if names:
        models = [client.get("/api/2.0/mlflow/registered-models/get", {"name": name})["registered_model"]
                  for name in dict.fromkeys(names)]
    else:
        models = list(client.pages("/api/2.0/mlflow/registered-models/search", "registered_models",
                                   {"max_results": 100}))
    for registered in sorted(models, key=lambda m: m["name"]):
        name = registered["name"]
        escaped = name.replace("'", "\\'")
        versions = list(client.pages("/api/2.0/mlflow/model-versions/search", "model_versions",
                                     {"filter": f"name='{escaped}'", "max_results": 200}))
        for mlflow_version in sorted(versions, key=lambda v: int(v["version"])):
            if progress:
                progress(f"{name} v{mlflow_version['version']}")
            if mlflow_version.get("status", "READY") != "READY":
                summary.versions_skipped.append((name, int(mlflow_version["version"]),
                                                 f"MLflow status {mlflow_version.get('status')}"))
                continue
            _version_import(client=client, actor=actor, tracking_uri=tracking_uri, team=team, risk_tier=risk_tier,
                            name=name, mlflow_version=mlflow_version, summary=summary, limit=limit)
        for alias in sorted(registered.get("aliases", []) or [], key=lambda a: a["alias"]):
            mlflow_alias_observe(actor=actor, tracking_uri=tracking_uri, name=name, alias=alias["alias"],
                                 mlflow_version=int(alias["version"]), summary=summary)
    return summary


# --- the webhook -------------------------------------------------------------------------------------

WEBHOOK_TOLERANCE_SECONDS = 300


def mlflow_webhook_signature_verify(*, secret: str, delivery_id: str, timestamp: str, body: bytes,
                                    signature: str, now: float | None = None) -> str | None:
    """None when MLflow's `X-MLflow-Signature` (v1, HMAC-SHA256 over "id.timestamp.body") is valid
    and fresh; otherwise why not."""
    if not (secret and delivery_id and timestamp and signature):
        return "missing signature headers"
    try:
        sent = int(timestamp)
    except ValueError:
        return "malformed timestamp"
    if abs((now if now is not None else time.time()) - sent) > WEBHOOK_TOLERANCE_SECONDS:
        return "timestamp outside the tolerance window"
    version, _, encoded = signature.partition(",")
    if version != "v1" or not encoded:
        return "unsupported signature version"
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(expected, encoded):
        return "signature mismatch"
    return None


def canonical_zip_sha256(files: dict[str, bytes]) -> str:
    """The sha256 an import gives an artifact made of `files` (for users who check it themselves)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in sorted(files):
            info = zipfile.ZipInfo(path, date_time=ZIP_DATE)
            info.external_attr = 0o100644 << 16
            with archive.open(info, "w", force_zip64=True) as target:
                target.write(files[path])
    return hashlib.sha256(buffer.getvalue()).hexdigest()


WEBHOOK_EVENTS = {("model_version", "created"), ("model_version_alias", "created"),
                  ("model_version_alias", "deleted"), ("registered_model", "created")}


class WebhookRefused(ApplicationError):
    code = "invalid_signature"
    status = 401


def mlflow_webhook_configured() -> dict[str, Any] | None:
    """The receiver's settings, or None when any is missing (the receiver then answers 503)."""
    values = {"secret": getattr(settings, "ATTEST_MLFLOW_WEBHOOK_SECRET", None),
              "tracking_uri": getattr(settings, "ATTEST_MLFLOW_TRACKING_URI", None),
              "username": getattr(settings, "ATTEST_MLFLOW_IMPORT_USER", None),
              "team": getattr(settings, "ATTEST_MLFLOW_TEAM", None)}
    return values if all(values.values()) else None


def mlflow_webhook_receive(*, body: bytes, headers: Any, config: dict[str, Any]) -> dict[str, Any]:
    """Verify one MLflow 3 webhook delivery and schedule the import of the model it names.

    `headers` is a case-insensitive mapping (Django's request.headers).

    Refuses a missing, stale or wrong signature (401 `invalid_signature`) and a body that is
    not an MLflow event (400 `invalid_webhook`). A delivery id seen in the last ten minutes is
    answered `duplicate` without work (MLflow retries). Other events are `ignored`.
    """
    from django.core.cache import cache

    why = mlflow_webhook_signature_verify(
        secret=config["secret"], delivery_id=headers.get("X-MLflow-Delivery-Id", ""),
        timestamp=headers.get("X-MLflow-Timestamp", ""), body=body, signature=headers.get("X-MLflow-Signature", ""))
    if why:
        raise WebhookRefused(f"The webhook signature was refused: {why}.")
    try:
        event = json.loads(body.decode("utf-8"))
        entity, action, data = event["entity"].lower(), event["action"].lower(), event.get("data") or {}
        name = data.get("name", "")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ApplicationError("The body is not an MLflow webhook event.", code="invalid_webhook") from exc
    if (entity, action) not in WEBHOOK_EVENTS or not isinstance(name, str) or not name:
        return {"status": "ignored", "entity": entity, "action": action}
    if not cache.add(f"attest:mlflow-delivery:{headers.get('X-MLflow-Delivery-Id')}", 1, timeout=600):
        return {"status": "duplicate"}
    transaction.on_commit(lambda: mlflow_import_model_task.delay(name))
    return {"status": "accepted", "entity": entity, "action": action, "model": name}


def _import_model(name: str) -> dict[str, Any]:
    from django.contrib.auth import get_user_model

    config = mlflow_webhook_configured()
    if config is None:
        return {"status": "not configured"}
    actor = get_user_model().objects.get(username=config["username"], is_active=True)
    team = Team.objects.get(name=config["team"])
    summary = mlflow_import(actor=actor, tracking_uri=config["tracking_uri"], team=team,
                            risk_tier=getattr(settings, "ATTEST_MLFLOW_RISK_TIER", "high"), names=[name])
    return summary.as_dict()


try:
    from celery import shared_task

    mlflow_import_model_task = shared_task(name="governance.mlflow_import_model", bind=False,
                                           autoretry_for=(MlflowError,), retry_backoff=True, max_retries=5)(
        _import_model)
except ImportError:  # pragma: no cover - celery is a dependency; kept importable without it
    mlflow_import_model_task = None
