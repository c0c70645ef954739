"""The registry admin: read-only versions with lineage, registrations through services, no deletes."""

import pytest
from django.test import Client

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
