from governance import db_triggers


class FlushingOperationsMixin:
    def execute_sql_flush(self, sql_list):
        db_triggers.drop(self.connection)
        try:
            super().execute_sql_flush(sql_list)
        finally:
            db_triggers.install(self.connection)
