"""Content-addressed blob storage on Django's default storage.

A blob's key is derived only from its sha256 (`blobs/sha256/ab/cd/<hex>`), never from a name a
client sent, so identical content is stored once and no client input reaches a path.
"""

import errno
import re
from dataclasses import dataclass

from django.core.files import File
from django.core.files.storage import default_storage

from mlops_site.common.hashing import sha256_file
from registry import errors

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class StoredBlob:
    """Where a blob lives; `created` is true when this call wrote it (so a failed caller removes it)."""

    key: str
    sha256: str
    size: int
    created: bool


def sha256_is_valid(value: str) -> bool:
    return bool(_SHA256.match(value or ""))


def blob_key(sha256: str) -> str:
    """The storage key of a sha256: only hex reaches the path, so nothing can escape the root."""
    if not sha256_is_valid(sha256):
        raise ValueError("blob_key() needs a lower-case hex sha256")
    return f"blobs/sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def file_digest(file: File) -> tuple[str, int]:
    """sha256 and size of a file; reuses the digest the hashing upload handler computed while streaming."""
    precomputed = getattr(file, "sha256", None)
    if precomputed and getattr(file, "size", None) is not None:
        return precomputed, file.size
    return sha256_file(file)


def declared_sha256_check(*, declared: str | None, actual: str, field: str) -> None:
    """Refuse content whose hash differs from the one the client declared (before anything is written)."""
    if declared is None or declared == "":
        return
    declared = declared.strip().lower()
    if not sha256_is_valid(declared):
        raise errors.invalid_sha256(field=field)
    if declared != actual:
        raise errors.artifact_hash_mismatch(declared=declared, actual=actual, field=field)


def blob_store(*, file: File, sha256: str, size: int) -> StoredBlob:
    """Store the file under its content key unless that content is already stored."""
    key = blob_key(sha256)
    if default_storage.exists(key):
        return StoredBlob(key=key, sha256=sha256, size=size, created=False)
    file.seek(0)
    try:
        saved = default_storage.save(key, file)
    except OSError as exc:
        # Disk full (or over quota) half-way: remove the partial blob, refuse with a code, and let
        # the caller's transaction write no row (tests/faults/test_disk_full.py).
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        if default_storage.exists(key):
            default_storage.delete(key)
        raise errors.insufficient_storage() from exc
    if saved != key:
        # Another request stored the same content between exists() and save(); the storage
        # picked a fresh name for the duplicate, which nobody needs.
        default_storage.delete(saved)
        return StoredBlob(key=key, sha256=sha256, size=size, created=False)
    return StoredBlob(key=key, sha256=sha256, size=size, created=True)


def blob_discard(blob: StoredBlob) -> None:
    """Remove a blob this request wrote, when the registration it belonged to failed."""
    if blob.created and default_storage.exists(blob.key):
        default_storage.delete(blob.key)


def blob_open(key: str):
    """Open a stored blob for reading (binary)."""
    return default_storage.open(key, "rb")


def blob_path(key: str) -> str | None:
    """A local filesystem path of the blob, when the storage has one (local disk)."""
    try:
        return default_storage.path(key)
    except NotImplementedError:
        return None
