"""The disk fills up while an artifact is stored: 507 `insufficient_storage`, no partial file, no row, no event.

The storage root is a real 64 KiB tmpfs (mounted for the test; the suite runs as root in CI), so
the ENOSPC comes from the kernel half-way through the write, not from a patched function.
"""

import os
import subprocess
from pathlib import Path

import pytest

from governance.models import AuditEvent, AuditQueueEntry
from registry import services
from registry.models import ModelVersion


@pytest.fixture
def tiny_disk(tmp_path, settings):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                             capture_output=True, text=True, check=False)
    assert mounted.returncode == 0, f"cannot mount a tmpfs (the fault tests run as root): {mounted.stderr}"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(disk)}}}
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_disk_full_while_storing_an_artifact_is_507_and_leaves_nothing(api_client, make_user, tiny_disk):
    owner = make_user("disk-owner", roles=["ml_engineer"])
    team = services.team_member_add(actor=None, team=services.team_create(actor=None, name="disk"), user=owner)
    model = services.model_register(actor=owner, name="disk-model", team=team, risk_tier="minimal")
    events = AuditEvent.objects.count() + AuditQueueEntry.objects.count()
    api_client.force_authenticate(owner)
    from django.core.files.uploadedfile import SimpleUploadedFile

    big = SimpleUploadedFile("m.bin", os.urandom(200 * 1024))
    response = api_client.post("/api/v1/model-versions/", {"model": model.name, "artifact": big}, format="multipart")

    assert response.status_code == 507, response.content[:300]
    assert response.json()["error"]["code"] == "insufficient_storage"
    assert _files(tiny_disk) == []
    assert ModelVersion.objects.count() == 0
    assert AuditEvent.objects.count() + AuditQueueEntry.objects.count() == events
    # A small artifact still fits afterwards: the failure left the store usable.
    small = SimpleUploadedFile("s.bin", b"small artifact")
    again = api_client.post("/api/v1/model-versions/", {"model": model.name, "artifact": small}, format="multipart")
    assert again.status_code == 201 and len(_files(tiny_disk)) == 1
