"""Drift checks: one result per monitor and batch, findings instead of crashes, alerts that repeat."""

import pytest
from django.db import transaction

from governance.audit import AuditAction
from governance.models import AuditQueueEntry
from monitoring.models import ComplianceAlert, DriftResult, MonitoringBatch
from monitoring.services.batches import monitoring_batch_ingest
from monitoring.services.checks import drift_check_run
from tests.monitoring.conftest import csv_file, sample


def ingest(shop, frame, name="batch.csv"):
    batch, _ = monitoring_batch_ingest(actor=shop.world.engineer, monitor=shop.monitor,
                                       file=csv_file(frame, name), check_on_commit=False)
    return batch


def events(action) -> int:
    return AuditQueueEntry.objects.filter(action=action).count()


def test_a_clean_batch_drifts_nowhere_and_raises_nothing(shop):
    # given
    batch = ingest(shop, sample(400, seed=4))
    # when
    result = drift_check_run(monitor=shop.monitor, batch=batch)
    # then
    assert result.dataset_drift is False
    assert result.drifted_features == []
    assert [f["feature"] for f in result.features] == ["age", "income", "colour"]
    assert result.severity == ""
    assert result.concept["breached"] == []
    assert not ComplianceAlert.objects.exists()
    assert events(AuditAction.DRIFT_CHECKED) == 1


def test_a_shifted_batch_raises_a_critical_alert_naming_the_shifted_features(shop):
    batch = ingest(shop, sample(400, seed=3, age_shift=15, colour_mix=(0.2, 0.3, 0.5)))
    result = drift_check_run(monitor=shop.monitor, batch=batch)
    assert result.dataset_drift is True
    assert result.drifted_features == ["age", "colour"]
    assert result.severity == "critical"
    alert = ComplianceAlert.objects.get(kind="data_drift")
    assert alert.severity == "critical"
    assert alert.status == "open"
    assert "age" in alert.title and "colour" in alert.title
    assert alert.evidence["batch_sha256"] == batch.sha256
    assert [f["feature"] for f in alert.evidence["features"]] == ["age", "colour"]
    assert alert.assigned_team == shop.world.team
    assert alert.last_result == result
    assert result.alerts == [{"id": alert.pk, "kind": "data_drift", "severity": "critical", "created": True}]


def test_running_the_same_check_twice_leaves_one_result_and_one_event(shop):
    batch = ingest(shop, sample(400, seed=3, age_shift=15, colour_mix=(0.2, 0.3, 0.5)))
    first = drift_check_run(monitor=shop.monitor, batch=batch)
    second = drift_check_run(monitor=shop.monitor, batch=batch)
    assert first.pk == second.pk
    assert DriftResult.objects.count() == 1
    assert events(AuditAction.DRIFT_CHECKED) == 1
    assert ComplianceAlert.objects.get().repeat_count == 1


def test_the_database_refuses_a_second_result_for_the_same_batch(shop):
    from django.db import IntegrityError

    batch = ingest(shop, sample(400, seed=4))
    result = drift_check_run(monitor=shop.monitor, batch=batch)
    with pytest.raises(IntegrityError), transaction.atomic():
        DriftResult.objects.create(monitor=shop.monitor, batch=batch, dataset_drift=False, drift_share=0,
                                   checked_at=result.checked_at)


def test_a_repeat_breach_counts_on_the_open_alert_instead_of_opening_another(shop):
    drifted = [ingest(shop, sample(400, seed=s, age_shift=15, colour_mix=(0.2, 0.3, 0.5))) for s in (3, 5, 6)]
    for batch in drifted:
        drift_check_run(monitor=shop.monitor, batch=batch)
    alert = ComplianceAlert.objects.get(kind="data_drift")
    assert alert.repeat_count == 3
    assert alert.evidence["batch_sha256"] == drifted[-1].sha256
    assert events(AuditAction.ALERT_RAISED) == 1
    assert events(AuditAction.ALERT_REPEATED) == 2


def test_a_batch_with_a_missing_column_is_a_data_quality_finding_not_a_crash(shop):
    # given: no `income`, an extra column, an unseen category
    frame = sample(400, seed=4).drop(columns=["income"]).assign(extra=1)
    frame.loc[:9, "colour"] = "Purple"
    batch = ingest(shop, frame)
    # when
    result = drift_check_run(monitor=shop.monitor, batch=batch)
    # then
    codes = {(f["code"], f["column"]) for f in batch.quality_findings}
    assert codes == {("missing_column", "income"), ("extra_column", "extra"), ("unseen_category", "colour")}
    unseen = next(f for f in batch.quality_findings if f["code"] == "unseen_category")
    assert unseen["values"] == ["Purple"] and unseen["rows"] == 10
    income = next(f for f in result.features if f["feature"] == "income")
    assert income["statistic"] is None and income["drifted"] is False
    quality = ComplianceAlert.objects.get(kind="data_quality")
    assert quality.severity == "warning"
    assert quality.evidence["findings"][0]["column"] == "income"


def test_wrong_dtypes_and_all_null_columns_are_reported(shop):
    frame = sample(300, seed=4)
    frame["age"] = frame["age"].astype(str)
    frame.loc[:4, "age"] = "unknown"
    frame["income"] = None
    batch = ingest(shop, frame)
    findings = {(f["code"], f["column"]): f for f in batch.quality_findings}
    assert findings[("dtype_mismatch", "age")]["values_not_numeric"] == 5
    assert ("all_null", "income") in findings
    result = drift_check_run(monitor=shop.monitor, batch=batch)
    assert next(f for f in result.features if f["feature"] == "age")["statistic"] is not None


def test_the_same_bytes_sent_twice_are_one_batch(shop):
    frame = sample(200, seed=4)
    batch, created = monitoring_batch_ingest(actor=shop.world.engineer, monitor=shop.monitor, file=csv_file(frame),
                                             check_on_commit=False)
    again, created_again = monitoring_batch_ingest(actor=shop.world.engineer, monitor=shop.monitor,
                                                   file=csv_file(frame), check_on_commit=False)
    assert (created, created_again) == (True, False)
    assert again.pk == batch.pk
    assert MonitoringBatch.objects.count() == 1
    assert events(AuditAction.MONITORING_BATCH_INGESTED) == 1


def test_a_batch_is_immutable(shop):
    batch = ingest(shop, sample(200, seed=4))
    batch.row_count = 1
    with pytest.raises(PermissionError):
        batch.save()
    with pytest.raises(PermissionError):
        batch.delete()


def test_performance_decay_on_labelled_batches_is_concept_drift(shop):
    batch = ingest(shop, sample(400, seed=4, predicted_flip=0.3))
    result = drift_check_run(monitor=shop.monitor, batch=batch)
    assert result.concept["breached"] == ["accuracy"]
    row = result.concept["metrics"][0]
    assert row["evaluation"] == 0.95 and row["batch"] == pytest.approx(0.7, abs=0.06)
    alert = ComplianceAlert.objects.get(kind="concept_drift")
    assert alert.severity == "critical"
    assert "accuracy" in alert.title


def test_fairness_worse_on_the_batch_than_in_the_report_is_fairness_drift(db):
    from django.db import transaction

    from governance.services.evaluations import evaluation_request, evaluation_run
    from monitoring.services.monitors import drift_monitor_create
    from registry import services as registry
    from tests.monitoring.conftest import Shop

    # given: a version whose fairness report (on colour) was computed from uploaded predictions
    shop = Shop(retrain_on_critical=False)
    w = shop.world
    evaluation_frame = sample(600, seed=8)
    evaluation_frame["y_pred"] = evaluation_frame.pop("predicted")
    with transaction.atomic():
        data = registry.dataset_version_register(
            actor=w.engineer, dataset=shop.reference.dataset, file=csv_file(evaluation_frame, "evaluation.csv"),
            target_column="approved", sensitive_columns=["colour"])
        digest = "fa" * 32
        version = registry.model_version_register(
            actor=w.engineer, model=w.model, artifact_uri=f"https://models.example.com/{digest}.skops",
            declared_sha256=digest, training_datasets=[shop.reference], evaluation_datasets=[data],
            feature_names=["age", "income", "colour"], task="classification")
        evaluation = evaluation_request(actor=w.engineer, model_version=version, dataset_version=data,
                                        sensitive_features=["colour"], bootstrap=0)
    assert evaluation_run(evaluation_id=evaluation.pk).status == "succeeded"
    monitor = drift_monitor_create(actor=w.engineer, model_version=version, environment="production",
                                   prediction_column="predicted", breach_severity="warning")
    # when: in production the model never approves the "Other" group
    batch_frame = sample(600, seed=9)
    batch_frame.loc[batch_frame["colour"] == "Other", "predicted"] = 0
    batch, _ = monitoring_batch_ingest(actor=w.engineer, monitor=monitor, file=csv_file(batch_frame),
                                       check_on_commit=False)
    result = drift_check_run(monitor=monitor, batch=batch)
    # then
    assert result.fairness["evaluated"] is True
    assert result.fairness["headline"] == "headline_excluding_small"
    assert "demographic_parity_ratio" in result.fairness["breached"]
    row = next(r for r in result.fairness["metrics"] if r["metric"] == "demographic_parity_ratio")
    assert row["report"] > 0.8 and row["batch"] == 0.0
    alert = ComplianceAlert.objects.get(monitor=monitor, kind="fairness_drift")
    assert alert.severity == "warning" and "demographic_parity_ratio" in alert.title


def test_a_batch_whose_stored_bytes_changed_is_refused_and_nothing_is_written(shop):
    from django.core.files.storage import default_storage

    from mlops_site.common.errors import ApplicationError

    batch = ingest(shop, sample(300, seed=4))
    with open(default_storage.path(batch.storage_key), "ab") as stored:
        stored.write(b"1,2,White,1,1\n")
    with pytest.raises(ApplicationError) as caught:
        drift_check_run(monitor=shop.monitor, batch=batch)
    assert (caught.value.code, caught.value.status) == ("batch_corrupted", 409)
    assert not DriftResult.objects.exists()
    assert events(AuditAction.DRIFT_CHECKED) == 0
