"""Evaluations: the request validates the data against the model (400 naming the column, nothing stored),
the run loads only skops (a pickle is never executed), reports are immutable and audited with their hash."""

import hashlib
import json

import pytest
from django.core.files.storage import default_storage
from rest_framework.test import APIClient

from governance.audit import AuditAction
from governance.canonical import canonical_bytes
from governance.models import AuditEvent, AuditQueueEntry, Evaluation, Report, ReportChart
from governance.services.evaluations import evaluation_request, evaluation_run
from governance.tasks import evaluation_run_task
from registry import services as registry
from tests.governance.evaluation_factories import credit_world, dataset_version_upload
from tests.governance.workflow_factories import token_for
from tests.registry.factories import pickle_canary_bytes, upload

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _tasks_in_process(request):
    """Evaluations run in-process after commit, also when the suite has a broker (.ci/run's second pass);
    the worker test goes through the broker instead."""
    if "celery_worker" not in request.fixturenames:
        request.getfixturevalue("celery_eager")
EVALUATIONS = "/api/v1/evaluations/"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def stored_blobs() -> int:
    def walk(path: str) -> int:
        if not default_storage.exists(path or "."):
            return 0
        directories, files = default_storage.listdir(path)
        return len(files) + sum(walk(f"{path}/{d}" if path else d) for d in directories)
    return walk("")


def state() -> tuple[int, ...]:
    return (Evaluation.objects.count(), Report.objects.count(), ReportChart.objects.count(),
            AuditEvent.objects.count() + AuditQueueEntry.objects.count(), stored_blobs())


def audit_rows(action: str, object_id) -> list:
    """Events of `action` on the object, whether still queued or already chained."""
    return (list(AuditQueueEntry.objects.filter(action=action, object_id=str(object_id)))
            + list(AuditEvent.objects.filter(action=action, object_id=str(object_id))))


def body(credit, **extra) -> dict:
    return {"model_version": credit.version.pk, "dataset_version": credit.evaluation.pk, **extra}


# --- the request validates before anything is stored -----------------------------------------------

@pytest.mark.parametrize(("change", "extra", "code", "column"), [
    (lambda f: f.drop(columns=["income"]), {}, "missing_column", "income"),
    (lambda f: f, {"target_column": "outcome"}, "missing_column", "outcome"),
    (lambda f: f.assign(income=f["income"].map(lambda v: f"{v} EUR")), {}, "invalid_dtype", "income"),
    (lambda f: f.assign(sex=range(len(f))), {}, "invalid_dtype", "sex"),
    (lambda f: f.assign(approved=f["approved"].map({"yes": "granted", "no": "refused"})), {}, "target_mismatch",
     "approved"),
    (lambda f: f.assign(y_score="high"), {}, "invalid_dtype", "y_score"),
])
def test_bad_evaluation_data_is_a_400_naming_the_column_and_nothing_is_stored(change, extra, code, column):
    # given: evaluation data that does not fit the model, registered as a dataset version
    credit = credit_world()
    bad = dataset_version_upload(credit.world, change(credit.frame.copy()), name="bad-data",
                                 sensitive=[c for c in ("sex", "age") if c in change(credit.frame.copy())])
    client = client_for(credit.world.engineer)
    before = state()
    # when
    response = client.post(
        EVALUATIONS, {"model_version": credit.version.pk, "dataset_version": bad.pk,
                      "sensitive_features": ["age"], **extra}, format="json")
    # then
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert repr(column) in error["message"]
    assert column in error["fields"]
    assert state() == before


def test_a_missing_sensitive_column_is_named():
    credit = credit_world()
    client = client_for(credit.world.engineer)
    before = state()
    response = client.post(EVALUATIONS, body(credit, sensitive_features=["religion"]), format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "missing_column"
    assert response.json()["error"]["message"] == (
        "The evaluation data has no column 'religion', which is a sensitive feature to report on.")
    assert state() == before


# --- a request and its run -------------------------------------------------------------------------

def test_request_runs_after_commit_and_stores_immutable_audited_reports(django_capture_on_commit_callbacks):
    # given
    credit = credit_world()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(credit.world.engineer).post(EVALUATIONS, body(credit, bootstrap=50), format="json")
    # then
    assert response.status_code == 201, response.content
    evaluation = Evaluation.objects.get(pk=response.json()["id"])
    assert (evaluation.status, evaluation.progress, evaluation.failure_code) == ("succeeded", 100, "")
    assert evaluation.sensitive_features == ["sex", "age"]
    assert evaluation.positive_label == "yes"
    reports = {r.kind: r for r in evaluation.reports.all()}
    assert sorted(reports) == ["explainability", "fairness"]
    for report in reports.values():
        assert report.sha256 == hashlib.sha256(canonical_bytes(report.results)).hexdigest()
        assert report.artifact_sha256 == credit.version.artifact_sha256
        assert report.dataset_sha256 == credit.evaluation.sha256
        assert report.library_versions
        entries = audit_rows(AuditAction.REPORT_CREATED, report.pk)
        assert len(entries) == 1
        assert json.loads(entries[0].payload_json)["after"]["sha256"] == report.sha256
        for chart in report.charts.all():
            assert bytes(chart.png).startswith(PNG_SIGNATURE)
            assert chart.sha256 == hashlib.sha256(bytes(chart.png)).hexdigest()
    with pytest.raises(PermissionError):
        reports["fairness"].save()
    with pytest.raises(PermissionError):
        reports["fairness"].delete()
    # the API carries the results and the chart URLs, each a PNG
    detail = client_for(credit.world.engineer).get(f"{EVALUATIONS}{evaluation.pk}/").json()
    assert detail["fairness"]["features"]["sex"]["groups"][0]["group"] == "female"
    assert detail["explainability"]["explainer"] == "linear"
    assert detail["charts"] and all(url.endswith(".png") for url in detail["charts"])
    chart = client_for(credit.world.auditor).get(detail["charts"][0])
    assert chart.status_code == 200 and chart["Content-Type"] == "image/png"
    assert b"".join(chart).startswith(PNG_SIGNATURE)


def test_a_second_run_of_a_finished_evaluation_does_nothing(django_capture_on_commit_callbacks):
    credit = credit_world()
    with django_capture_on_commit_callbacks(execute=True):
        evaluation = evaluation_request(actor=credit.world.engineer, model_version=credit.version,
                                        dataset_version=credit.evaluation, bootstrap=0)
    before = state()
    assert evaluation_run_task.apply((evaluation.pk,)).get() == "succeeded"
    assert evaluation_run(evaluation_id=evaluation.pk).status == "succeeded"
    assert state() == before


def test_a_recompute_is_a_new_evaluation_and_new_reports(django_capture_on_commit_callbacks):
    credit = credit_world()
    with django_capture_on_commit_callbacks(execute=True):
        first = evaluation_request(actor=credit.world.engineer, model_version=credit.version,
                                   dataset_version=credit.evaluation, bootstrap=0)
    with django_capture_on_commit_callbacks(execute=True):
        second = evaluation_request(actor=credit.world.engineer, model_version=credit.version,
                                    dataset_version=credit.evaluation, bootstrap=0)
    assert first.pk != second.pk
    assert Report.objects.filter(evaluation=first).count() == Report.objects.filter(evaluation=second).count() == 2
    fairness = Report.objects.filter(kind="fairness")
    assert len({r.sha256 for r in fairness}) == 1  # same inputs, same seed: the same results


# --- artifacts Attest cannot load -------------------------------------------------------------------

def test_a_pickled_model_gets_unsupported_artifact_and_is_never_unpickled(tmp_path, django_capture_on_commit_callbacks):
    # given: a version whose artifact is a pickle that creates a canary file when unpickled
    credit = credit_world()
    canary = tmp_path / "canary"
    version = registry.model_version_register(
        actor=credit.world.engineer, model=credit.world.model,
        artifact=upload(pickle_canary_bytes(canary), "model.pkl"), task="classification",
        evaluation_datasets=[credit.evaluation])
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(credit.world.engineer).post(
            EVALUATIONS, {"model_version": version.pk, "dataset_version": credit.evaluation.pk}, format="json")
    # then
    assert response.status_code == 201, response.content
    evaluation = Evaluation.objects.get(pk=response.json()["id"])
    assert evaluation.status == "failed"
    assert evaluation.failure_code == "unsupported_artifact"
    assert "pickle format are never loaded" in evaluation.failure_reason
    assert not evaluation.reports.exists()
    assert not canary.exists()
    assert len(audit_rows(AuditAction.EVALUATION_FAILED, evaluation.pk)) == 1
    detail = client_for(credit.world.engineer).get(f"{EVALUATIONS}{evaluation.pk}/").json()
    assert (detail["status"], detail["failure_code"], detail["fairness"]) == ("failed", "unsupported_artifact", None)


def test_uploaded_predictions_evaluate_a_model_attest_cannot_run(tmp_path, django_capture_on_commit_callbacks):
    # given: a pickled model and evaluation data carrying its predictions and scores
    credit = credit_world()
    canary = tmp_path / "canary"
    version = registry.model_version_register(
        actor=credit.world.engineer, model=credit.world.model,
        artifact=upload(pickle_canary_bytes(canary), "model.pkl"), task="classification")
    frame = credit.frame.copy()
    frame["y_pred"] = frame["approved"].where(frame.index % 4 != 0, "no")
    frame["y_score"] = (frame["y_pred"] == "yes") * 0.7 + 0.1
    data = dataset_version_upload(credit.world, frame, name="with-predictions")
    # when
    with django_capture_on_commit_callbacks(execute=True):
        evaluation = evaluation_request(actor=credit.world.engineer, model_version=version, dataset_version=data,
                                        bootstrap=0)
    # then
    evaluation.refresh_from_db()
    assert (evaluation.status, evaluation.predictions) == ("succeeded", "uploaded")
    assert [r.kind for r in evaluation.reports.all()] == ["fairness"]
    fairness = evaluation.reports.get().results
    assert fairness["predictions"] == "uploaded"
    assert fairness["overall"]["accuracy"] == pytest.approx((frame["y_pred"] == frame["approved"]).mean(), abs=1e-12)
    assert not canary.exists()


# --- who may ask -----------------------------------------------------------------------------------

def test_the_auditor_reads_but_cannot_request_and_another_team_sees_nothing(django_capture_on_commit_callbacks):
    credit = credit_world()
    other = credit_world(prefix="other-")
    auditor, stranger = client_for(credit.world.auditor), client_for(other.world.engineer)
    before = state()
    assert auditor.post(EVALUATIONS, body(credit), format="json").status_code == 403
    response = stranger.post(EVALUATIONS, body(credit), format="json")
    assert response.status_code == 404
    assert state() == before
    validator = client_for(credit.world.validator)
    assert validator.post(EVALUATIONS, body(credit), format="json").status_code == 403  # reviews, does not produce
    with django_capture_on_commit_callbacks(execute=True):
        created = client_for(credit.world.scientist).post(EVALUATIONS, body(credit, bootstrap=0), format="json")
    assert created.status_code == 201
    pk = created.json()["id"]
    assert client_for(other.world.engineer).get(f"{EVALUATIONS}{pk}/").status_code == 404
    assert client_for(other.world.engineer).get(EVALUATIONS).json()["count"] == 0
    report = Report.objects.filter(evaluation_id=pk).first()
    assert client_for(other.world.engineer).get(f"/api/v1/reports/{report.pk}/").status_code == 404
    assert client_for(credit.world.auditor).get(f"/api/v1/reports/{report.pk}/").status_code == 200


def test_the_task_runs_on_a_real_worker(celery_worker):
    """Through the configured broker (Redis in .ci/run's second pass, in-memory otherwise) and a worker."""
    from django.db import transaction

    credit = credit_world(prefix="w-")
    with transaction.atomic():
        evaluation = evaluation_request(actor=credit.world.engineer, model_version=credit.version,
                                        dataset_version=credit.evaluation, bootstrap=0)
    # the request committed; the worker picked the task up after commit
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        evaluation.refresh_from_db()
        if evaluation.finished:
            break
        time.sleep(0.5)
    assert evaluation.status == "succeeded", (evaluation.failure_code, evaluation.failure_reason)
    assert sorted(evaluation.reports.values_list("kind", flat=True)) == ["explainability", "fairness"]
