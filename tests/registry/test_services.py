"""Registry services: each success records exactly one audit event; each refusal leaves nothing."""

import hashlib
import json
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from governance.models import AuditChainHead, AuditEvent
from mlops_site.common.errors import ApplicationError
from registry import services
from registry.models import DatasetVersion, ModelVersion, RegisteredModel, Team
from tests.registry.conftest import audit_total, registry_rows, stored_files
from tests.registry.factories import csv_bytes, parquet_bytes, pickle_canary_bytes, skops_bytes, upload

pytestmark = pytest.mark.django_db


def _refused(call, code: str) -> ApplicationError:
    rows, events = registry_rows(), audit_total()
    with pytest.raises(ApplicationError) as caught:
        call()
    assert caught.value.code == code
    assert registry_rows() == rows
    assert audit_total() == events
    return caught.value


# --- teams --------------------------------------------------------------------------------

def test_team_create_records_one_event(head_seq, new_actions, make_user):
    # given
    staff = make_user("staffer", is_staff=True)
    since = head_seq()
    # when
    team = services.team_create(actor=staff, name="fraud")
    # then
    assert Team.objects.get().name == "fraud"
    assert team.members.count() == 0
    assert new_actions(since) == ["registry.team.created"]


def test_team_create_refuses_non_staff_and_duplicates(alice, team):
    _refused(lambda: services.team_create(actor=alice, name="fraud"), "team_admin_required")
    _refused(lambda: services.team_create(actor=None, name="credit-risk"), "team_name_taken")


def test_team_member_add_and_remove_each_record_one_event(team, bob, head_seq, new_actions, alice):
    # given
    since = head_seq()
    # when
    services.team_member_add(actor=alice, team=team, user=bob)
    services.team_member_add(actor=alice, team=team, user=bob)  # already a member: no change
    services.team_member_remove(actor=alice, team=team, user=bob)
    # then
    assert list(team.members.values_list("username", flat=True)) == ["alice"]
    assert new_actions(since) == ["registry.team.member_added", "registry.team.member_removed"]


def test_team_member_add_refused_for_outsider(team, bob, make_user):
    carol = make_user("carol")
    _refused(lambda: services.team_member_add(actor=bob, team=team, user=carol), "not_team_member")
    assert list(team.members.values_list("username", flat=True)) == ["alice"]


# --- datasets -----------------------------------------------------------------------------

def test_dataset_register_records_one_event(alice, team, head_seq, new_actions):
    since = head_seq()
    dataset = services.dataset_register(actor=alice, name="  loans  ", team=team)
    assert dataset.name == "loans"
    assert new_actions(since) == ["registry.dataset.registered"]


def test_dataset_register_refusals(alice, bob, team, dataset):
    _refused(lambda: services.dataset_register(actor=bob, name="x", team=team), "not_team_member")
    _refused(lambda: services.dataset_register(actor=alice, name="loans", team=team), "dataset_name_taken")
    _refused(lambda: services.dataset_register(actor=alice, name="bad\x00name", team=team), "validation_error")
    _refused(lambda: services.dataset_register(actor=alice, name="   ", team=team), "validation_error")


def test_dataset_version_csv_facts_and_event(alice, dataset, head_seq, new_actions, storage_root):
    # given
    content = csv_bytes()
    since = head_seq()
    # when
    version = services.dataset_version_register(actor=alice, dataset=dataset, file=upload(content, "x.parquet"),
                                                declared_sha256=hashlib.sha256(content).hexdigest().upper(),
                                                target_column="approved", sensitive_columns=["sex", "age"],
                                                license="CC-BY-4.0", provenance="exported 2026-11-01")
    # then
    digest = hashlib.sha256(content).hexdigest()
    assert (version.version, version.format, version.row_count, version.size) == (1, "csv", 3, len(content))
    assert version.sha256 == digest
    assert version.schema == [{"name": "age", "dtype": "int64"}, {"name": "income", "dtype": "float64"},
                              {"name": "sex", "dtype": "str"}, {"name": "approved", "dtype": "int64"}]
    assert version.sensitive_columns == ["sex", "age"]
    assert version.storage_key == f"blobs/sha256/{digest[:2]}/{digest[2:4]}/{digest}"
    assert stored_files(storage_root) == [version.storage_key]
    assert (storage_root / version.storage_key).read_bytes() == content
    assert new_actions(since) == ["registry.dataset_version.registered"]


def test_dataset_version_parquet_schema_from_metadata(alice, dataset):
    version = services.dataset_version_register(actor=alice, dataset=dataset, file=upload(parquet_bytes(), "a.csv"),
                                                target_column="released", sensitive_columns=["colour"])
    assert (version.format, version.row_count) == ("parquet", 5)
    assert version.schema == [{"name": "age", "dtype": "int64"}, {"name": "score", "dtype": "double"},
                              {"name": "colour", "dtype": "large_string"}, {"name": "released", "dtype": "int64"}]


def test_dataset_versions_count_up_per_dataset(alice, dataset, team):
    other = services.dataset_register(actor=alice, name="other", team=team)
    numbers = [services.dataset_version_register(actor=alice, dataset=d, file=upload(csv_bytes(text))).version
               for d, text in [(dataset, "a\n1\n"), (dataset, "a\n2\n"), (other, "a\n3\n"), (dataset, "a\n4\n")]]
    assert numbers == [1, 2, 1, 3]


def test_dataset_version_hash_mismatch_leaves_no_row_no_file(alice, dataset, storage_root):
    error = _refused(lambda: services.dataset_version_register(actor=alice, dataset=dataset,
                                                               file=upload(csv_bytes()), declared_sha256="0" * 64),
                     "artifact_hash_mismatch")
    assert error.status == 400
    assert stored_files(storage_root) == []


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"target_column": "nope"}, "unknown_column"),
    ({"sensitive_columns": ["sex", "religion"]}, "unknown_column"),
    ({"declared_sha256": "xyz"}, "invalid_sha256"),
    ({"file": None}, "file_required"),
    ({"file": b"\x00\x01\x02binary"}, "unsupported_dataset_format"),
    ({"file": b"PAR1 not really parquet PAR1"}, "unreadable_dataset"),
])
def test_dataset_version_refusals_leave_nothing(alice, dataset, storage_root, kwargs, code):
    # given
    if "file" in kwargs:
        kwargs["file"] = upload(kwargs["file"]) if kwargs["file"] is not None else None
    else:
        kwargs["file"] = upload(csv_bytes())
    # when / then
    _refused(lambda: services.dataset_version_register(actor=alice, dataset=dataset, **kwargs), code)
    assert stored_files(storage_root) == []


def test_dataset_version_db_validation_failure_removes_the_new_blob(alice, dataset, storage_root):
    # given: a source URI longer than the column, which only the model's full_clean rejects,
    # after the blob has been written
    rows, events = registry_rows(), audit_total()
    # when
    with pytest.raises(ValidationError):
        services.dataset_version_register(actor=alice, dataset=dataset, file=upload(csv_bytes()),
                                          source_uri="https://example.org/" + "a" * 1000)
    # then
    assert (registry_rows(), audit_total()) == (rows, events)
    assert stored_files(storage_root) == []


def test_failed_registration_keeps_a_blob_another_version_uses(alice, dataset, dataset_version, storage_root):
    with pytest.raises(ValidationError):
        services.dataset_version_register(actor=alice, dataset=dataset, file=upload(csv_bytes()),
                                          source_uri="x" * 1001)
    assert stored_files(storage_root) == [dataset_version.storage_key]


def test_identical_content_is_stored_once(alice, dataset, dataset_version, storage_root):
    again = services.dataset_version_register(actor=alice, dataset=dataset, file=upload(csv_bytes(), "copy.csv"))
    assert (again.version, again.storage_key) == (2, dataset_version.storage_key)
    assert stored_files(storage_root) == [dataset_version.storage_key]


def test_no_version_for_an_archived_dataset(alice, dataset):
    services.dataset_archive(actor=alice, dataset=dataset, reason="superseded")
    _refused(lambda: services.dataset_version_register(actor=alice, dataset=dataset, file=upload(csv_bytes())),
             "dataset_archived")


# --- models -------------------------------------------------------------------------------

def test_model_register_records_one_event(alice, team, head_seq, new_actions):
    since = head_seq()
    model = services.model_register(actor=alice, name="pd-model", team=team, risk_tier="limited")
    assert (model.name, model.risk_tier, model.created_by) == ("pd-model", "limited", alice)
    assert new_actions(since) == ["registry.model.registered"]


def test_model_register_refusals(alice, bob, team, model):
    _refused(lambda: services.model_register(actor=alice, name="credit-scorer", team=team, risk_tier="high"),
             "model_name_taken")
    _refused(lambda: services.model_register(actor=alice, name="m2", team=team, risk_tier="extreme"),
             "validation_error")
    _refused(lambda: services.model_register(actor=bob, name="m3", team=team, risk_tier="high"), "not_team_member")


def test_model_version_skops_is_loadable(model_version, alice, dataset_version):
    assert (model_version.version, model_version.artifact_format) == (1, "skops")
    assert model_version.artifact_loadable is True
    assert model_version.artifact_note == ""
    assert list(model_version.training_datasets.all()) == [dataset_version]
    assert list(model_version.authors.all()) == [alice]
    assert model_version.status == "registered"


def test_model_version_pickle_is_stored_but_not_loadable(alice, model, tmp_path, storage_root, head_seq,
                                                         new_actions):
    # given
    content = pickle_canary_bytes(tmp_path / "canary")
    since = head_seq()
    # when
    version = services.model_version_register(actor=alice, model=model, artifact=upload(content, "model.skops"))
    # then
    assert (version.artifact_format, version.artifact_loadable) == ("pickle", False)
    assert version.artifact_note == "pickle files are stored and hashed but never loaded"
    assert version.artifact_sha256 == hashlib.sha256(content).hexdigest()
    assert (storage_root / version.storage_key).read_bytes() == content
    assert not (tmp_path / "canary").exists()
    assert new_actions(since) == ["registry.model_version.registered"]


def test_model_version_numbers_and_lineage_fields(alice, model, model_version, dataset_version):
    child = services.model_version_register(
        actor=alice, model=model, artifact=upload(skops_bytes(), "m2"), parent=model_version,
        evaluation_datasets=[dataset_version.pk], hyperparameters={"C": 0.5}, feature_names=["age", "income"],
        code_repository="https://git.example.org/credit", code_commit="a" * 40,
    )
    assert child.version == 2
    assert child.parent == model_version
    assert list(child.evaluation_datasets.all()) == [dataset_version]
    assert (child.hyperparameters, child.feature_names) == ({"C": 0.5}, ["age", "income"])


def test_model_version_by_reference(alice, model, storage_root):
    digest = "ab" * 32
    version = services.model_version_register(actor=alice, model=model,
                                              artifact_uri="https://models.example.org/credit/v1.onnx",
                                              declared_sha256=digest)
    assert (version.artifact_format, version.artifact_sha256, version.artifact_size) == ("reference", digest, None)
    assert version.artifact_loadable is False
    assert version.storage_key == ""
    assert stored_files(storage_root) == []


@pytest.mark.parametrize("uri", [
    "http://models.example.org/m.onnx", "file:///etc/passwd", "https://user:pw@models.example.org/m",
    "https://127.0.0.1/m", "https://169.254.169.254/latest/meta-data", "https://10.0.0.5/m",
    "https://[::1]/m", "https://localhost/m", "https://models.example.org/a b", "https://ex.org/\x00",
    "ftp://models.example.org/m", "https:///nohost", "https://models.example.org:99999/m", "../../etc/passwd",
    "https://intranet/m",
])
def test_model_version_reference_refuses_bad_uris(alice, model, uri):
    _refused(lambda: services.model_version_register(actor=alice, model=model, artifact_uri=uri,
                                                     declared_sha256="ab" * 32), "invalid_artifact_uri")


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"artifact_uri": "https://models.example.org/m"}, "artifact_sha256_required"),
    ({"artifact_uri": "https://models.example.org/m", "declared_sha256": "AB"}, "invalid_sha256"),
    ({}, "artifact_missing"),
    ({"artifact": b"abc", "artifact_uri": "https://models.example.org/m"}, "artifact_ambiguous"),
    ({"artifact": b"abc", "declared_sha256": "0" * 64}, "artifact_hash_mismatch"),
    ({"artifact": b"abc", "hyperparameters": [1, 2]}, "validation_error"),
    ({"artifact": b"abc", "metrics": "0.9"}, "validation_error"),
    ({"artifact": b"abc", "feature_names": [1]}, "validation_error"),
    ({"artifact": b"abc", "training_datasets": [987654]}, "not_found"),
])
def test_model_version_refusals_leave_nothing(alice, model, storage_root, kwargs, code):
    if "artifact" in kwargs:
        kwargs["artifact"] = upload(kwargs["artifact"])
    _refused(lambda: services.model_version_register(actor=alice, model=model, **kwargs), code)
    assert stored_files(storage_root) == []


def test_model_version_refuses_foreign_dataset_and_parent(alice, model, foreign_model_version, bob, other_team):
    foreign_data = services.dataset_register(actor=bob, name="bob-data", team=other_team)
    foreign_version = services.dataset_version_register(actor=bob, dataset=foreign_data, file=upload(csv_bytes()))
    error = _refused(lambda: services.model_version_register(actor=alice, model=model, artifact=upload(b"m"),
                                                             training_datasets=[foreign_version]), "not_found")
    assert error.fields == {"training_datasets": [f"Unknown id {foreign_version.pk}."]}
    _refused(lambda: services.model_version_register(actor=alice, model=model, artifact=upload(b"m"),
                                                     parent=foreign_model_version), "not_found")


def test_model_version_db_failure_removes_new_blob(alice, model, storage_root):
    rows, events = registry_rows(), audit_total()
    with pytest.raises(ValidationError):
        services.model_version_register(actor=alice, model=model, artifact=upload(b"artifact"), code_commit="c" * 65)
    assert (registry_rows(), audit_total()) == (rows, events)
    assert stored_files(storage_root) == []


def test_model_version_refused_for_non_member_and_archived_model(bob, alice, model):
    _refused(lambda: services.model_version_register(actor=bob, model=model, artifact=upload(b"m")),
             "not_team_member")
    services.model_archive(actor=alice, model=model, reason="retired")
    _refused(lambda: services.model_version_register(actor=alice, model=model, artifact=upload(b"m")),
             "model_archived")


# --- archiving ----------------------------------------------------------------------------

def test_archive_services_record_one_event_each(alice, dataset, dataset_version, model, model_version, head_seq,
                                                new_actions):
    # given
    since = head_seq()
    # when
    services.model_version_archive(actor=alice, model_version=model_version, reason="bad calibration")
    services.model_archive(actor=alice, model=model, reason="retired")
    services.dataset_version_archive(actor=alice, dataset_version=dataset_version, reason="PII found")
    services.dataset_archive(actor=alice, dataset=dataset, reason="retired")
    # then
    model_version.refresh_from_db()
    assert model_version.status == "archived"
    assert model_version.archived_at is not None
    assert RegisteredModel.objects.get().archived_at is not None
    assert DatasetVersion.objects.get().archived_at is not None
    assert new_actions(since) == ["registry.model_version.archived", "registry.model.archived",
                                  "registry.dataset_version.archived", "registry.dataset.archived"]


def test_archive_refusals(alice, bob, model_version):
    _refused(lambda: services.model_version_archive(actor=alice, model_version=model_version, reason="  "),
             "reason_required")
    _refused(lambda: services.model_version_archive(actor=bob, model_version=model_version, reason="x"),
             "not_team_member")
    services.model_version_archive(actor=alice, model_version=model_version, reason="x")
    error = _refused(lambda: services.model_version_archive(actor=alice, model_version=model_version, reason="y"),
                     "already_archived")
    assert error.status == 409


def test_superuser_may_write_for_any_team(make_user, model):
    admin = make_user("root", is_superuser=True, is_staff=True)
    version = services.model_version_register(actor=admin, model=model, artifact=upload(b"x"))
    assert version.version == 1


# --- concurrency --------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_get_distinct_consecutive_versions(make_user):
    # given: four writers registering versions of the same model at once (with real commits; an
    # earlier transactional test's flush may have removed the chain head its migration created)
    AuditChainHead.objects.get_or_create(pk=1)
    alice = make_user("alice", roles=["ml_engineer"])
    team = services.team_member_add(actor=None, team=services.team_create(actor=None, name="t"), user=alice)
    model = services.model_register(actor=alice, name="m", team=team, risk_tier="minimal")
    errors: list[BaseException] = []

    def register(index: int) -> None:
        try:
            for round_ in range(3):
                services.model_version_register(actor=alice, model=model, artifact=upload(f"{index}-{round_}".encode()))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=register, args=(i,)) for i in range(4)]
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then
    assert errors == []
    assert sorted(ModelVersion.objects.filter(model=model).values_list("version", flat=True)) == list(range(1, 13))


# --- model version status -----------------------------------------------------------------

def test_model_version_status_set_moves_forward_with_one_event_each(model_version, head_seq, new_actions,
                                                                    make_user):
    # given: an officer outside the team, as governance's services pass
    officer = make_user("olga", roles=["compliance_officer"])
    since = head_seq()
    # when
    services.model_version_status_set(actor=officer, version=model_version, status="approved", reason="approved")
    services.model_version_status_set(actor=officer, version=model_version, status="approved", reason="again")
    services.model_version_status_set(actor=None, version=model_version, status="deployed", reason="deployed")
    # then: setting the current status again changed nothing and recorded nothing
    model_version.refresh_from_db()
    assert model_version.status == "deployed"
    assert new_actions(since) == ["registry.model_version.status_changed", "registry.model_version.status_changed"]
    events = AuditEvent.objects.filter(seq__gt=since).order_by("seq")
    assert [(json.loads(e.payload_json)["before"], json.loads(e.payload_json)["after"]) for e in events] == [
        ({"status": "registered"}, {"status": "approved"}), ({"status": "approved"}, {"status": "deployed"})]
    assert json.loads(events[0].actor_json)["username"] == "olga"


@pytest.mark.parametrize("start, target", [
    ("deployed", "approved"), ("deployed", "registered"), ("approved", "registered"),
    ("archived", "approved"), ("archived", "deployed"), ("registered", "archived"),
])
def test_model_version_status_set_refuses_an_illegal_transition(alice, model_version, start, target):
    # given
    if start == "archived":
        services.model_version_archive(actor=alice, model_version=model_version, reason="retired")
    elif start in ("approved", "deployed"):
        ModelVersion.objects.filter(pk=model_version.pk).update(status=start)
    # when
    error = _refused(lambda: services.model_version_status_set(actor=alice, version=model_version, status=target,
                                                               reason="because"), "invalid_transition")
    # then
    assert error.status == 409
    model_version.refresh_from_db()
    assert model_version.status == start


@pytest.mark.parametrize("status, reason, code", [
    ("live", "because", "validation_error"), ("approved", "  ", "reason_required"), ("approved", None,
                                                                                    "reason_required"),
])
def test_model_version_status_set_refuses_bad_input(alice, model_version, status, reason, code):
    error = _refused(lambda: services.model_version_status_set(actor=alice, version=model_version, status=status,
                                                               reason=reason), code)
    assert error.status == 400
    model_version.refresh_from_db()
    assert model_version.status == "registered"
