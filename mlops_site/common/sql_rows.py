"""Model instances from hand-written SQL, for the few hot paths where the ORM's compiler is the cost.

The ORM compiles every QuerySet anew on every call: 0.2–0.4 ms of CPU per query here, several
times what the database spends answering it (docs/BENCHMARKS.md, "Gate"). A hot path that asks
the same few questions on every request writes them once as SQL text built at import from the
models' own `_meta` (table and column names only; every value is a bound parameter), and turns
each row back into a model instance the way the ORM would: the database backend's converters,
then the field's (`from_db_value`), then `Model.from_db`. So a JSONField is decoded, a SQLite
datetime parsed and made aware, and the instance is indistinguishable from a QuerySet's.

On PostgreSQL a caller that knows its next reads in advance sends them in one round trip
(`read_ahead`, psycopg's pipeline mode): a round trip cost about as much CPU, client and server
together, as the statement itself (docs/BENCHMARKS.md, "Gate").

Only `governance.hot_reads` and the other modules listed in tests/security/test_raw_sql.py
build SQL text; this module gives them column lists and row hydration, and no SQL of its own
beyond that.
"""

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models.signals import post_save

M = TypeVar("M", bound=models.Model)

Converter = Callable[[Any, Any, Any], Any]
# (model, connection vendor) -> the attnames of its concrete fields, and (position, field,
# converters) of those that have converters: the rest pass through as the driver returned them.
_readers: dict[tuple[type[models.Model], str], tuple[list[str], list[tuple[int, Any, list[Converter]]]]] = {}

Statement = tuple[str, Sequence[Any]]


def _db() -> Any:
    # The connection itself, looked up once: every attribute of the `connection` proxy is a
    # thread-local look-up, and the hot paths read several (a tenth of the gate's CPU).
    return connections[DEFAULT_DB_ALIAS]


def cursor() -> Any:
    """A cursor for the hand-written statements: on PostgreSQL one that binds on the server.

    psycopg prepares a server-binding cursor's statements once they repeat (the connection's
    prepare_threshold, set in settings), so each hot statement is planned once per connection.
    The ORM keeps its client-binding cursors, which psycopg never prepares. Wrapped as Django
    wraps its own cursors: errors translated, queries logged and counted when they are.
    """
    db = _db()
    if db.vendor != "postgresql":
        return db.cursor()
    db.ensure_connection()
    db.validate_thread_sharing()
    raw = psycopg.Cursor(db.connection)  # binds on the server (Django's own cursors bind on the client)
    # Wrapped as Django wraps the driver's cursors (make_cursor / make_debug_cursor).
    wrap = db.make_debug_cursor if db.queries_logged else db.make_cursor
    return wrap(raw)


def fetch_rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Every row of one statement: the answer `read_ahead` already fetched, else a round trip of its own."""
    ahead = getattr(_db(), "_attest_read_ahead", None)
    if ahead:
        rows = ahead.pop((sql, tuple(params)), None)
        if rows is not None:
            return rows
    with cursor() as cursor_:
        cursor_.execute(sql, params)
        return cursor_.fetchall()


@contextlib.contextmanager
def read_ahead(statements: Sequence[Statement]) -> Iterator[None]:
    """Send these reads now, in one round trip; inside the block `fetch_rows` answers each from that.

    PostgreSQL only (psycopg's pipeline mode, with the first statement of a transaction its BEGIN
    rides along); elsewhere, or when libpq has no pipeline mode, nothing is read ahead and each
    read runs when asked. Each answer serves one `fetch_rows` of the same text and parameters,
    and whatever the block did not ask for is dropped at its end, so nothing outlives the
    transaction it was read in. Each statement is its own snapshot, as it would be one by one.
    """
    db = _db()
    if (db.vendor != "postgresql" or not psycopg.Pipeline.is_supported()
            or getattr(db, "_attest_read_ahead", None) is not None):  # nested: the outer block's answers stand
        yield
        return
    db.ensure_connection()
    cursors = []
    with db.wrap_database_errors, db.connection.pipeline():
        for sql, params in statements:
            cursor_ = cursor()
            cursor_.execute(sql, params)
            cursors.append(cursor_)
    ahead = {}
    for (sql, params), cursor_ in zip(statements, cursors, strict=True):
        with cursor_:
            ahead[(sql, tuple(params))] = cursor_.fetchall()
    db._attest_read_ahead = ahead
    try:
        yield
    finally:
        db._attest_read_ahead = None


def _fields(model: type[models.Model]) -> list[models.Field]:
    return list(model._meta.concrete_fields)


def select_list(model: type[models.Model], alias: str) -> str:
    """`alias."col1", alias."col2", …`: every concrete column of `model`, in the order from_db expects."""
    quote = _db().ops.quote_name
    return ", ".join(f"{alias}.{quote(field.column)}" for field in _fields(model))


def column_count(model: type[models.Model]) -> int:
    return len(_fields(model))


def _reader(db: Any, model: type[models.Model]) -> tuple[list[str], list[tuple[int, Any, list[Converter]]]]:
    key = (model, db.vendor)
    found = _readers.get(key)
    if found is None:
        converting = []
        for position, field in enumerate(_fields(model)):
            col = field.get_col(model._meta.db_table)
            # The compiler's order: the backend's converters, then the expression's (the field's).
            converters = [*db.ops.get_db_converters(col), *col.get_db_converters(db)]
            if converters:
                converting.append((position, field, converters))
        found = _readers[key] = ([field.attname for field in _fields(model)], converting)
    return found


def instance_from_row(model: type[M], row: Sequence[Any], start: int = 0) -> M:
    """The `model` instance whose columns (select_list order) begin at row[start]."""
    db = _db()
    attnames, converting = _reader(db, model)
    values = list(row[start:start + len(attnames)])
    for position, field, converters in converting:
        value = values[position]
        for convert in converters:
            value = convert(value, field, db)
        values[position] = value
    return model.from_db(db.alias, attnames, values)


def insert(instance: models.Model) -> None:
    """INSERT a new instance in one hand-written statement, set its primary key, and send post_save.

    For append-only evidence written on a hot path (the gate's decision): the values pass through
    each field's pre_save and get_db_prep_save as Model.save() would pass them.
    """
    db = _db()
    model = type(instance)
    fields = [field for field in _fields(model) if not field.primary_key]
    quote = db.ops.quote_name
    values = [field.get_db_prep_save(field.pre_save(instance, True), db) for field in fields]
    statement = (f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
                 f"VALUES ({', '.join(['%s'] * len(fields))})")
    with cursor() as cursor_:
        if db.features.can_return_columns_from_insert:
            cursor_.execute(statement + f" RETURNING {quote(model._meta.pk.column)}", values)
            pk = cursor_.fetchone()[0]
        else:
            cursor_.execute(statement, values)
            pk = cursor_.lastrowid
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = db.alias
    post_save.send(sender=model, instance=instance, created=True, update_fields=None, raw=False, using=db.alias)
