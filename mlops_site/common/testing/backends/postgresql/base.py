"""Test-only backend: the stock postgresql backend whose flush lifts the audit triggers for its duration.

pytest-django empties the database between transactional tests with DELETE/TRUNCATE,
which the append-only triggers rightly refuse. Production never uses this backend.
"""

from django.db.backends.postgresql import base

from mlops_site.common.testing.backends.flush import FlushingOperationsMixin


class DatabaseOperations(FlushingOperationsMixin, base.DatabaseOperations):
    pass


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
