"""A thin Python client over Attest's REST API (CONTRACT.md), standard library only.

    from attest_cli.client import AttestClient
    client = AttestClient("https://attest.example.com", token)
    answer = client.gate(model="credit", version=3, environment="production", artifact_sha256=digest)

Every failure (network, HTTP error, an answer that is not JSON) raises `AttestError` with one
readable line: the error contract's `code` and `message` when the server sent them.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

CHUNK = 1024 * 1024

ProgressCallback = Callable[[int, int], None]  # (bytes done, bytes total)


class AttestError(Exception):
    """The client could not get a usable answer. `status` and `code` when the server answered."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 fields: dict | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.fields = fields or {}


def sha256_file(path: str, progress: ProgressCallback | None = None) -> str:
    """The file's sha256, read in 1 MiB chunks (`progress(done, total)` after each)."""
    digest = hashlib.sha256()
    try:
        total = os.path.getsize(path)
        done = 0
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    except OSError as exc:
        raise AttestError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


class _Multipart:
    """A multipart/form-data body streamed from disk: fields first, then the file, in chunks."""

    def __init__(self, fields: dict[str, Any], file_field: str, file_path: str,
                 progress: ProgressCallback | None):
        self.boundary = "attest-" + secrets.token_hex(16)
        self.file_path = file_path
        self.progress = progress
        head = bytearray()
        for name, value in fields.items():
            if value is None:
                continue
            if isinstance(value, dict | list):
                value = json.dumps(value)
            head += (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                     f"{value}\r\n").encode()
        filename = os.path.basename(file_path).replace('"', "")
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        head += (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"{file_field}\"; "
                 f"filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n").encode()
        self.head = bytes(head)
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        try:
            self.file_size = os.path.getsize(file_path)
        except OSError as exc:
            raise AttestError(f"cannot read {file_path}: {exc.strerror or exc}") from exc
        self.length = len(self.head) + self.file_size + len(self.tail)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        done = 0
        with open(self.file_path, "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                done += len(chunk)
                yield chunk
                if self.progress:
                    self.progress(done, self.file_size)
        yield self.tail


class AttestClient:
    """One Attest server, one token. Methods return the decoded JSON answer."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0, user_agent: str = "attest-cli/0.1"):
        if not url or not token:
            raise AttestError("an Attest URL and an API token are required (ATTEST_URL, ATTEST_TOKEN)")
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise AttestError(f"not an http(s) URL: {url!r}")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.user_agent = user_agent

    # --- transport -----------------------------------------------------------------------------

    def request(self, method: str, path: str, *, body: Any = None, query: dict[str, Any] | None = None,
                data: Any = None, content_type: str | None = None, length: int | None = None) -> Any:
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json",
                   "User-Agent": self.user_agent}
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            content_type = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        if length is not None:
            headers["Content-Length"] = str(length)
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 # nosec B310 # http(s), __init__
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc) from exc
        except urllib.error.URLError as exc:
            raise AttestError(f"cannot reach {self.url}: {exc.reason}") from exc
        except (TimeoutError, OSError) as exc:
            raise AttestError(f"no answer from {self.url}: {exc}") from exc
        if not raw:
            return None
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise AttestError(f"the answer from {url} is not JSON") from exc

    def _http_error(self, exc: urllib.error.HTTPError) -> AttestError:
        retry = exc.headers.get("Retry-After") if exc.headers else None
        try:
            error = json.loads(exc.read().decode("utf-8"))["error"]
            message = f"HTTP {exc.code} {error['code']}: {error['message']}"
            if retry:
                message += f" (retry after {retry} s)"
            return AttestError(message, status=exc.code, code=error["code"], fields=error.get("fields") or {})
        except (ValueError, KeyError, TypeError, OSError):
            return AttestError(f"HTTP {exc.code} from {self.url}", status=exc.code)

    def upload(self, path: str, *, fields: dict[str, Any], file_field: str, file_path: str,
               progress: ProgressCallback | None = None) -> Any:
        body = _Multipart(fields, file_field, file_path, progress)
        return self.request("POST", path, data=iter(body), content_type=body.content_type, length=body.length)

    def _first(self, path: str, **query: Any) -> dict | None:
        page = self.request("GET", path, query={**query, "page_size": 1})
        results = (page or {}).get("results") or []
        return results[0] if results else None

    # --- registry ------------------------------------------------------------------------------

    def dataset_get(self, name: str) -> dict | None:
        """The dataset named exactly `name` (the list filter matches substrings), or None."""
        page = self.request("GET", "/api/v1/datasets/", query={"name": name, "page_size": 500})
        return next((d for d in (page or {}).get("results", []) if d["name"] == name), None)

    def dataset_create(self, *, name: str, team: str, description: str = "") -> dict:
        return self.request("POST", "/api/v1/datasets/", body={"name": name, "team": team,
                                                               "description": description})

    def dataset_version_upload(self, *, dataset: str, file_path: str, sha256: str | None = None,
                               progress: ProgressCallback | None = None, **fields: Any) -> dict:
        return self.upload("/api/v1/dataset-versions/", fields={"dataset": dataset, "sha256": sha256, **fields},
                           file_field="file", file_path=file_path, progress=progress)

    def model_get(self, name: str) -> dict | None:
        page = self.request("GET", "/api/v1/models/", query={"name": name, "page_size": 500})
        return next((m for m in (page or {}).get("results", []) if m["name"] == name), None)

    def model_create(self, *, name: str, team: str, risk_tier: str, **fields: Any) -> dict:
        return self.request("POST", "/api/v1/models/", body={"name": name, "team": team, "risk_tier": risk_tier,
                                                             **fields})

    def model_version_upload(self, *, model: str, file_path: str, artifact_sha256: str | None = None,
                             progress: ProgressCallback | None = None, **fields: Any) -> dict:
        return self.upload("/api/v1/model-versions/",
                           fields={"model": model, "artifact_sha256": artifact_sha256, **fields},
                           file_field="artifact", file_path=file_path, progress=progress)

    def model_version_get(self, *, model: str, version: int) -> dict:
        found = self._first("/api/v1/model-versions/", model=model, version=version)
        if found is None:
            raise AttestError(f"model {model!r} has no version {version} you can see", status=404, code="not_found")
        return found

    # --- evaluations, gate, deployments --------------------------------------------------------

    def evaluation_create(self, **body: Any) -> dict:
        return self.request("POST", "/api/v1/evaluations/", body={k: v for k, v in body.items() if v is not None})

    def evaluation_get(self, evaluation_id: Any) -> dict:
        return self.request("GET", f"/api/v1/evaluations/{evaluation_id}/")

    def evaluation_wait(self, evaluation_id: Any, *, timeout: float = 1800.0, interval: float = 1.0,
                        progress: Callable[[dict], None] | None = None) -> dict:
        """Poll until the evaluation succeeded or failed; AttestError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            evaluation = self.evaluation_get(evaluation_id)
            if progress:
                progress(evaluation)
            if evaluation.get("status") in ("succeeded", "failed"):
                return evaluation
            if time.monotonic() > deadline:
                raise AttestError(f"evaluation {evaluation_id} still {evaluation.get('status')} after {timeout:.0f} s")
            time.sleep(interval)

    def gate(self, *, model: str, version: int, environment: str, artifact_sha256: str) -> dict:
        return self.request("POST", "/api/v1/gate/", body={"model": model, "version": version,
                                                           "environment": environment,
                                                           "artifact_sha256": artifact_sha256})

    def deployment_record(self, *, model: str, version: int, environment: str, decision_id: str) -> dict:
        return self.request("POST", "/api/v1/deployments/", body={"model": model, "version": version,
                                                                  "environment": environment,
                                                                  "decision_id": decision_id})

    def approval_request_open(self, *, model_version: int, environment: str) -> dict:
        return self.request("POST", "/api/v1/approval-requests/", body={
            "kind": "deployment", "model_version": model_version, "environment": environment})
