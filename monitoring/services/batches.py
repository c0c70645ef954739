"""Monitoring batches: production samples in, hashed, checked against the reference's schema, stored once."""

import io
from pathlib import Path
from typing import Any

from django.core.files import File
from django.db import IntegrityError, transaction

from governance.audit import AuditAction, audit_event_record
from monitoring import errors
from monitoring.access import can_send_batch
from monitoring.models import DriftMonitor, MonitoringBatch
from monitoring.tables import batch_prepare, finite, reference_frame, table_read
from registry import storage

PATH_UNREADABLE = "The file {path} cannot be read."


def _schema(frame) -> list[dict[str, str]]:
    return [{"name": str(name), "dtype": str(dtype)} for name, dtype in frame.dtypes.items()]


def monitoring_batch_ingest(*, actor: Any, monitor: DriftMonitor, file: Any,
                            source: str = MonitoringBatch.Source.UPLOAD,
                            check_on_commit: bool = True) -> tuple[MonitoringBatch, bool]:
    """Store a batch of production samples for `monitor`; returns (batch, created).

    The format (CSV, Parquet, JSON records) is sniffed from the bytes; the schema is compared
    with the reference and the findings kept with the batch. The same bytes sent again are the
    same batch (created False, nothing written). Refuses, storing nothing: someone outside the
    model's team (403 `permission_denied`), an empty file or one without rows (400
    `empty_batch`), bytes that are no table (400 `not_tabular`), a file that cannot be parsed
    (400 `unreadable_batch`). Writes MONITORING_BATCH_INGESTED and, on commit, queues the
    drift check (unless `check_on_commit` is off).
    """
    if not can_send_batch(actor, monitor):
        raise errors.not_allowed(user=actor, action=f"send batches to {monitor}")
    if file is None:
        raise errors.invalid("A batch is sent with its file.", code="file_required", field="file")
    sha256, size = storage.file_digest(file)
    if size == 0:
        raise errors.batch_empty()
    fmt, frame = table_read(file)
    reference = monitor.reference
    ref = reference_frame(reference.storage_key, reference.sha256)
    extra = {monitor.label_column, monitor.prediction_column} - {""}
    _, findings = batch_prepare(batch=frame, reference=ref, features=monitor.features, extra_allowed=extra)
    has_labels = bool(monitor.label_column) and monitor.label_column in frame.columns
    has_predictions = bool(monitor.prediction_column) and monitor.prediction_column in frame.columns

    with transaction.atomic():
        monitor = DriftMonitor.objects.select_for_update().select_related("model_version__model").get(pk=monitor.pk)
        existing = MonitoringBatch.objects.filter(monitor=monitor, sha256=sha256).first()
        if existing is not None:
            return existing, False
        blob = storage.blob_store(file=file, sha256=sha256, size=size)
        try:
            batch = MonitoringBatch(
                monitor=monitor, sha256=sha256, size=size, format=fmt, source=source, storage_key=blob.key,
                row_count=int(frame.shape[0]), schema=_schema(frame), has_labels=has_labels,
                has_predictions=has_predictions, quality_findings=finite(findings), received_by=actor,
            )
            batch.full_clean(validate_unique=False)
            with transaction.atomic():
                batch.save()
            audit_event_record(
                actor=actor, system="monitoring", action=AuditAction.MONITORING_BATCH_INGESTED, target=batch,
                after={"monitor": monitor.pk, "model": monitor.model_version.model.name,
                       "version": monitor.model_version.version, "environment": monitor.environment,
                       "sha256": sha256, "size": size, "format": fmt, "rows": batch.row_count,
                       "has_labels": has_labels, "has_predictions": has_predictions, "source": source},
                payload={"quality_findings": [{k: f[k] for k in ("code", "column")} for f in findings]},
            )
        except IntegrityError:
            storage.blob_discard(blob)
            existing = MonitoringBatch.objects.filter(monitor=monitor, sha256=sha256).first()
            if existing is None:
                raise
            return existing, False
        except BaseException:
            storage.blob_discard(blob)
            raise
        if check_on_commit and monitor.is_active:
            from monitoring.tasks import drift_check_queue

            transaction.on_commit(lambda: drift_check_queue(monitor.pk, batch.pk), robust=True)
    return batch, True


def monitoring_batch_ingest_path(*, actor: Any, monitor: DriftMonitor, path: str | Path,
                                 check_on_commit: bool = True) -> tuple[MonitoringBatch, bool]:
    """Ingest a batch from a file on the server (batch jobs, `manage.py run_drift_checks --batch`)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise errors.invalid(PATH_UNREADABLE.format(path=path), code="unreadable_batch", field="path") from exc
    return monitoring_batch_ingest(actor=actor, monitor=monitor, file=File(io.BytesIO(data), name="batch"),
                                   source=MonitoringBatch.Source.PATH, check_on_commit=check_on_commit)


def monitoring_batch_frame(batch: MonitoringBatch):
    """The batch's rows, read back from its stored bytes (checked against its sha256)."""
    import hashlib

    with storage.blob_open(batch.storage_key) as blob:
        data = blob.read()
    if hashlib.sha256(data).hexdigest() != batch.sha256:
        raise errors.ConflictError(f"The stored bytes of {batch} no longer match its sha256.",
                                   code="batch_corrupted")
    return table_read(io.BytesIO(data))[1]
