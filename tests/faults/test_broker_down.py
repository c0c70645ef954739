"""The broker is down when an approval is signed: the state change and its audit events still commit.

The signature is one transaction with its events (the audit queue is a table, chained in-process on
commit and by the beat sequencer, so it needs no broker). Notifications are queued after commit with
`on_commit(robust=True)`: a broker that does not answer must not turn a committed signature into an
error. What is not met yet (docs/security.md, Faults): that notification is then logged and lost;
there is no outbox that re-publishes it when the broker returns.
"""

import socket
from contextlib import contextmanager

import pytest
from rest_framework.test import APIClient

from governance.audit import AuditAction, audit_log_sequence
from governance.models import AuditEvent, AuditQueueEntry, Signature
from mlops_site.celery import app
from tests.governance.workflow_factories import PASSWORD, token_for
from tests.security.world import build_world

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def dead_broker(settings):
    """A Redis URL on a loopback port where nothing listens, with Celery not eager."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    from kombu import pools

    previous = {key: app.conf[key] for key in ("broker_url", "task_always_eager", "broker_connection_retry",
                                                "broker_connection_max_retries")}
    settings.CELERY_TASK_ALWAYS_EAGER = False
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
    app.conf.update(broker_url=f"redis://127.0.0.1:{port}/0", task_always_eager=False,
                    broker_connection_retry=False, broker_connection_max_retries=1)
    try:
        yield
    finally:
        app.conf.update(previous)
        pools.reset()
        app._pool = None
        app.amqp._producer_pool = None


def test_a_signature_commits_with_its_events_while_the_broker_is_down(settings):
    # given: the world built while the broker is up (its set-up queues evaluations), then the broker gone
    world = build_world()
    request = world.own.approval_request
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(world.users['model_validator'])}")
    # when
    with dead_broker(settings):
        response = client.post(f"/api/v1/approval-requests/{request.pk}/sign/",
                               {"password": PASSWORD, "meaning": "approve", "reason": "broker down"},
                               format="json")
    # then

    assert response.status_code == 201, response.content[:300]
    assert Signature.objects.filter(request=request).count() == 1
    audit_log_sequence()
    assert AuditQueueEntry.objects.count() == 0
    assert AuditEvent.objects.filter(action=AuditAction.APPROVAL_SIGNED, object_id=str(request.pk)).count() == 1
