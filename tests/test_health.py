"""The probes of CONTRACT.md: /healthz while the process serves, /readyz when its dependencies answer."""

import pytest
from django.conf import settings


def test_healthz_answers_without_authentication_or_database(client):
    # when
    response = client.get("/healthz")
    # then
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_ready_when_the_database_answers(client):
    # given: the broker is checked only when one is configured (CI runs with Redis)
    expected = {"database": "ok", **({"broker": "ok"} if settings.CELERY_BROKER_URL else {})}
    # when
    response = client.get("/readyz")
    # then
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": expected}
