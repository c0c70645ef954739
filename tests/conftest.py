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
