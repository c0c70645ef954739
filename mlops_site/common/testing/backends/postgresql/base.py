"""Test-only backend: the stock postgresql backend whose flush lifts the append-only triggers for its duration.

pytest-django empties the database between transactional tests with DELETE/TRUNCATE,
which the append-only triggers rightly refuse. Production never uses this backend.
"""

from django.db.backends.postgresql import base
from django.db.backends.postgresql.operations import DatabaseOperations as StockOperations

from mlops_site.common.testing.backends.flush import FlushingOperationsMixin


class DatabaseOperations(FlushingOperationsMixin, StockOperations):
    pass


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
