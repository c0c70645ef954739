import pytest
from django.contrib.auth.models import Permission

from governance.audit import AuditAction
from governance.models import AuditEvent, AuditQueueEntry
from governance.services.roles import role_grant, role_revoke, user_has_role
from mlops_site.common.errors import ApplicationError
from mlops_site.common.roles import Role

pytestmark = pytest.mark.django_db


def _roles(user) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


def test_grant_adds_the_group_and_records_one_event(make_user, audit_flush):
    # given
    admin = make_user("root", is_superuser=True, is_staff=True)
    user = make_user("dana")
    # when
    role_grant(actor=admin, user=user, role=Role.DATA_SCIENTIST)
    audit_flush()
    # then
    assert _roles(user) == ["data_scientist"]
    event = AuditEvent.objects.get()
    assert event.action == AuditAction.ROLE_GRANTED
    assert (event.object_type, event.object_id, event.object_repr) == ("auth.user", str(user.pk), "dana")
    assert event.actor_user_id == admin.pk
    assert event.payload_json == (
        '{"after":{"roles":["data_scientist"]},"before":{"roles":[]},"reason":null,"role":"data_scientist"}'
    )


def test_grant_from_the_command_line_records_the_system_actor(make_user, audit_flush):
    # given
    user = make_user("emil")
    # when
    role_grant(actor=None, user=user, role="ml_engineer")
    audit_flush()
    # then
    event = AuditEvent.objects.get()
    assert event.actor_json == '{"system":"cli"}'
    assert event.actor_user_id is None


def test_granting_a_held_role_is_a_conflict_and_records_nothing(make_user):
    # given
    user = make_user("vera", roles=["model_validator"])
    # when
    with pytest.raises(ApplicationError) as caught:
        role_grant(actor=None, user=user, role=Role.MODEL_VALIDATOR)
    # then
    assert (caught.value.code, caught.value.status) == ("role_already_granted", 409)
    assert caught.value.message == "vera already holds the role model_validator."
    assert _roles(user) == ["model_validator"]
    assert AuditQueueEntry.objects.count() == 0


def test_unknown_role_is_refused(make_user):
    # given
    user = make_user("x")
    # when
    with pytest.raises(ApplicationError) as caught:
        role_grant(actor=None, user=user, role="overlord")
    # then
    assert (caught.value.code, caught.value.status) == ("unknown_role", 400)
    assert _roles(user) == []
    assert AuditQueueEntry.objects.count() == 0


def test_a_non_administrator_cannot_grant(make_user):
    # given
    scientist = make_user("dana", roles=["data_scientist"])
    other = make_user("emil")
    # when
    with pytest.raises(ApplicationError) as caught:
        role_grant(actor=scientist, user=scientist, role=Role.COMPLIANCE_OFFICER)
    with pytest.raises(ApplicationError):
        role_grant(actor=scientist, user=other, role=Role.ML_ENGINEER)
    # then
    assert (caught.value.code, caught.value.status) == ("role_change_forbidden", 403)
    assert _roles(scientist) == ["data_scientist"]
    assert _roles(other) == []
    assert AuditQueueEntry.objects.count() == 0


def test_a_user_with_the_change_user_permission_may_grant(make_user):
    # given
    manager = make_user("manager")
    manager.user_permissions.add(Permission.objects.get(codename="change_user", content_type__app_label="auth"))
    user = make_user("rita")
    # when
    role_grant(actor=manager, user=user, role=Role.RISK_OFFICER)
    # then
    assert user_has_role(user, "risk_officer") is True
    assert AuditQueueEntry.objects.count() == 1


def test_revoke_removes_the_group_and_records_one_event(make_user, audit_flush):
    # given
    admin = make_user("root", is_superuser=True)
    user = make_user("colm", roles=["compliance_officer", "risk_officer"])
    # when
    role_revoke(actor=admin, user=user, role=Role.RISK_OFFICER)
    audit_flush()
    # then
    assert _roles(user) == ["compliance_officer"]
    event = AuditEvent.objects.get()
    assert event.action == AuditAction.ROLE_REVOKED
    assert event.payload_json == (
        '{"after":{"roles":["compliance_officer"]},"before":{"roles":["compliance_officer","risk_officer"]},'
        '"reason":null,"role":"risk_officer"}'
    )


def test_revoking_a_role_not_held_is_a_conflict_and_records_nothing(make_user):
    # given
    user = make_user("aldo", roles=["auditor"])
    # when
    with pytest.raises(ApplicationError) as caught:
        role_revoke(actor=None, user=user, role=Role.CI_SERVICE)
    # then
    assert (caught.value.code, caught.value.status) == ("role_not_granted", 409)
    assert _roles(user) == ["auditor"]
    assert AuditQueueEntry.objects.count() == 0
