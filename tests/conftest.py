"""Shared fixtures: users with roles, an API client, and a flush of the audit queue into the chain."""

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from governance.audit import audit_log_sequence


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
