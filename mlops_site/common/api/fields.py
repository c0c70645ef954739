"""Bounds of the numbers a request may carry, so that one past them is a 400, never a driver's overflow.

Ids are BigAutoField (64-bit); version numbers are PositiveIntegerField (32-bit on PostgreSQL). A
larger number would raise OverflowError in sqlite3 or NumericValueOutOfRange in PostgreSQL while
the row is looked up, i.e. a 500 for what is only bad input.
"""

ID_MAX = 2**63 - 1
VERSION_MAX = 2**31 - 1
