from governance import db_triggers


class FlushingOperationsMixin:
    """Empties the test database with every append-only trigger lifted, then puts them all back.

    db_triggers.drop()/install() without a table list act on every table of
    db_triggers.PROTECTED_TABLES (audit log and evidence), so a table added there is covered here.
    """

    def execute_sql_flush(self, sql_list):
        db_triggers.drop(self.connection)
        try:
            super().execute_sql_flush(sql_list)
        finally:
            db_triggers.install(self.connection)
