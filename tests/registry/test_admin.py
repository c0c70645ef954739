"""The registry admin: read-only versions with lineage, registrations through services, no deletes."""

import pytest
from django.test import Client

from registry import services
from registry.models import Dataset, Team
from tests.registry.conftest import audit_total

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_for(make_user, team):
    root = make_user("root", is_superuser=True, is_staff=True)
    team.members.add(root)
    client = Client()
    client.force_login(root)
    return client


@pytest.mark.parametrize("name", ["team", "dataset", "datasetversion", "registeredmodel", "modelversion"])
def test_changelists_render(admin_client_for, model_version, name):
    response = admin_client_for.get(f"/admin/registry/{name}/")
    assert response.status_code == 200


def test_search_and_filters(admin_client_for, model_version, foreign_model_version):
    response = admin_client_for.get("/admin/registry/modelversion/?q=churn")
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    response = admin_client_for.get("/admin/registry/modelversion/?artifact_format__exact=skops")
    assert [str(v) for v in response.context["cl"].result_list] == ["credit-scorer v1"]


def test_model_version_page_shows_lineage_and_artifact(admin_client_for, model_version, dataset_version):
    # when
    response = admin_client_for.get(f"/admin/registry/modelversion/{model_version.pk}/change/")
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert f'<a href="/admin/registry/datasetversion/{dataset_version.pk}/change/">loans v1</a>' in html
    assert "training_data" in html
    assert model_version.artifact_sha256 in html
    assert 'name="_save"' not in html  # read-only: nothing to save


def test_add_dataset_goes_through_the_service(admin_client_for, team):
    # given
    events = audit_total()
    # when
    response = admin_client_for.post("/admin/registry/dataset/add/", {"name": "admin-data", "team": team.pk,
                                                                      "description": "from admin"})
    # then
    assert response.status_code == 302
    dataset = Dataset.objects.get(name="admin-data")
    assert dataset.created_by.username == "root"
    assert audit_total() == events + 1


def test_versions_cannot_be_added_or_deleted(admin_client_for, model_version):
    assert admin_client_for.get("/admin/registry/modelversion/add/").status_code == 403
    assert admin_client_for.get(f"/admin/registry/modelversion/{model_version.pk}/delete/").status_code == 403
    assert admin_client_for.get(f"/admin/registry/registeredmodel/{model_version.model_id}/delete/").status_code == 403


def test_archive_action_calls_the_service(admin_client_for, model_version):
    response = admin_client_for.post("/admin/registry/modelversion/", {"action": "archive_selected",
                                                                       "_selected_action": [model_version.pk]})
    assert response.status_code == 302
    model_version.refresh_from_db()
    assert (model_version.status, model_version.archived_at is not None) == ("archived", True)


def test_team_add_and_membership_changes_go_through_services(admin_client_for, make_user, head_seq, new_actions):
    # given
    dana, emil = make_user("dana"), make_user("emil")
    since = head_seq()
    # when
    added = admin_client_for.post("/admin/registry/team/add/", {"name": "fraud", "description": "Fraud",
                                                                "members": [dana.pk, emil.pk]})
    team = Team.objects.get(name="fraud")
    changed = admin_client_for.post(f"/admin/registry/team/{team.pk}/change/", {"members": [emil.pk]})
    # then
    assert (added.status_code, changed.status_code) == (302, 302)
    assert list(team.members.values_list("username", flat=True)) == ["emil"]
    assert new_actions(since) == ["registry.team.created", "registry.team.member_added",
                                  "registry.team.member_added", "registry.team.member_removed"]


REGISTRY_LISTS = ["dataset", "datasetversion", "registeredmodel", "modelversion"]


def staff_client(user) -> Client:
    type(user).objects.filter(pk=user.pk).update(is_staff=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", ["auditor", "model_validator", "compliance_officer", "risk_officer"])
def test_archive_is_not_offered_to_roles_that_may_not_write_the_registry(make_user, team, model_version, role):
    # given: a role that reads the whole registry but may not write it (docs/roles.md), even on the team
    reader = make_user(f"reader-{role}", roles=[role])
    team.members.add(reader)
    client = staff_client(reader)
    for name in REGISTRY_LISTS:
        # when
        response = client.get(f"/admin/registry/{name}/")
        # then
        assert response.status_code == 200, name
        assert response.context["cl"].result_count == 1, name
        assert 'value="archive_selected"' not in response.content.decode(), name


def test_archive_is_offered_to_a_registry_writer(alice, model_version):
    client = staff_client(alice)
    for name in REGISTRY_LISTS:
        assert 'value="archive_selected"' in client.get(f"/admin/registry/{name}/").content.decode(), name


def test_an_auditor_posting_archive_anyway_changes_nothing(make_user, team, model_version):
    # given
    auditor = make_user("aud", roles=["auditor"])
    client = staff_client(auditor)
    events = audit_total()
    # when
    response = client.post("/admin/registry/modelversion/", {"action": "archive_selected",
                                                            "_selected_action": [model_version.pk]}, follow=True)
    # then
    model_version.refresh_from_db()
    assert model_version.archived_at is None
    assert response.status_code == 200
    assert audit_total() == events
    assert [str(m) for m in response.context["messages"]] == []  # no misleading team-membership refusal


def test_history_of_a_registry_object_is_its_audit_trail(make_user, model_version, audit_flush):
    # given: the version was registered and archived through the services, both audit-logged
    officer = make_user("comp", roles=["compliance_officer"])
    services.model_version_archive(actor=None, model_version=model_version, reason="superseded")
    audit_flush()
    client = staff_client(officer)
    # when
    response = client.get(f"/admin/registry/modelversion/{model_version.pk}/history/")
    # then
    assert response.status_code == 302
    assert response["Location"] == (f"/admin/governance/auditevent/?object_type=registry.modelversion"
                                    f"&object_id={model_version.pk}")
    trail = client.get(response["Location"])
    assert trail.status_code == 200
    assert [e.action for e in trail.context["cl"].result_list] == ["registry.model_version.archived",
                                                                  "registry.model_version.registered"]


def test_history_for_a_user_who_does_not_read_the_audit_log_says_so(alice, model_version):
    client = staff_client(alice)
    response = client.get(f"/admin/registry/modelversion/{model_version.pk}/history/", follow=True)
    assert response.redirect_chain == [(f"/admin/registry/modelversion/{model_version.pk}/change/", 302)]
    assert [str(m) for m in response.context["messages"]] == [
        "This object's history is the audit log, which your role does not read."]


def test_history_of_a_missing_object_is_not_found(make_user, model_version):
    client = staff_client(make_user("comp", roles=["compliance_officer"]))
    response = client.get(f"/admin/registry/modelversion/{model_version.pk + 1000}/history/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
