"""Data built once for a test module, as Django's `setUpTestData` builds it once for a class."""

from contextlib import contextmanager

from django.db import transaction
from django.test import override_settings


@contextmanager
def module_data(django_db_blocker, **settings):
    """Write inside a transaction that is rolled back when the block ends (the module's last test).

    Each test of the module runs in a savepoint inside it (pytest-django's `db` fixture), so what a
    test writes is gone before the next one, and the expensive shared rows are built once.
    `settings` are overridden for the whole block.
    """
    with django_db_blocker.unblock(), override_settings(**settings), transaction.atomic():
        yield
        transaction.set_rollback(True)
