import hashlib
from collections.abc import Iterable

CHUNK = 1024 * 1024


def sha256_chunks(chunks: Iterable[bytes]) -> tuple[str, int]:
    """sha256 hex digest and byte count of a stream of chunks."""
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def sha256_file(fileobj) -> tuple[str, int]:
    fileobj.seek(0)
    result = sha256_chunks(iter(lambda: fileobj.read(CHUNK), b""))
    fileobj.seek(0)
    return result
