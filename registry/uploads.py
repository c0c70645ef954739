"""Upload handling: every uploaded file is hashed while it streams in, and cut off at the limit."""

import hashlib

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from mlops_site.common.errors import PayloadTooLargeError


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Streams to a temporary file, computing sha256 and size; refuses past ATTEST_MAX_UPLOAD_BYTES."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        limit = settings.ATTEST_MAX_UPLOAD_BYTES
        if content_length and content_length > limit + 64 * 1024:
            # Refused from the header, before reading the body.
            raise PayloadTooLargeError(f"The upload is larger than the limit of {limit} bytes.")
        return None

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self._digest = hashlib.sha256()
        self._received = 0

    def receive_data_chunk(self, raw_data, start):
        self._received += len(raw_data)
        if self._received > settings.ATTEST_MAX_UPLOAD_BYTES:
            self.file.close()
            raise PayloadTooLargeError(
                f"The upload is larger than the limit of {settings.ATTEST_MAX_UPLOAD_BYTES} bytes."
            )
        self._digest.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        uploaded = super().file_complete(file_size)
        if uploaded is not None:
            uploaded.sha256 = self._digest.hexdigest()
        return uploaded
