"""Test settings: the real settings with a fast password hasher and small, isolated storage.

The database and the broker still come from the environment, so the same suite runs on
SQLite (eager Celery) and on PostgreSQL with a real worker.
"""

import os
import tempfile

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("ATTEST_VAR_DIR", tempfile.mkdtemp(prefix="attest-test-var-"))

from .settings import *  # noqa: E402,F403
from .settings import STORAGES, VAR_DIR  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ATTEST_STORAGE_ROOT = VAR_DIR / "storage"
STORAGES["default"]["OPTIONS"]["location"] = str(ATTEST_STORAGE_ROOT)
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
ATTEST_MAX_UPLOAD_BYTES = 2 * 1024 * 1024
SECURE_SSL_REDIRECT = False

from .settings import DATABASES  # noqa: E402

# Same database, with a flush that lifts the audit triggers between transactional tests.
DATABASES["default"]["ENGINE"] = DATABASES["default"]["ENGINE"].replace(
    "django.db.backends.", "mlops_site.common.testing.backends."
)

from .settings import STATIC_ROOT  # noqa: E402

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing root on every request
