"""Evaluations left `running` by a lost worker whose task never comes back are failed `worker_lost`.

tests/faults/test_worker_killed.py shows the redelivered task taking such an evaluation over;
this is the net under it, for a message the broker lost: the beat task fails evaluations without
progress for ATTEST_EVALUATION_STALE_MINUTES, audited, and a late attempt then stores nothing.
"""

import datetime as dt

import pytest
from django.conf import settings
from django.utils import timezone

from governance.audit import AuditAction
from governance.models import AuditEvent, AuditQueueEntry, Evaluation, Report
from governance.services.evaluations import _progress, evaluation_request, evaluation_run
from governance.tasks import evaluations_stale_fail_task
from tests.governance.evaluation_factories import credit_world

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _tasks_in_process(celery_eager):
    """The task under test runs in-process, also when the suite has a broker."""


def _running(credit, *, minutes_ago: float) -> Evaluation:
    """An evaluation as a dead attempt leaves it: `running`, last touched `minutes_ago`.

    The request's on-commit queueing never runs here (the test's transaction does not commit), so
    no attempt ever comes back for it: the lost message.
    """
    evaluation = evaluation_request(actor=credit.world.engineer, model_version=credit.version,
                                    dataset_version=credit.evaluation, bootstrap=0)
    then = timezone.now() - dt.timedelta(minutes=minutes_ago)
    Evaluation.objects.filter(pk=evaluation.pk).update(status="running", progress=40, started_at=then,
                                                       updated_at=then)
    return evaluation


def _failed_events(evaluation: Evaluation) -> list[str]:
    rows = [*AuditQueueEntry.objects.filter(action=AuditAction.EVALUATION_FAILED, object_id=str(evaluation.pk)),
            *AuditEvent.objects.filter(action=AuditAction.EVALUATION_FAILED, object_id=str(evaluation.pk))]
    return [row.payload_json for row in rows]


def test_an_evaluation_without_progress_past_the_limit_is_failed_worker_lost_once(settings):
    # given: one evaluation silent for longer than the limit, one that reported progress recently
    settings.ATTEST_EVALUATION_STALE_MINUTES = 30
    credit = credit_world()
    lost = _running(credit, minutes_ago=31)
    alive = _running(credit, minutes_ago=29)
    # when
    assert evaluations_stale_fail_task.apply().get() == 1
    assert evaluations_stale_fail_task.apply().get() == 0
    # then
    lost.refresh_from_db()
    alive.refresh_from_db()
    assert (lost.status, lost.failure_code) == ("failed", "worker_lost")
    assert "30 minutes" in lost.failure_reason and lost.finished_at is not None
    assert len(_failed_events(lost)) == 1 and '"worker_lost"' in _failed_events(lost)[0]
    assert (alive.status, alive.failure_code, _failed_events(alive)) == ("running", "", [])


def test_a_late_attempt_at_a_failed_stale_evaluation_stores_nothing(settings):
    settings.ATTEST_EVALUATION_STALE_MINUTES = 30
    lost = _running(credit_world(), minutes_ago=90)
    evaluations_stale_fail_task.apply()
    # when: the message was not lost after all, and comes back
    again = evaluation_run(evaluation_id=lost.pk)
    # then
    assert (again.status, again.failure_code) == ("failed", "worker_lost")
    assert Report.objects.filter(evaluation=lost).count() == 0


def test_progress_is_the_heartbeat_and_a_running_evaluation_that_reports_it_is_left_alone(settings):
    settings.ATTEST_EVALUATION_STALE_MINUTES = 30
    evaluation = _running(credit_world(), minutes_ago=90)
    # when: the computation reports progress (as fairness bootstrap and SHAP do)
    _progress(evaluation.pk, 0, 100)(0.5)
    # then
    assert evaluations_stale_fail_task.apply().get() == 0
    evaluation.refresh_from_db()
    assert (evaluation.status, evaluation.progress) == ("running", 50)


def test_the_beat_schedule_runs_the_sweep_with_a_limit_above_the_visibility_timeout():
    entry = settings.CELERY_BEAT_SCHEDULE["evaluations-stale"]
    assert entry["task"] == "governance.tasks.evaluations_stale_fail_task"
    visibility_s = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert settings.ATTEST_EVALUATION_STALE_MINUTES * 60 > visibility_s
