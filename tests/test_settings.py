"""The embedded default is configured the way the brief promises."""

import pytest
from django.conf import settings
from django.db import connection


@pytest.mark.django_db
def test_sqlite_runs_in_wal_mode_with_a_busy_timeout():
    # given / when
    with connection.cursor() as cursor:
        if connection.vendor != "sqlite":
            cursor.execute("SHOW server_version")
            assert cursor.fetchone()[0]
            return
        cursor.execute("PRAGMA journal_mode")
        journal = cursor.fetchone()[0]
        cursor.execute("PRAGMA busy_timeout")
        timeout_ms = cursor.fetchone()[0]
    # then
    assert journal == "wal"
    assert timeout_ms == 30_000


def test_celery_is_eager_exactly_when_no_broker_is_configured():
    assert settings.CELERY_TASK_ALWAYS_EAGER is (settings.CELERY_BROKER_URL is None)
