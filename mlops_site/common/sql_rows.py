"""Model instances from hand-written SQL, for the few hot paths where the ORM's compiler is the cost.

The ORM compiles every QuerySet anew on every call: 0.2–0.4 ms of CPU per query here, several
times what the database spends answering it (docs/BENCHMARKS.md, "Gate"). A hot path that asks
the same few questions on every request writes them once as SQL text built at import from the
models' own `_meta` (table and column names only; every value is a bound parameter), and turns
each row back into a model instance the way the ORM would: the database backend's converters,
then the field's (`from_db_value`), then `Model.from_db`. So a JSONField is decoded, a SQLite
datetime parsed and made aware, and the instance is indistinguishable from a QuerySet's.

Only `governance.hot_reads` and the other modules listed in tests/security/test_raw_sql.py
build SQL text; this module gives them column lists and row hydration, and no SQL of its own
beyond that.
"""

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from django.db import connection, models
from django.db.models.signals import post_save

M = TypeVar("M", bound=models.Model)

Converter = Callable[[Any, Any, Any], Any]
# (model, connection vendor) -> the attnames of its concrete fields, and (position, field,
# converters) of those that have converters: the rest pass through as the driver returned them.
_readers: dict[tuple[type[models.Model], str], tuple[list[str], list[tuple[int, Any, list[Converter]]]]] = {}


def cursor() -> Any:
    """A cursor for the hand-written statements: on PostgreSQL one that binds on the server.

    psycopg prepares a server-binding cursor's statements once they repeat (the connection's
    prepare_threshold, set in settings), so each hot statement is planned once per connection.
    The ORM keeps its client-binding cursors, which psycopg never prepares. Wrapped as Django
    wraps its own cursors: errors translated, queries logged and counted when they are.
    """
    if connection.vendor != "postgresql":
        return connection.cursor()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    raw = psycopg.Cursor(connection.connection)  # binds on the server (Django's own cursors bind on the client)
    # django-stubs type these as taking a CursorWrapper; Django passes them the driver's cursor.
    wrap = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
    return wrap(raw)  # type: ignore[arg-type]


def _fields(model: type[models.Model]) -> list[models.Field]:
    return list(model._meta.concrete_fields)


def select_list(model: type[models.Model], alias: str) -> str:
    """`alias."col1", alias."col2", …`: every concrete column of `model`, in the order from_db expects."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(field.column)}" for field in _fields(model))


def column_count(model: type[models.Model]) -> int:
    return len(_fields(model))


def _reader(model: type[models.Model]) -> tuple[list[str], list[tuple[int, Any, list[Converter]]]]:
    key = (model, connection.vendor)
    found = _readers.get(key)
    if found is None:
        converting = []
        for position, field in enumerate(_fields(model)):
            col = field.get_col(model._meta.db_table)
            # The compiler's order: the backend's converters, then the expression's (the field's).
            converters = [*connection.ops.get_db_converters(col), *col.get_db_converters(connection)]
            if converters:
                converting.append((position, field, converters))
        found = _readers[key] = ([field.attname for field in _fields(model)], converting)
    return found


def instance_from_row(model: type[M], row: Sequence[Any], start: int = 0) -> M:
    """The `model` instance whose columns (select_list order) begin at row[start]."""
    attnames, converting = _reader(model)
    values = list(row[start:start + len(attnames)])
    for position, field, converters in converting:
        value = values[position]
        for convert in converters:
            value = convert(value, field, connection)
        values[position] = value
    return model.from_db(connection.alias, attnames, values)


def insert(instance: models.Model) -> None:
    """INSERT a new instance in one hand-written statement, set its primary key, and send post_save.

    For append-only evidence written on a hot path (the gate's decision): the values pass through
    each field's pre_save and get_db_prep_save as Model.save() would pass them.
    """
    model = type(instance)
    fields = [field for field in _fields(model) if not field.primary_key]
    quote = connection.ops.quote_name
    values = [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
    statement = (f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
                 f"VALUES ({', '.join(['%s'] * len(fields))})")
    with cursor() as cursor_:
        if connection.features.can_return_columns_from_insert:
            cursor_.execute(statement + f" RETURNING {quote(model._meta.pk.column)}", values)
            pk = cursor_.fetchone()[0]
        else:
            cursor_.execute(statement, values)
            pk = cursor_.lastrowid
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = connection.alias
    post_save.send(sender=model, instance=instance, created=True, update_fields=None, raw=False,
                   using=connection.alias)
