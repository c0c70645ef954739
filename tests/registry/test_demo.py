"""The demo: `create_demo_users` and `load_demo` on a real database and real storage."""

import hashlib
import io

import pytest
from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from governance.audit import AuditAction
from governance.models import AuditEvent, AuditQueueEntry
from registry.demo import ARRESTS_DATASET, ARRESTS_MODEL, DEMO_TEAM, DIABETES_DATASET, DIABETES_MODEL
from registry.loader import model_version_load
from registry.models import Dataset, DatasetVersion, ModelVersion, RegisteredModel, Team

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def registry_steps_only(monkeypatch):
    """The registry's part of the demo alone: the steps later apps add (registry.demo.demo_step_add)
    are tested in their own suites."""
    import registry.demo

    monkeypatch.setattr(registry.demo, "_demo_steps", [])

DEMO_TABLE = """\
username | password               | role               | team risk-analytics
---------+------------------------+--------------------+--------------------
admin    | attest-demo-superuser  | superuser          |
dana     | attest-demo-notebook   | data_scientist     | member
emil     | attest-demo-pipeline   | ml_engineer        | member
vera     | attest-demo-challenge  | model_validator    |
colm     | attest-demo-regulation | compliance_officer |
rita     | attest-demo-appetite   | risk_officer       |
aldo     | attest-demo-evidence   | auditor            |
ci-bot   | attest-demo-buildfarm  | ci_service         | member"""


def _run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def _counts() -> tuple[int, ...]:
    return (Team.objects.count(), Dataset.objects.count(), DatasetVersion.objects.count(),
            RegisteredModel.objects.count(), ModelVersion.objects.count())


# --- create_demo_users --------------------------------------------------------------------------

def test_create_demo_users_makes_one_user_per_role_and_prints_the_table(settings, client, audit_flush):
    # given
    settings.DEBUG = True
    # when
    output = _run("create_demo_users")
    audit_flush()
    # then
    assert DEMO_TABLE in output
    roles = {user.username: sorted(user.groups.values_list("name", flat=True))
             for user in User.objects.prefetch_related("groups")}
    assert roles == {
        "admin": [], "dana": ["data_scientist"], "emil": ["ml_engineer"], "vera": ["model_validator"],
        "colm": ["compliance_officer"], "rita": ["risk_officer"], "aldo": ["auditor"], "ci-bot": ["ci_service"],
    }
    assert list(User.objects.filter(is_superuser=True).values_list("username", flat=True)) == ["admin"]
    assert User.objects.filter(is_staff=False).count() == 0
    team = Team.objects.get(name=DEMO_TEAM)
    assert sorted(team.members.values_list("username", flat=True)) == ["ci-bot", "dana", "emil"]
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions.count(AuditAction.USER_CREATED) == 8
    assert actions.count(AuditAction.ROLE_GRANTED) == 7
    assert actions.count(AuditAction.TEAM_CREATED) == 1
    assert actions.count(AuditAction.TEAM_MEMBER_ADDED) == 3
    assert len(actions) == 19
    # the printed password opens the admin
    assert client.login(username="vera", password="attest-demo-challenge") is True


def test_create_demo_users_again_changes_nothing_and_prints_the_same_table(settings):
    # given
    settings.DEBUG = True
    _run("create_demo_users")
    entries = AuditQueueEntry.objects.count()
    users = list(User.objects.order_by("pk").values_list("pk", "password"))
    # when
    output = _run("create_demo_users")
    # then
    assert DEMO_TABLE in output
    assert "Demo users ready (0 changes)." in output
    assert AuditQueueEntry.objects.count() == entries
    assert list(User.objects.order_by("pk").values_list("pk", "password")) == users


def test_create_demo_users_refuses_without_debug(settings):
    # given
    settings.DEBUG = False
    # when
    with pytest.raises(CommandError) as caught:
        _run("create_demo_users")
    # then
    assert str(caught.value).startswith("Refusing to create users with public passwords while DEBUG is off")
    assert User.objects.count() == 0
    assert AuditQueueEntry.objects.count() == 0


def test_create_demo_users_runs_without_debug_when_forced(settings):
    # given
    settings.DEBUG = False
    # when
    _run("create_demo_users", "--force")
    # then
    assert User.objects.count() == 8


def test_create_demo_users_reports_a_password_changed_since(settings):
    # given
    settings.DEBUG = True
    _run("create_demo_users")
    rita = User.objects.get(username="rita")
    rita.set_password("a-new-secret-of-ritas")
    rita.save(update_fields=["password"])
    # when
    output = _run("create_demo_users")
    # then
    assert "rita     | (changed since creation) | risk_officer       |" in output
    assert User.objects.get(username="rita").check_password("a-new-secret-of-ritas") is True


# --- load_demo ----------------------------------------------------------------------------------

def test_load_demo_needs_the_demo_users():
    # when
    with pytest.raises(CommandError) as caught:
        _run("load_demo")
    # then
    assert str(caught.value) == "Demo user(s) dana, emil missing; run `manage.py create_demo_users` first."
    assert _counts() == (0, 0, 0, 0, 0)


def test_load_demo_registers_the_data_sets_and_models_with_lineage(settings, audit_flush):
    # given
    settings.DEBUG = True
    _run("create_demo_users")
    audit_flush()
    events_before = AuditEvent.objects.count()
    # when
    output = _run("load_demo")
    audit_flush()
    # then: two data sets with a training and an evaluation version each, three model versions
    assert _counts() == (1, 2, 4, 2, 3)
    assert "registered toronto-arrests v1 (training, 3919 rows" in output
    assert "registered toronto-arrests v2 (evaluation, 1307 rows" in output
    assert "registered diabetes-progression v1 (training, 331 rows" in output
    assert "registered diabetes-progression v2 (evaluation, 111 rows" in output
    assert "Demo loaded: 11 registered, 1 already there" in output
    arrests_training, arrests_evaluation = DatasetVersion.objects.filter(dataset__name=ARRESTS_DATASET)
    assert (arrests_training.target_column, arrests_training.sensitive_columns) == (
        "released", ["colour", "sex", "age", "citizen"])
    assert arrests_training.row_count + arrests_evaluation.row_count == 5226
    diabetes_training, diabetes_evaluation = DatasetVersion.objects.filter(dataset__name=DIABETES_DATASET)
    assert (diabetes_training.target_column, diabetes_training.sensitive_columns) == ("target", ["sex", "age"])
    assert RegisteredModel.objects.get(name=ARRESTS_MODEL).risk_tier == "high"
    assert RegisteredModel.objects.get(name=DIABETES_MODEL).risk_tier == "limited"

    lr, gb = ModelVersion.objects.filter(model__name=ARRESTS_MODEL).order_by("version")
    (regressor,) = ModelVersion.objects.filter(model__name=DIABETES_MODEL)
    assert (lr.hyperparameters["estimator"], gb.hyperparameters["estimator"],
            regressor.hyperparameters["estimator"]) == (
        "LogisticRegression", "GradientBoostingClassifier", "GradientBoostingRegressor")
    assert (lr.task, regressor.task) == ("classification", "regression")
    assert sorted(lr.metrics) == ["accuracy", "roc_auc"] and sorted(regressor.metrics) == ["mae", "r2", "rmse"]
    assert 0.5 < lr.metrics["roc_auc"] <= 1 and 0.5 < gb.metrics["roc_auc"] <= 1
    assert lr.feature_names == ["colour", "year", "age", "sex", "employed", "citizen", "checks"]
    for version in (lr, gb):
        assert list(version.training_datasets.all()) == [arrests_training]
        assert list(version.evaluation_datasets.all()) == [arrests_evaluation]
    assert list(regressor.training_datasets.all()) == [diabetes_training]
    assert list(regressor.evaluation_datasets.all()) == [diabetes_evaluation]
    assert sorted(lr.authors.values_list("username", flat=True)) == ["dana", "emil"]
    for version in (lr, gb, regressor):
        assert version.framework == "scikit-learn"
        assert len(version.code_commit) == 40 or version.code_commit == "unknown"
        assert (version.artifact_format, version.artifact_loadable) == ("skops", True)
        with default_storage.open(version.storage_key) as stored:
            assert hashlib.sha256(stored.read()).hexdigest() == version.artifact_sha256
    assert [type(model_version_load(version)).__name__ for version in (lr, gb, regressor)] == [
        "Pipeline", "Pipeline", "GradientBoostingRegressor"]
    for version in DatasetVersion.objects.all():
        with default_storage.open(version.storage_key) as stored:
            assert hashlib.sha256(stored.read()).hexdigest() == version.sha256
    # every registration is in the log: 2 data sets, 4 versions, 2 models, 3 model versions
    assert AuditEvent.objects.count() - events_before == 11


def test_loaded_models_predict(settings):
    # given
    settings.DEBUG = True
    _run("create_demo_users")
    _run("load_demo")
    import pandas as pd

    version = ModelVersion.objects.get(model__name=ARRESTS_MODEL, version=2)
    row = pd.DataFrame([{"colour": "White", "year": 2002, "age": 21, "sex": "Male", "employed": "Yes",
                         "citizen": "Yes", "checks": 3}])
    # when
    prediction = model_version_load(version).predict(row)
    # then
    assert list(prediction) in (["Yes"], ["No"])


def test_load_demo_twice_registers_nothing_new(settings):
    # given
    settings.DEBUG = True
    _run("create_demo_users")
    _run("load_demo")
    counts = _counts()
    entries = AuditQueueEntry.objects.count()
    shas = sorted(ModelVersion.objects.values_list("artifact_sha256", flat=True))
    # when
    output = _run("load_demo")
    # then
    assert _counts() == counts == (1, 2, 4, 2, 3)
    assert AuditQueueEntry.objects.count() == entries
    assert sorted(ModelVersion.objects.values_list("artifact_sha256", flat=True)) == shas
    assert "registered" not in output
    assert "Nothing new: the demo was already loaded (12 records checked" in output


def test_demo_through_the_api_with_an_issued_token(settings, api_client):
    # given: the demo, and a token for the CI identity from `issue_token`
    settings.DEBUG = True
    _run("create_demo_users")
    _run("load_demo")
    key = _run("issue_token", "ci-bot").splitlines()[-1]
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    # when
    versions = api_client.get("/api/v1/model-versions/")
    training = DatasetVersion.objects.get(dataset__name=ARRESTS_DATASET, version=1)
    lineage = api_client.get(f"/api/v1/lineage/?node=dataset_version:{training.pk}")
    # then
    assert versions.status_code == 200
    body = versions.json()
    assert body["count"] == 3
    for item in body["results"]:
        stored = ModelVersion.objects.get(pk=item["id"])
        with default_storage.open(stored.storage_key) as blob:
            assert item["artifact_sha256"] == hashlib.sha256(blob.read()).hexdigest()
    assert lineage.status_code == 200
    classifier_ids = set(ModelVersion.objects.filter(model__name=ARRESTS_MODEL).values_list("pk", flat=True))
    lineage_ids = {node["id"] for node in lineage.json()["nodes"]}
    assert {f"model_version:{pk}" for pk in classifier_ids} <= lineage_ids


# --- the demo in the admin ----------------------------------------------------------------------

@pytest.mark.parametrize(("username", "password"), [
    ("dana", "attest-demo-notebook"),   # data scientist in the owning team
    ("vera", "attest-demo-challenge"),  # validator outside the team: reviews the whole registry
    ("aldo", "attest-demo-evidence"),   # auditor: reads everything
])
def test_a_printed_demo_user_sees_the_demo_in_the_admin(settings, client, username, password):
    # given
    settings.DEBUG = True
    _run("create_demo_users")
    _run("load_demo")
    # when
    logged_in = client.login(username=username, password=password)
    pages = {path: client.get(f"/admin/registry/{path}/") for path in ("dataset", "datasetversion", "modelversion")}
    # then
    assert logged_in
    assert {path: page.status_code for path, page in pages.items()} == dict.fromkeys(pages, 200)
    assert "2 datasets" in pages["dataset"].content.decode()
    assert "4 dataset versions" in pages["datasetversion"].content.decode()
    assert "3 model versions" in pages["modelversion"].content.decode()


def test_the_auditor_cannot_add_or_change_in_the_admin(settings, client):
    # given
    settings.DEBUG = True
    _run("create_demo_users")
    _run("load_demo")
    client.login(username="aldo", password="attest-demo-evidence")
    # when
    add_page = client.get("/admin/registry/registeredmodel/add/")
    # then
    assert add_page.status_code == 403
