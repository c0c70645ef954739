"""The only loader: skops with the settings' trusted types; pickles are never executed."""

import pytest

from mlops_site.common.errors import ApplicationError
from registry import services
from registry.loader import model_version_load
from tests.registry.factories import (
    joblib_canary_bytes,
    pickle_canary_bytes,
    skops_untrusted_bytes,
    upload,
)

pytestmark = pytest.mark.django_db


def test_trusted_skops_model_loads_and_predicts(model_version):
    # when
    loaded = model_version_load(model_version)
    # then
    assert type(loaded).__name__ == "LogisticRegression"
    assert loaded.predict([[0.0, 1.0], [3.0, 0.0]]).tolist() == [0, 1]


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_pickle_canary_is_refused_and_never_runs(alice, model, tmp_path, protocol):
    # given: a pickle whose __reduce__ creates a canary file when unpickled
    canary = tmp_path / "canary"
    version = services.model_version_register(
        actor=alice, model=model, artifact=upload(pickle_canary_bytes(canary, protocol), "model.skops"))
    # when
    with pytest.raises(ApplicationError) as caught:
        model_version_load(version)
    # then
    assert caught.value.code == "untrusted_artifact_format"
    assert caught.value.message == ("Artifacts in pickle format are never loaded; "
                                    "only skops files with trusted types are.")
    assert not canary.exists()


@pytest.mark.parametrize("compression", ["zlib", "gzip", "xz"])
def test_joblib_canary_is_refused_and_never_runs(alice, model, tmp_path, compression):
    canary = tmp_path / "canary"
    version = services.model_version_register(actor=alice, model=model,
                                              artifact=upload(joblib_canary_bytes(canary, compression)))
    assert version.artifact_format == "joblib"
    with pytest.raises(ApplicationError) as caught:
        model_version_load(version)
    assert caught.value.code == "untrusted_artifact_format"
    assert not canary.exists()


def test_skops_with_untrusted_type_is_refused(alice, model):
    # given
    version = services.model_version_register(actor=alice, model=model, artifact=upload(skops_untrusted_bytes()))
    assert (version.artifact_format, version.artifact_loadable) == ("skops", False)
    assert version.artifact_note == ("skops file uses types outside the trusted list: "
                                     "tests.registry.factories.UntrustedThing")
    # when
    with pytest.raises(ApplicationError) as caught:
        model_version_load(version)
    # then
    assert caught.value.code == "untrusted_artifact_types"


def test_trusted_list_comes_from_settings_at_load_time(alice, model, settings):
    # given: a file refused at registration, then the operator trusts its type in settings
    version = services.model_version_register(actor=alice, model=model, artifact=upload(skops_untrusted_bytes()))
    settings.ATTEST_SKOPS_TRUSTED_TYPES = [*settings.ATTEST_SKOPS_TRUSTED_TYPES,
                                           "tests.registry.factories.UntrustedThing"]
    # when
    loaded = model_version_load(version)
    # then
    assert type(loaded["model"]).__name__ == "UntrustedThing"


def test_reference_artifacts_are_not_loaded(alice, model):
    version = services.model_version_register(actor=alice, model=model, artifact_uri="https://models.example.org/m",
                                              declared_sha256="cd" * 32)
    with pytest.raises(ApplicationError) as caught:
        model_version_load(version)
    assert caught.value.code == "untrusted_artifact_format"


def test_tampered_stored_artifact_is_refused(model_version, storage_root):
    # given: the stored blob is replaced behind Attest's back
    (storage_root / model_version.storage_key).write_bytes(b"tampered")
    # when
    with pytest.raises(ApplicationError) as caught:
        model_version_load(model_version)
    # then
    assert caught.value.code == "artifact_corrupted"
