"""The one place model artifacts are turned into Python objects.

Only skops files load, and only with the trusted types of settings.ATTEST_SKOPS_TRUSTED_TYPES
(never a list that came with the upload). Pickle, joblib and every other format are refused
before a byte of them is interpreted: unpickling is running the uploader's code.
"""

import hashlib
import io
from typing import Any

from django.conf import settings

from registry import errors, storage
from registry.models import ModelVersion
from registry.sniff import skops_untrusted_types

UNTRUSTED_FORMAT = "Artifacts in {format} format are never loaded; only skops files with trusted types are."
UNTRUSTED_TYPES = "The skops file uses types outside the trusted list: {types}."
NO_COPY = "Attest holds no copy of this artifact."
CORRUPTED = "The stored artifact no longer matches its registered sha256."


def model_version_load(version: ModelVersion) -> Any:
    """Load a model version's artifact with skops and the server's trusted-types list.

    Raises ApplicationError `untrusted_artifact_format` for anything but skops and
    `untrusted_artifact_types` when the file names a type the settings do not trust.
    """
    import skops.io as sio

    if version.artifact_format != ModelVersion.ArtifactFormat.SKOPS:
        raise errors.invalid(UNTRUSTED_FORMAT.format(format=version.artifact_format),
                             code="untrusted_artifact_format")
    if not version.storage_key:
        raise errors.invalid(NO_COPY, code="artifact_not_stored")
    with storage.blob_open(version.storage_key) as blob:
        # The stored format was sniffed at registration; check the bytes again, since the
        # trusted list may have shrunk since then.
        data = blob.read()
        if hashlib.sha256(data).hexdigest() != version.artifact_sha256:
            raise errors.invalid(CORRUPTED, code="artifact_corrupted", status=409)
        try:
            untrusted = skops_untrusted_types(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 - unreadable schema: refuse, never guess
            raise errors.invalid(UNTRUSTED_FORMAT.format(format="unreadable skops"),
                                 code="untrusted_artifact_format") from exc
        if untrusted:
            raise errors.invalid(UNTRUSTED_TYPES.format(types=", ".join(untrusted)), code="untrusted_artifact_types")
    return sio.loads(data, trusted=list(settings.ATTEST_SKOPS_TRUSTED_TYPES))
