"""A body sent without Content-Length (Transfer-Encoding: chunked) meets the endpoint's limit too.

Raw chunked HTTP (http.client, encode_chunked=True) against real servers:
- gunicorn (what docs/deploy.md runs) hands the application the decoded body: past the gate's
  limit it is the 413 `payload_too_large` error body, answered before any view (nothing written);
- Django's own server (pytest-django's live_server) hands the application no chunked body at
  all: 411 `length_required`, where the body used to be read as empty (a misleading 400).
And through Django's real WSGI handler with the environ gunicorn gives (decoded input, marked
terminated): a chunked body within the limit is read and served like one with a Content-Length.
"""

import http.client
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection

from governance.models import GateDecision
from tests.test_throttling import _key

pytestmark = pytest.mark.django_db(transaction=True)

GATE = "/api/v1/gate/"


def chunked_post(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """POST `body` in 8 KiB chunks with no Content-Length; the status and body of the answer."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        chunks = iter([body[i:i + 8192] for i in range(0, len(body), 8192)])
        conn.request("POST", path, body=chunks, headers={"Content-Type": "application/json", **headers},
                     encode_chunked=True)
        response = conn.getresponse()
        return response.status, response.read()
    except (BrokenPipeError, ConnectionResetError):  # the server answered before reading everything
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def gate_body(pad: int, model: str = "nope") -> bytes:
    return json.dumps({"model": model, "version": 1, "environment": "production", "artifact_sha256": "a" * 64,
                       "pad": "x" * pad}).encode()


def _database_url(tmp_path: Path) -> str:
    """The test database when another process can reach it (PostgreSQL), else a scratch SQLite file."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{host}/{db['NAME']}"
    return f"sqlite:///{tmp_path / 'scratch.sqlite3'}"


@pytest.fixture
def gunicorn(tmp_path):
    """gunicorn serving mlops_site.wsgi on a free loopback port; stopped (its own pid) afterwards."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update({"DATABASE_URL": _database_url(tmp_path), "ATTEST_VAR_DIR": str(tmp_path), "DEBUG": "0",
                "SECRET_KEY": "test-only-" + "x" * 40, "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "0",
                "ATTEST_ALLOW_KEY_FILE": "1", "LOG_LEVEL": "WARNING"})
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "mlops_site.wsgi:application",
                             "--bind", f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning"],
                            env=env, cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_a_chunked_gate_body_past_its_limit_is_413_on_gunicorn_and_writes_nothing(gunicorn, make_user):
    # given: a CI token (on PostgreSQL gunicorn shares the test database), a body past the gate's limit
    key = _key(make_user("ci-bot", roles=["ci_service"]), "gate:check")
    limit = settings.ATTEST_BODY_LIMITS[GATE]
    # when: sent chunked, with no Content-Length
    status, body = chunked_post("127.0.0.1", gunicorn, GATE, gate_body(limit), {"Authorization": f"Token {key}"})
    # then
    assert status == 413, body
    error = json.loads(body)["error"]
    assert error["code"] == "payload_too_large" and str(limit) in error["message"]
    assert "without Content-Length" in error["message"]
    assert GateDecision.objects.count() == 0


def test_djangos_own_server_cannot_read_a_chunked_body_so_it_is_411(live_server, make_user):
    # given
    key = _key(make_user("ci-bot", roles=["ci_service"]), "gate:check")
    url = urlsplit(live_server.url)
    # when: a small, valid body, chunked
    status, body = chunked_post(url.hostname, url.port, GATE, gate_body(10), {"Authorization": f"Token {key}"})
    # then: refused in words, not read as an empty body ("model: This field is required")
    assert status == 411, body
    assert json.loads(body)["error"]["code"] == "length_required"
    assert GateDecision.objects.count() == 0


def _wsgi(body: bytes, key: str) -> tuple[str, bytes]:
    """One request through Django's WSGI handler with the environ gunicorn builds for a chunked body."""
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": GATE, "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1", "CONTENT_TYPE": "application/json", "HTTP_TRANSFER_ENCODING": "chunked",
        "HTTP_AUTHORIZATION": f"Token {key}", "wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True,
        "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }
    answer: list[str] = []
    response = WSGIHandler()(environ, lambda status, headers, exc_info=None: answer.append(status))
    try:
        return answer[0], b"".join(response)
    finally:
        response.close()


def test_a_chunked_body_within_the_limit_is_read_like_one_with_a_content_length(make_user, settings):
    # given
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    key = _key(make_user("ci-bot", roles=["ci_service"]), "gate:check")
    limit = settings.ATTEST_BODY_LIMITS[GATE]
    # when
    small_status, small = _wsgi(gate_body(100), key)
    large_status, large = _wsgi(gate_body(limit), key)
    # then: the small body reached the gate (which does not know the model), the large one did not
    assert small_status.startswith("404"), small
    assert json.loads(small)["error"]["code"] == "not_found"
    assert large_status.startswith("413") and json.loads(large)["error"]["code"] == "payload_too_large"
    assert GateDecision.objects.count() == 0
