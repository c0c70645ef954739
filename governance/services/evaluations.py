"""Evaluations: request one (validated against the data and the model), run it (fairness, explainability).

`evaluation_request` checks everything it can before anything is stored: the dataset is
readable, the columns the model needs, the target and the sensitive columns exist with usable
dtypes, and the target's values are the model's classes. A refusal is a 400 naming the column.
The computation is queued after commit (Celery; eager in the embedded default).

`evaluation_run` loads the model only through registry.loader (skops with the server's trusted
types). A model that cannot be loaded safely is never unpickled: its evaluation fails with
`unsupported_artifact`, unless predictions were uploaded with the data (`y_pred`, `y_score`), in
which case the fairness report is computed from them (explainability needs the model). Reports
and charts are written in one transaction with one audit event per report carrying its sha256.
"""

import datetime as dt
import hashlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from governance.audit import AuditAction, audit_event_record
from governance.canonical import canonical_bytes, jsonable
from governance.models import Evaluation, Report, ReportChart
from governance.outbox import outbox_enqueue
from governance.permissions import Action, user_can
from mlops_site.common.errors import ApplicationError, PermissionDeniedError
from registry import loader, storage
from registry.models import DatasetVersion, ModelVersion

logger = logging.getLogger(__name__)

Y_PRED, Y_SCORE = "y_pred", "y_score"
SYSTEM_ACTOR = "attest.evaluations"
TASKS = ("classification", "regression")

MISSING_COLUMN = "The evaluation data has no column {column!r}, which {why}."
INVALID_DTYPE = "Column {column!r} is {actual}, but {why}."
TARGET_MISMATCH = ("Column {column!r} (the target) holds {values}, which the model does not predict; "
                   "its classes are {classes}.")
NOT_BINARY = "Column {column!r} (the target) has {count} classes; fairness metrics need a binary target."
POSITIVE_UNKNOWN = "The positive label {label!r} is not one of the target's values {values}."
NO_SENSITIVE = "Name the sensitive features: the dataset version declares none."
UNREADABLE = "The dataset version cannot be read: {why}."
TASK_UNKNOWN = "The model version does not say whether it is a classifier or a regressor, and Attest cannot load it."
FORBIDDEN = "{user} may not request an evaluation of {version}."
OPTION_RANGE = "{name} must be an integer from {low} to {high}."
UNSUPPORTED = "{why} Upload predictions with the data (columns y_pred and, optionally, y_score) to evaluate it."
EVALUATION_RUN_TASK = "governance.tasks.evaluation_run_task"


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def shap_max_rows() -> int:
    """ATTEST_SHAP_MAX_ROWS: the most rows a SHAP explanation covers (a seeded sample beyond it)."""
    return _setting("ATTEST_SHAP_MAX_ROWS", 1000)


def _column_error(message: str, column: str, code: str) -> ApplicationError:
    return ApplicationError(message, code=code, fields={column: [message]})


# --- reading the data ----------------------------------------------------------------------------

def dataset_frame(dataset_version: DatasetVersion, *, verify: bool = False) -> pd.DataFrame:
    """The rows of a dataset version (CSV or Parquet) from content-addressed storage."""
    if not dataset_version.storage_key:
        raise ApplicationError(UNREADABLE.format(why="Attest holds no copy of it"), code="unreadable_dataset",
                               fields={"dataset_version": ["no stored copy"]})
    with storage.blob_open(dataset_version.storage_key) as blob:
        data = blob.read()
    if verify and hashlib.sha256(data).hexdigest() != dataset_version.sha256:
        raise ApplicationError(UNREADABLE.format(why="the stored bytes no longer match its sha256"),
                               code="dataset_corrupted")
    try:
        if dataset_version.format == DatasetVersion.Format.PARQUET:
            return pd.read_parquet(io.BytesIO(data))
        return pd.read_csv(io.BytesIO(data), encoding="utf-8")
    except Exception as exc:  # noqa: BLE001 - any parser failure is the same refusal
        raise ApplicationError(UNREADABLE.format(why=str(exc)[:200]), code="unreadable_dataset",
                               fields={"dataset_version": [str(exc)[:200]]}) from exc


def _numeric(dtype: Any) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _dtype_numeric(text: str) -> bool | None:
    text = (text or "").lower()
    if text.startswith(("int", "uint", "float", "double", "decimal")):
        return True
    if text.startswith(("object", "str", "string", "large_string", "utf8", "category", "dictionary")):
        return False
    return None


# --- the plan: what an evaluation will compute, checked before it is stored ------------------------

@dataclass
class EvaluationPlan:
    task: str
    target: str
    sensitive: list[str]
    positive_label: Any
    predictions: str
    features: list[str] = field(default_factory=list)
    model: Any = None
    unsupported: str = ""


def _model_load(model_version: ModelVersion) -> tuple[Any, str]:
    """(model, "") or (None, why it cannot be loaded safely). Only registry.loader loads artifacts."""
    try:
        return loader.model_version_load(model_version), ""
    except ApplicationError as exc:
        return None, exc.message


def _model_features(model: Any, model_version: ModelVersion) -> list[str]:
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    return [str(n) for n in (model_version.feature_names or [])]


def _training_dtypes(model_version: ModelVersion) -> dict[str, bool]:
    """Column -> numeric? as registered with the version's training data (the reference for dtypes)."""
    known: dict[str, bool] = {}
    for dataset in model_version.training_datasets.all():
        for column in dataset.schema:
            numeric = _dtype_numeric(column.get("dtype", ""))
            if numeric is not None:
                known.setdefault(column["name"], numeric)
    return known


def evaluation_plan(*, model_version: ModelVersion, dataset_version: DatasetVersion, frame: pd.DataFrame,
                    sensitive_features: list[str] | None = None, positive_label: Any = None,
                    model: Any = None, unsupported: str | None = None, target_column: str = "") -> EvaluationPlan:
    """Check the data against the model; raises a 400 naming the first offending column."""
    if unsupported is None:
        model, unsupported = _model_load(model_version)
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    target = target_column or dataset_version.target_column
    if not target:
        raise _column_error("The dataset version declares no target column.", "target_column", "missing_column")
    if target not in columns:
        raise _column_error(MISSING_COLUMN.format(column=target, why="is the dataset version's target"),
                            target, "missing_column")
    sensitive = list(dict.fromkeys(sensitive_features or dataset_version.sensitive_columns or []))
    if not sensitive:
        raise ApplicationError(NO_SENSITIVE, code="sensitive_features_required",
                               fields={"sensitive_features": [NO_SENSITIVE]})
    for column in sensitive:
        if column not in columns:
            raise _column_error(MISSING_COLUMN.format(column=column, why="is a sensitive feature to report on"),
                                column, "missing_column")

    if model is not None:
        from sklearn.base import is_classifier

        task = "classification" if is_classifier(model) else "regression"
        predictions = Evaluation.Predictions.MODEL
        features = _model_features(model, model_version)
        expected = _training_dtypes(model_version)
        for column in features:
            if column not in columns:
                raise _column_error(MISSING_COLUMN.format(column=column, why="the model takes as input"),
                                    column, "missing_column")
            if column in expected and expected[column] != _numeric(frame[column].dtype):
                kind = "numeric" if expected[column] else "text/categorical"
                raise _column_error(INVALID_DTYPE.format(
                    column=column, actual=str(frame[column].dtype),
                    why=f"the model was trained on it as {kind}"), column, "invalid_dtype")
    else:
        if Y_PRED not in columns:
            # Accepted: the run records `unsupported_artifact` (never an unpickle).
            predictions, features = Evaluation.Predictions.MODEL, []
        else:
            predictions, features = Evaluation.Predictions.UPLOADED, []
        task = model_version.task if model_version.task in TASKS else ""
        if not task:
            if predictions == Evaluation.Predictions.MODEL:
                task = "classification"
            else:
                raise ApplicationError(TASK_UNKNOWN, code="task_unknown", fields={"task": [TASK_UNKNOWN]})
    if Y_SCORE in columns and not _numeric(frame[Y_SCORE].dtype):
        raise _column_error(INVALID_DTYPE.format(column=Y_SCORE, actual=str(frame[Y_SCORE].dtype),
                                                 why="scores must be numbers"), Y_SCORE, "invalid_dtype")

    truth = frame[target]
    if truth.isna().any():
        raise _column_error(f"Column {target!r} (the target) has missing values.", target, "invalid_dtype")
    if task == "regression":
        for column in [target] + ([Y_PRED] if predictions == Evaluation.Predictions.UPLOADED else []):
            if not _numeric(frame[column].dtype):
                raise _column_error(INVALID_DTYPE.format(column=column, actual=str(frame[column].dtype),
                                                         why="a regression target is a number"),
                                    column, "invalid_dtype")
        return EvaluationPlan(task=task, target=target, sensitive=sensitive, positive_label=None,
                              predictions=predictions, features=features, model=model, unsupported=unsupported)

    values = sorted({v.item() if hasattr(v, "item") else v for v in truth.unique()}, key=str)
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(model, "classes_", [])] if model is not None \
        else []
    if model is not None:
        unknown = [v for v in values if v not in classes]
        if unknown:
            raise _column_error(TARGET_MISMATCH.format(column=target, values=", ".join(map(repr, unknown[:5])),
                                                       classes=", ".join(map(repr, classes))),
                                target, "target_mismatch")
        if len(classes) > 2:
            raise _column_error(NOT_BINARY.format(column=target, count=len(classes)), target, "unsupported_task")
    elif len(values) > 2:
        raise _column_error(NOT_BINARY.format(column=target, count=len(values)), target, "unsupported_task")
    labels = classes or values
    if positive_label is None:
        # scikit-learn's positive class: the second of the sorted classes (predict_proba[:, 1]).
        positive_label = labels[1] if len(labels) > 1 else labels[0]
    elif positive_label not in labels:
        matches = [v for v in labels if str(v) == str(positive_label)]
        if not matches:
            message = POSITIVE_UNKNOWN.format(label=positive_label, values=", ".join(map(repr, labels)))
            raise ApplicationError(message, code="validation_error", fields={"positive_label": [message]})
        positive_label = matches[0]
    return EvaluationPlan(task=task, target=target, sensitive=sensitive, positive_label=positive_label,
                          predictions=predictions, features=features, model=model, unsupported=unsupported)


def evaluation_request_allowed(user: Any, model_version: ModelVersion) -> bool:
    """Who may request an evaluation: whoever may register versions of the model (`registry.write` on it:
    its team's data scientists, ML engineers and CI identities, administrators). Never an auditor."""
    return user_can(user, Action.REGISTRY_WRITE, model_version)


def _option(value: Any, *, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        message = OPTION_RANGE.format(name=name, low=low, high=high)
        raise ApplicationError(message, code="validation_error", fields={name: [message]})
    return value


def evaluation_request(*, actor: Any, model_version: ModelVersion, dataset_version: DatasetVersion,
                       sensitive_features: list[str] | None = None, positive_label: Any = None,
                       bootstrap: int | None = None, min_group_size: int | None = None,
                       seed: int | None = None, target_column: str = "") -> Evaluation:
    """Validate and queue the evaluation of `model_version` on `dataset_version`.

    Refusals (nothing stored): 403 `permission_denied`; 400 `missing_column`, `invalid_dtype`,
    `target_mismatch`, `unsupported_task`, `unreadable_dataset`, `sensitive_features_required`,
    `validation_error` — the offending column in the message and in `fields`.
    """
    if actor is not None and not evaluation_request_allowed(actor, model_version):
        raise PermissionDeniedError(FORBIDDEN.format(user=actor, version=model_version), code="permission_denied")
    options = {
        "bootstrap": _option(bootstrap, name="bootstrap", default=_setting("ATTEST_FAIRNESS_BOOTSTRAP", 200),
                             low=0, high=10_000),
        "min_group_size": _option(min_group_size, name="min_group_size", default=30, low=1, high=10**9),
        "seed": _option(seed, name="seed", default=0, low=0, high=2**32 - 1),
        "shap_max_rows": shap_max_rows(),
    }
    frame = dataset_frame(dataset_version)
    plan = evaluation_plan(model_version=model_version, dataset_version=dataset_version, frame=frame,
                           sensitive_features=sensitive_features, positive_label=positive_label,
                           target_column=target_column)
    with transaction.atomic():
        evaluation = Evaluation(
            model_version=model_version, dataset_version=dataset_version, sensitive_features=plan.sensitive,
            task=plan.task, target_column=plan.target, positive_label=jsonable(plan.positive_label),
            predictions=plan.predictions, options=options, requested_by=actor if actor is not None else None,
        )
        evaluation.full_clean()
        evaluation.save()
        audit_event_record(
            actor=actor, system=SYSTEM_ACTOR, action=AuditAction.EVALUATION_REQUESTED, target=evaluation,
            after={"status": evaluation.status, "model_version": model_version.pk,
                   "artifact_sha256": model_version.artifact_sha256, "dataset_version": dataset_version.pk,
                   "dataset_sha256": dataset_version.sha256, "sensitive_features": plan.sensitive,
                   "task": plan.task, "predictions": plan.predictions, "options": options},
        )
        # The run is an outbox row of this transaction: with the broker down the request still
        # commits and the relay publishes the run when the broker returns (docs/deploy.md).
        outbox_enqueue(EVALUATION_RUN_TASK, evaluation.pk)
    return evaluation


# --- running ---------------------------------------------------------------------------------------

class EvaluationFailed(Exception):
    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


def _progress(evaluation_id: int, start: int, end: int) -> Callable[..., None]:
    """A callback mapping a computation's progress (a fraction, or done and total) onto start..end %."""
    def report(done: float, total: float | None = None) -> None:
        fraction = float(done) / float(total) if total else float(done)
        value = int(start + (end - start) * max(0.0, min(1.0, fraction)))
        # updated_at is the heartbeat evaluations_stale_fail reads.
        Evaluation.objects.filter(pk=evaluation_id, status=Evaluation.Status.RUNNING,
                                  progress__lt=value).update(progress=value, updated_at=timezone.now())
    return report


def report_sha256(results: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a report's results (what audit events and approvals bind)."""
    return hashlib.sha256(canonical_bytes(jsonable(results))).hexdigest()


def _fairness(plan: EvaluationPlan, frame: pd.DataFrame, evaluation: Evaluation,
              predicted: np.ndarray, scores: np.ndarray | None) -> dict[str, Any]:
    from governance.fairness import FairnessInputError, fairness_compute

    try:
        return fairness_compute(
            y_true=frame[plan.target].to_numpy(), y_pred=predicted, sensitive=frame[plan.sensitive],
            y_score=scores, task=plan.task, positive_label=plan.positive_label if plan.task == "classification"
            else 1, min_group_size=evaluation.options.get("min_group_size", 30),
            bootstrap=evaluation.options.get("bootstrap", 0), seed=evaluation.options.get("seed", 0),
            progress=_progress(evaluation.pk, 20, 55),
        )
    except FairnessInputError as exc:
        raise EvaluationFailed("invalid_evaluation_data", str(exc)) from exc


def _predictions(plan: EvaluationPlan, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    if plan.predictions == Evaluation.Predictions.UPLOADED:
        scores = frame[Y_SCORE].to_numpy(dtype=float) if Y_SCORE in frame.columns else None
        return frame[Y_PRED].to_numpy(), scores
    inputs = frame[plan.features]
    predicted = plan.model.predict(inputs)
    scores = None
    if plan.task == "classification" and hasattr(plan.model, "predict_proba"):
        classes = list(plan.model.classes_)
        scores = plan.model.predict_proba(inputs)[:, classes.index(plan.positive_label)]
    return predicted, scores


def _fairness_charts(results: dict[str, Any], sensitive: list[str]) -> list[tuple[str, str, bytes]]:
    from governance import charts  # matplotlib: imported by the worker that draws, not by every process

    made = [("fairness-headline", "Headline fairness metrics with bootstrap intervals",
             charts.fairness_headline_chart(results=results))]
    for feature in sensitive:
        if feature in results.get("features", {}):
            made.append((f"fairness-{slugify(feature)}"[:100], f"Metrics by {feature}",
                         charts.fairness_groups_chart(results=results, feature=feature)))
    return made


def _explain(plan: EvaluationPlan, frame: pd.DataFrame, evaluation: Evaluation,
             fairness: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str, bytes]]]:
    from governance import charts
    from governance.explain import explain_compute, group_labels

    sensitive = frame[plan.sensitive]
    explanation = explain_compute(
        model=plan.model, features=frame[plan.features], sensitive=sensitive, task=plan.task,
        positive_label=plan.positive_label, group_labels=group_labels(sensitive, fairness.get("binning") or {}),
        max_rows=evaluation.options.get("shap_max_rows", shap_max_rows()),
        background_rows=_setting("ATTEST_SHAP_BACKGROUND_ROWS", 100), top_k=_setting("ATTEST_SHAP_TOP_K", 5),
        proxy_threshold=float(getattr(settings, "ATTEST_PROXY_ASSOCIATION_MIN", 0.5)),
        seed=evaluation.options.get("seed", 0), progress=_progress(evaluation.pk, 60, 85),
    )
    made = [
        ("shap-importance", "Global SHAP importance", charts.shap_bar_chart(results=explanation.results)),
        ("shap-beeswarm", "SHAP beeswarm", charts.shap_beeswarm_chart(
            values=explanation.values, data=explanation.data, features=explanation.features,
            results=explanation.results)),
    ]
    return explanation.results, made


def _locked(evaluations):
    """The evaluation row locked, and only it: FOR UPDATE over a join would also lock the model version
    (and dataset version) rows, holding up every insert that references them (other evaluations,
    reports, approvals) for as long as the transaction lasts."""
    return evaluations.select_for_update(of=("self",))


def _fail(evaluation_id: int, code: str, reason: str) -> Evaluation:
    with transaction.atomic():
        evaluation = _locked(Evaluation.objects.select_related("model_version")).get(pk=evaluation_id)
        if evaluation.finished:
            return evaluation
        _failed(evaluation, code, reason)
    return evaluation


def _failed(evaluation: Evaluation, code: str, reason: str) -> None:
    """Mark a locked, unfinished evaluation failed with its audit event (inside the caller's transaction)."""
    before = evaluation.status
    evaluation.status, evaluation.failure_code = Evaluation.Status.FAILED, code
    evaluation.failure_reason, evaluation.finished_at = reason[:2000], timezone.now()
    evaluation.save(update_fields=["status", "failure_code", "failure_reason", "finished_at", "updated_at"])
    audit_event_record(actor=None, system=SYSTEM_ACTOR, action=AuditAction.EVALUATION_FAILED, target=evaluation,
                       before={"status": before}, after={"status": evaluation.status, "code": code},
                       reason=evaluation.failure_reason)


STALE_CODE = "worker_lost"
STALE_REASON = ("The evaluation made no progress for {minutes} minutes: the worker computing it was lost and "
                "its task did not come back. Request the evaluation again.")


def evaluation_stale_minutes() -> int:
    """ATTEST_EVALUATION_STALE_MINUTES: how long a `running` evaluation may go without progress.

    Longer than the broker's visibility timeout (a task whose whole worker died is redelivered
    after it) plus the longest computation between two progress updates.
    """
    return _setting("ATTEST_EVALUATION_STALE_MINUTES", 120)


def evaluations_stale_fail(*, now: Any = None) -> list[int]:
    """Fail every evaluation left `running` with no progress for `evaluation_stale_minutes()`; returns their ids.

    The safety net under acks_late: a pool process that dies has its task requeued at once, and a
    whole worker that dies has it redelivered after the visibility timeout, but a message the
    broker lost (a Redis restart without persistence) never comes back, and its evaluation would
    stay `running` for ever. Each is failed with `worker_lost` and EVALUATION_FAILED in its own
    transaction, re-checked under the row lock; a late attempt then finds it finished and stores
    nothing.
    """
    minutes = evaluation_stale_minutes()
    cutoff = (now or timezone.now()) - dt.timedelta(minutes=minutes)
    failed = []
    for pk in Evaluation.objects.filter(status=Evaluation.Status.RUNNING, updated_at__lt=cutoff).values_list(
            "pk", flat=True):
        with transaction.atomic():
            evaluation = _locked(Evaluation.objects.filter(pk=pk)).first()
            if evaluation is None or evaluation.status != Evaluation.Status.RUNNING or evaluation.updated_at >= cutoff:
                continue  # finished, or moved on, since the look
            _failed(evaluation, STALE_CODE, STALE_REASON.format(minutes=minutes))
        logger.warning("evaluation %s failed: no progress for %s minutes (worker lost)", pk, minutes)
        failed.append(pk)
    return failed


def evaluation_run(*, evaluation_id: int) -> Evaluation:
    """Compute an evaluation's reports and store them; a finished evaluation is returned untouched."""
    with transaction.atomic():
        evaluation = _locked(Evaluation.objects.select_related("model_version", "dataset_version")).get(
            pk=evaluation_id)
        if evaluation.finished:
            return evaluation  # a redelivery of work already committed: nothing to do twice
        if evaluation.status == Evaluation.Status.RUNNING:
            # The attempt that set it died before storing anything (its worker was lost and the broker
            # redelivered the task, acks_late + reject_on_worker_lost): start again from the stored inputs.
            logger.warning("evaluation %s was left running since %s: taking it over", evaluation.pk,
                           evaluation.started_at)
        evaluation.status, evaluation.started_at, evaluation.progress = Evaluation.Status.RUNNING, timezone.now(), 5
        evaluation.save(update_fields=["status", "started_at", "progress", "updated_at"])
    model_version, dataset_version = evaluation.model_version, evaluation.dataset_version
    try:
        frame = dataset_frame(dataset_version, verify=True)
        model, unsupported = (None, "") if evaluation.predictions == Evaluation.Predictions.UPLOADED \
            else _model_load(model_version)
        if evaluation.predictions == Evaluation.Predictions.MODEL and model is None:
            raise EvaluationFailed("unsupported_artifact", UNSUPPORTED.format(why=unsupported))
        plan = evaluation_plan(model_version=model_version, dataset_version=dataset_version, frame=frame,
                               sensitive_features=evaluation.sensitive_features,
                               positive_label=evaluation.positive_label, model=model, unsupported=unsupported,
                               target_column=evaluation.target_column)
        _progress(evaluation.pk, 0, 100)(0.1)
        predicted, scores = _predictions(plan, frame)
        fairness = _fairness(plan, frame, evaluation, predicted, scores)
        fairness["predictions"] = plan.predictions
        made = {"fairness": (fairness, _fairness_charts(fairness, plan.sensitive))}
        if plan.model is not None:
            made["explainability"] = _explain(plan, frame, evaluation, fairness)
    except EvaluationFailed as failure:
        return _fail(evaluation_id, failure.code, failure.reason)
    except ApplicationError as refusal:
        return _fail(evaluation_id, refusal.code, refusal.message)
    except Exception as exc:  # noqa: BLE001 - a computation error is the evaluation's outcome, not a crash
        logger.exception("evaluation %s failed", evaluation_id)
        return _fail(evaluation_id, "evaluation_error", f"{type(exc).__name__}: {exc}")
    return _reports_store(evaluation_id, made)


def _reports_store(evaluation_id: int, made: dict[str, tuple[dict[str, Any], list]]) -> Evaluation:
    with transaction.atomic():
        evaluation = _locked(Evaluation.objects.select_related("model_version", "dataset_version")).get(
            pk=evaluation_id)
        if evaluation.finished:
            return evaluation
        for kind, (results, pictures) in made.items():
            results = jsonable(results)
            versions = results.get("library_versions") or {}
            report = Report(kind=kind, evaluation=evaluation, model_version=evaluation.model_version,
                            results=results, sha256=report_sha256(results),
                            artifact_sha256=evaluation.model_version.artifact_sha256,
                            dataset_sha256=evaluation.dataset_version.sha256, library_versions=versions)
            report.save()
            for name, title, png in pictures:
                ReportChart(report=report, name=name, title=title, png=png,
                            sha256=hashlib.sha256(png).hexdigest()).save()
            audit_event_record(
                actor=None, system=SYSTEM_ACTOR, action=AuditAction.REPORT_CREATED, target=report,
                after={"kind": kind, "sha256": report.sha256, "evaluation": evaluation.pk,
                       "model_version": evaluation.model_version_id, "artifact_sha256": report.artifact_sha256,
                       "dataset_sha256": report.dataset_sha256,
                       "charts": {name: hashlib.sha256(png).hexdigest() for name, _, png in pictures}},
                payload={"requested_by": evaluation.requested_by_id},
            )
        evaluation.status, evaluation.progress = Evaluation.Status.SUCCEEDED, 100
        evaluation.finished_at = timezone.now()
        evaluation.save(update_fields=["status", "progress", "finished_at", "updated_at"])
    return evaluation
