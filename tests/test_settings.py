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


def test_the_development_secret_key_is_refused_unless_debug_is_on():
    # The one literal secret in the code (bandit B105 is skipped in pyproject for its false positives
    # on token messages; this test is what stands in for it).
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE")}
    load = [sys.executable, "-c", "import mlops_site.settings as s; print(s.SECRET_KEY)"]
    refused = subprocess.run(load, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0 and "SECRET_KEY must be set when DEBUG is off" in refused.stderr
    allowed = subprocess.run(load, env={**env, "DEBUG": "1"}, capture_output=True, text=True, timeout=60, check=False)
    assert allowed.returncode == 0 and allowed.stdout.strip() == "django-insecure-attest-development-only"
