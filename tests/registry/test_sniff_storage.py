"""Format sniffing from bytes and content-addressed storage."""

import io

import pytest

from mlops_site.common.errors import ApplicationError
from registry import services
from registry.sniff import artifact_sniff, dataset_sniff
from registry.storage import blob_key
from tests.registry.conftest import stored_files
from tests.registry.factories import (
    csv_bytes,
    joblib_canary_bytes,
    onnx_like_bytes,
    parquet_bytes,
    parquet_lying_footer_bytes,
    pickle_canary_bytes,
    skops_bytes,
    skops_untrusted_bytes,
    upload,
    zip_bytes,
)


def test_blob_key_is_derived_from_the_hash_only():
    digest = "0123456789abcdef" * 4
    assert blob_key(digest) == f"blobs/sha256/01/23/{digest}"
    for bad in ["../" + "a" * 61, "A" * 64, "a" * 63, ""]:
        with pytest.raises(ValueError):
            blob_key(bad)


@pytest.mark.parametrize(("content", "expected"), [
    (skops_bytes(), ("skops", True)),
    (skops_untrusted_bytes(), ("skops", False)),
    (zip_bytes({"weights.bin": b"w"}), ("zip", False)),
    (zip_bytes({"../../outside.txt": b"x", "schema.json": b"{}"}), ("zip", False)),
    (zip_bytes({"/etc/cron.d/x": b"x"}), ("zip", False)),
    (onnx_like_bytes(), ("onnx", False)),
    (b"just some text", ("unknown", False)),
    (b"", ("unknown", False)),
    (b"PK\x03\x04 truncated zip", ("unknown", False)),
])
def test_artifact_formats_are_sniffed_from_bytes(content, expected):
    facts = artifact_sniff(io.BytesIO(content))
    assert (facts.format, facts.loadable) == expected


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_pickles_of_every_protocol_are_recognised(tmp_path, protocol):
    facts = artifact_sniff(io.BytesIO(pickle_canary_bytes(tmp_path / "c", protocol)))
    assert (facts.format, facts.loadable, facts.note) == ("pickle", False,
                                                          "pickle files are stored and hashed but never loaded")
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("compression", ["zlib", "gzip", "xz"])
def test_compressed_pickles_are_joblib(tmp_path, compression):
    facts = artifact_sniff(io.BytesIO(joblib_canary_bytes(tmp_path / "c", compression)))
    assert (facts.format, facts.loadable) == ("joblib", False)
    assert facts.note == ("joblib files are compressed pickles: stored and hashed but never loaded "
                          f"({compression}-compressed)")


def test_unsafe_zip_names_are_reported():
    facts = artifact_sniff(io.BytesIO(zip_bytes({"../evil": b"x"})))
    assert facts.note == "zip archive with unsafe entry names (absolute or '..'): stored and hashed, not loaded"


def test_csv_facts():
    facts = dataset_sniff(io.BytesIO(csv_bytes("a,b\n1,x\n2,y\n")))
    assert (facts.format, facts.row_count) == ("csv", 2)
    assert facts.schema == [{"name": "a", "dtype": "int64"}, {"name": "b", "dtype": "str"}]


def test_parquet_facts_come_from_metadata():
    facts = dataset_sniff(io.BytesIO(parquet_bytes()))
    assert (facts.format, facts.row_count) == ("parquet", 5)
    assert [column["name"] for column in facts.schema] == ["age", "score", "colour", "released"]


@pytest.mark.parametrize(("content", "code"), [
    (parquet_lying_footer_bytes(), "unreadable_dataset"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "unsupported_dataset_format"),
    (b"", "unsupported_dataset_format"),
    (b"a,b\n1,2\n3,4,5,6\n", "unreadable_dataset"),
    (b"\xff\xfe\xfa,b\n1,2\n", "unreadable_dataset"),
])
def test_unreadable_datasets_are_refused(content, code):
    with pytest.raises(ApplicationError) as caught:
        dataset_sniff(io.BytesIO(content))
    assert (caught.value.code, caught.value.status) == (code, 400)


@pytest.mark.django_db
def test_client_filename_never_reaches_storage(alice, model, storage_root, tmp_path):
    # given: a hostile file name
    artifact = upload(b"model-bytes", name="../../../../" + str(tmp_path / "escaped.bin"))
    # when
    version = services.model_version_register(actor=alice, model=model, artifact=artifact)
    # then
    assert stored_files(storage_root) == [version.storage_key]
    assert version.storage_key == blob_key(version.artifact_sha256)
    assert not (tmp_path / "escaped.bin").exists()


def test_header_only_csv_is_an_empty_dataset():
    facts = dataset_sniff(io.BytesIO(b"a,b\n"))
    assert (facts.format, facts.row_count, [c["name"] for c in facts.schema]) == ("csv", 0, ["a", "b"])
