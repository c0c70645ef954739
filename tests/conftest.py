"""Shared fixtures: users with roles, an API client, and a flush of the audit queue into the chain."""

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from governance.audit import audit_log_sequence

# Chromium and a logged-in tab per user, for every browser test (tests/browser/fixtures.py says why).
pytest_plugins = ["tests.browser.fixtures"]


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def make_user(db):
    """make_user("alice", roles=["compliance_officer"]) -> a saved User with those groups."""

    def _make(username: str = "user", *, roles: tuple[str, ...] | list[str] = (), password: str = "pw-Attest-123",
              **extra) -> User:
        user = User.objects.create_user(username=username, password=password, **extra)
        if roles:
            user.groups.add(*Group.objects.filter(name__in=roles))
        return user

    return _make


@pytest.fixture
def audit_flush(db):
    """Chain queued audit entries now (in tests the surrounding transaction never commits)."""
    return audit_log_sequence


def pytest_report_header(config):
    from django.conf import settings

    db = settings.DATABASES["default"]
    broker = settings.CELERY_BROKER_URL or "none (Celery eager)"
    return [f"attest database: {db['ENGINE'].rsplit('.', 1)[-1]} {db.get('HOST') or db['NAME']}",
            f"attest broker: {broker}"]


@pytest.fixture
def celery_worker(transactional_db, settings):
    """A real Celery worker, in a thread, consuming from the configured broker.

    On the embedded default (no CELERY_BROKER_URL) it uses kombu's in-memory transport, so the
    test still goes through a broker and a worker; .ci/run's second pass uses Redis.
    """
    from celery.contrib.testing.worker import start_worker

    from mlops_site.celery import app

    broker = settings.CELERY_BROKER_URL or "memory://"
    previous = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    settings.CELERY_TASK_ALWAYS_EAGER = False
    _producer_pool_forget(app)
    app.conf.update(broker_url=broker, task_always_eager=False)
    try:
        app.control.purge()
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30) as worker:
            yield worker
    finally:
        app.conf.update(previous)
        _producer_pool_forget(app)


def _producer_pool_forget(app) -> None:
    """Drop the connection and producer pools cached for the broker URL of an earlier moment.

    An eager .delay() caches a pool for the broker configured then (none: amqp://localhost), and
    publishes would keep going there instead of to this worker's broker (Celery does the same
    after a fork).
    """
    from kombu import pools

    pools.reset()  # closes and forgets kombu's process-wide pools, keyed by broker URL
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def celery_eager(settings):
    """Run tasks in-process even when the suite runs against a real broker (.ci/run's second pass).

    For tests of what a task does, not of how it travels; those use `celery_worker`.
    """
    from mlops_site.celery import app

    previous = app.conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
