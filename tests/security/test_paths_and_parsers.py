"""Malicious artifacts, hostile paths and URIs, and the upload parsers under hypothesis (RELIABILITY.md, uploads).

- the canary corpus through the API: pickles of every protocol, joblib (zlib, gzip, xz), a skops
  file with an untrusted type, a zip with `../` and absolute entries, a Parquet file with a lying
  footer: the canary never appears, nothing is written outside the storage root, each is refused
  or stored unloaded with its reason;
- hostile file names (`../`, `..\\`, absolute, encoded dots, NUL) never reach a path;
- storage keys: only a lower-case hex sha256 becomes a key, and every key stays under `blobs/`;
- artifact URIs: only https, no userinfo, no loopback/link-local/private literal, and Attest never
  fetches them; webhook URLs: a resolver stub sends random names to blocked and public addresses,
  and every blocked one is refused before any connection;
- the dataset and artifact sniffers on random bytes: a fact or a coded 4xx refusal, never another
  exception (`make fuzz` runs ATTEST_PARSER_EXAMPLES of each).
"""

import io
import ipaddress
import os
import socket
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.notify.webhook import DeliveryRefused, webhook_target_check
from mlops_site.common.errors import ApplicationError
from registry import services
from registry.sniff import artifact_sniff, dataset_sniff
from registry.storage import blob_key
from tests.registry.factories import csv_bytes as _csv
from tests.registry.factories import (
    joblib_canary_bytes,
    parquet_bytes,
    parquet_lying_footer_bytes,
    pickle_canary_bytes,
    skops_untrusted_bytes,
    upload,
    zip_bytes,
)

PARSER_EXAMPLES = int(os.environ.get("ATTEST_PARSER_EXAMPLES", "150"))
FUZZ = settings(max_examples=PARSER_EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
def storage_root(settings, tmp_path) -> Path:
    root = tmp_path / "storage"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}}}
    return root


@pytest.fixture
def owner(make_user):
    return make_user("sec-owner", roles=["ml_engineer"])


@pytest.fixture
def model(owner):
    team = services.team_member_add(actor=None, team=services.team_create(actor=None, name="sec"), user=owner)
    return services.model_register(actor=owner, name="sec-model", team=team, risk_tier="limited")


def _files_outside(root: Path, base: Path) -> list[str]:
    return sorted(str(p) for p in base.rglob("*") if p.is_file() and root not in p.parents)


def _corpus(canary: Path) -> dict[str, bytes]:
    corpus = {f"pickle-protocol-{p}": pickle_canary_bytes(canary, protocol=p) for p in range(6)}
    corpus |= {f"joblib-{c}": joblib_canary_bytes(canary, c) for c in ("zlib", "gzip", "xz")}
    corpus["skops-untrusted-type"] = skops_untrusted_bytes()
    corpus["zip-dot-dot"] = zip_bytes({"../../escaped.txt": b"x", "/abs/escaped.txt": b"y"})
    corpus["zip-pickle-inside"] = zip_bytes({"model.pkl": pickle_canary_bytes(canary)})
    return corpus


def test_canary_corpus_is_never_executed_and_never_escapes(api_client, owner, model, storage_root, tmp_path):
    api_client.force_authenticate(owner)
    canary = tmp_path / "canary-was-executed"
    results = {}
    for name, content in _corpus(canary).items():
        response = api_client.post("/api/v1/model-versions/", {"model": model.name,
                                                               "artifact": upload(content, "../../" + name)},
                                   format="multipart")
        body = response.json()
        if response.status_code == 201:
            # Stored, hashed, never loaded, with the reason.
            assert body["artifact_loadable"] is False and body["artifact_note"], (name, body)
        else:
            assert response.status_code in (400, 415, 422) and set(body) == {"error"}, (name, body)
        results[name] = response.status_code
    lying = api_client.post("/api/v1/datasets/", {"name": "sec-data", "team": "sec"}, format="json")
    assert lying.status_code == 201
    footer = api_client.post("/api/v1/dataset-versions/", {"dataset": "sec-data",
                                                           "file": upload(parquet_lying_footer_bytes(), "x.parquet")},
                             format="multipart")
    assert footer.status_code == 400 and footer.json()["error"]["code"] in ("unreadable_dataset",
                                                                             "unsupported_dataset_format")
    assert not canary.exists()
    assert _files_outside(storage_root, tmp_path) == []
    assert not (tmp_path / "escaped.txt").exists() and not Path("/abs/escaped.txt").exists()
    assert len(results) == 12


HOSTILE_PIECES = ["..", "../", "..\\", "/", "\\", "%2e%2e%2f", "%2e%2e/", "..%2f", "\x00", "C:\\", "~", "etc",
                  "passwd", ".ssh", "a", "%00", "....//", "\u202e", "ＮＵＬ"]


def _raw_multipart(fields: dict[str, str], filename: str, content: bytes) -> bytes:
    """A multipart body as an attacker writes it: the file name goes over the wire untouched."""
    parts = [f'--B\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
             for key, value in fields.items()]
    parts.append(f'--B\r\nContent-Disposition: form-data; name="artifact"; filename="{filename}"\r\n'
                 'Content-Type: application/octet-stream\r\n\r\n'.encode() + content + b"\r\n--B--\r\n")
    return b"".join(parts)


@FUZZ
@given(name=st.lists(st.sampled_from(HOSTILE_PIECES), min_size=1, max_size=8).map("".join))
def test_hostile_upload_names_never_reach_a_path(name, api_client, owner, model, storage_root, tmp_path):
    api_client.force_authenticate(owner)
    content = os.urandom(16)
    response = api_client.generic("POST", "/api/v1/model-versions/",
                                  _raw_multipart({"model": model.name}, name, content),
                                  content_type="multipart/form-data; boundary=B")
    assert response.status_code in (201, 400), response.content[:300]
    if response.status_code == 400:
        assert set(response.json()) == {"error"}
    else:
        assert (storage_root / blob_key(response.json()["artifact_sha256"])).read_bytes() == content
    stored = sorted(p for p in storage_root.rglob("*") if p.is_file())
    assert all(p.relative_to(storage_root).parts[:2] == ("blobs", "sha256") for p in stored)
    assert _files_outside(storage_root, tmp_path) == []


@settings(max_examples=PARSER_EXAMPLES, deadline=None, database=None)
@given(value=st.one_of(st.text(max_size=80), st.text(alphabet="0123456789abcdef./\\%", min_size=60, max_size=70)))
def test_only_a_hex_sha256_becomes_a_storage_key(value):
    try:
        key = blob_key(value)
    except ValueError:
        return
    assert len(value) == 64 and all(ch in "0123456789abcdef" for ch in value)
    assert key.startswith("blobs/sha256/") and ".." not in key and "\\" not in key


BLOCKED_NETWORKS = ["127.0.0.0/8", "169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "0.0.0.0/8",
                    "::1/128", "fe80::/10", "fc00::/7", "100.64.0.0/10"]


def _address_in(network: str, index: int) -> str:
    net = ipaddress.ip_network(network)
    return str(net[index % net.num_addresses])


URI_PIECES = ["https://", "http://", "file://", "ftp://", "user:pw@", "@", "127.0.0.1", "169.254.169.254",
              "10.0.0.1", "[::1]", "localhost", "models.example.com", "/", "../", "%2e%2e/", "\\", ":443", ":99999",
              "\x00", "#", "?x=1", "0x7f000001", "2130706433", "metadata.google.internal", "a.local"]


@settings(max_examples=PARSER_EXAMPLES, deadline=None, database=None)
@given(uri=st.lists(st.sampled_from(URI_PIECES), min_size=1, max_size=7).map("".join))
def test_artifact_uris_are_https_to_public_names_only(uri):
    from urllib.parse import urlsplit

    try:
        accepted = services._artifact_uri_check(uri)
    except ApplicationError as exc:
        assert exc.code == "invalid_artifact_uri" and exc.status == 400
        return
    parts = urlsplit(accepted)
    assert parts.scheme == "https" and parts.hostname and "@" not in parts.netloc
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        assert parts.hostname not in ("localhost",) and not parts.hostname.endswith((".local", ".internal"))
    else:
        assert address.is_global, accepted


@settings(max_examples=PARSER_EXAMPLES, deadline=None, database=None)
@given(network=st.sampled_from(BLOCKED_NETWORKS), index=st.integers(min_value=0, max_value=2**32),
       host=st.from_regex(r"\A[a-z]{1,12}\.example\.(com|org)\Z"), public=st.booleans())
def test_webhook_hosts_resolving_to_blocked_ranges_are_refused(network, index, host, public):
    blocked = _address_in(network, index)
    # A resolver stub on loopback: the name answers the blocked address (and maybe a public one too).
    answers = [blocked, "93.184.216.34"] if public else [blocked]

    def resolve(name, port, type=socket.SOCK_STREAM):
        family = socket.AF_INET6 if ":" in blocked else socket.AF_INET
        return [(family, type, 6, "", (address, port)) for address in answers]

    with pytest.raises(DeliveryRefused):
        webhook_target_check(f"https://{host}/hook", allow_private=False, resolve=resolve)


def test_webhook_to_a_public_address_is_allowed():
    def resolve(name, port, type=socket.SOCK_STREAM):
        return [(socket.AF_INET, type, 6, "", ("93.184.216.34", port))]

    target = webhook_target_check("https://hooks.example.com/x", allow_private=False, resolve=resolve)
    assert target.addresses == ("93.184.216.34",)


MAGICS = [b"PAR1", b"PK\x03\x04", b"\x80\x04", b"\x1f\x8b", b"a,b\n", b"\xfd7zXZ\x00"]


@FUZZ
@given(data=st.one_of(st.binary(max_size=2048),
                      st.builds(lambda head, tail: head + tail, st.sampled_from(MAGICS), st.binary(max_size=1024)),
                      st.builds(lambda cut: parquet_bytes()[:cut], st.integers(0, 2000)),
                      st.builds(lambda cut: _csv()[:cut] + b"\xff\xfe,\"", st.integers(0, 60))))
def test_sniffers_answer_a_fact_or_a_coded_refusal(data):
    for sniff in (dataset_sniff, artifact_sniff):
        try:
            facts = sniff(io.BytesIO(data))
        except ApplicationError as exc:
            assert 400 <= exc.status < 500 and exc.code
            continue
        if sniff is artifact_sniff and facts.format in ("pickle", "joblib", "unknown", "zip"):
            assert facts.loadable is False
