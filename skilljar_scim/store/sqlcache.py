"""Queries compiled to SQL once, then run with new values (the request hot path).

Peewee turns a query into SQL text anew on every execution, and for the few statements
every SCIM request runs (the token, the user lookup, a user's groups
and roles, a filter of one shape) that compilation costs several times what SQLite takes to
answer. A query is built here with `param(i)` standing for its i-th value; the first
execution compiles it with peewee's public `Query.sql()`, later ones under the same key only
bind values and hand the SQL to `Database.execute_sql`. The SQL text depends on the query's
shape and the database's dialect, never on a value, so the key names the shape and the cache
is per database class.

Rows come back through the selected columns' own converters (`Field.python_value`): as
tuples (`tuples`), or as model instances (`instances`, `first`) for a query selecting whole rows
of one model (an aliased extra column becomes an attribute of that name on each instance). Values given for params are bound as they are: convert them to their stored
form first (peewee's field converters are skipped for params, as for any value marked
converter=False).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable, NamedTuple, Sequence

import peewee

from skilljar_scim.store import models

MAX_CACHED = 512  # shapes; filters come from clients, so their variety is bounded here
MAX_LISTED = 500  # longest IN list worth a statement of its own; longer ones compile each time
INSERT_BATCH = 100  # rows per INSERT statement: one statement shape per batch length up to this


class Slot:
    """Where the i-th value of an execution goes (not a tuple: peewee would expand one)."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index


def param(index: int) -> peewee.Value:
    """Stand for the `index`-th value passed at execution."""
    return peewee.Value(Slot(index), converter=False)


def params(start: int, count: int) -> list[peewee.Value]:
    """Stand for `count` values from `start` on (an IN list)."""
    return [param(start + i) for i in range(count)]


class _Compiled(NamedTuple):
    sql: str
    template: tuple  # parameters, Slot where a value is bound
    converters: tuple  # per selected column: its field's python_value, or None to keep the value
    model: type[peewee.Model] | None  # the model whose whole rows the query selects, else None
    names: tuple  # the model's field names, in the order selected


def _compile(query: peewee.BaseQuery) -> _Compiled:
    """Compile a query and work out, once, how its rows are converted (public peewee API only)."""
    sql, parameters = query.sql()
    columns = list(getattr(query, "selected_columns", None) or [])
    converters = tuple(c.python_value if isinstance(c, peewee.Field) else None for c in columns)
    model = getattr(query, "model", None)
    whole = model is not None and columns and all(_of(c, model) for c in columns)
    return _Compiled(sql, tuple(parameters), converters, model if whole else None,
                     tuple(c.name for c in columns) if whole else ())


def _of(column, model: type[peewee.Model]) -> bool:
    """Say whether a selected column is a field of `model`, or a named value set on its instances."""
    return (isinstance(column, peewee.Field) and column.model is model) or isinstance(column, peewee.Alias)


def _converted(converters: tuple, row: tuple) -> tuple:
    return tuple(v if c is None or v is None else c(v) for c, v in zip(converters, row))


class _Cache:
    """A bounded, thread-safe map of compiled statements, least recently used out first."""

    def __init__(self, size: int = MAX_CACHED):
        self.size = size
        self.entries: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], peewee.BaseQuery], db: peewee.Database) -> _Compiled:
        full = (type(db), key)
        with self.lock:
            found = self.entries.get(full)
            if found is not None:
                self.entries.move_to_end(full)
                return found
        compiled = _compile(build())
        with self.lock:
            self.entries[full] = compiled
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return compiled


_cache = _Cache()


def _bind(template: tuple, values: Sequence[Any]) -> list:
    return [values[p.index] if type(p) is Slot else p for p in template]


def _run(key: Hashable, build: Callable[[], peewee.BaseQuery], values: Sequence[Any],
         sole: bool = False) -> tuple[_Compiled, Any]:
    """Run the statement `build` returns (built once per key) with `values`; return it and its cursor.

    `sole`: the statement is all its read transaction reads (store/postgres.py Deferred.sole).
    """
    db = models.database.obj
    compiled = _cache.get(key, build, db)
    if sole:
        db.sole()
    # Both stores' databases take these (store/postgres.py Deferred; store/writelock.py WriteLocked).
    return compiled, db.execute_prepared(compiled.sql, _bind(compiled.template, values))


def tuples(key: Hashable, build: Callable[[], peewee.BaseQuery], values: Sequence[Any] = ()) -> list[tuple]:
    """Run the query `build` returns (built once per key) with `values`; return its rows as tuples."""
    compiled, cursor = _run(key, build, values)
    return [_converted(compiled.converters, row) for row in cursor.fetchall()]


def instances(key: Hashable, build: Callable[[], peewee.BaseQuery], values: Sequence[Any] = (),
              sole: bool = False) -> list[peewee.Model]:
    """Run a query selecting whole rows of one model (built once per key); return model instances.

    `sole`: the statement is all its read transaction reads (on PostgreSQL it needs no BEGIN).
    """
    compiled, cursor = _run(key, build, values, sole)
    if compiled.model is None:
        raise TypeError(f"statement {key!r} does not select whole rows of one model: use tuples()")
    model, names = compiled.model, compiled.names
    return [model(**dict(zip(names, _converted(compiled.converters, row)))) for row in cursor.fetchall()]


def first(key: Hashable, build: Callable[[], peewee.BaseQuery], values: Sequence[Any] = (),
          sole: bool = False) -> peewee.Model | None:
    """Return the first instance instances() gives, or None."""
    rows = instances(key, build, values, sole)
    return rows[0] if rows else None


def scalar(key: Hashable, build: Callable[[], peewee.BaseQuery], values: Sequence[Any] = ()) -> Any:
    """Return the first column of the first row (a COUNT), or None."""
    row = _run(key, build, values)[1].fetchone()
    return row[0] if row else None


def run(key: Hashable, build: Callable[[], peewee.BaseQuery], values: Sequence[Any] = ()) -> int:
    """Run a write statement (built once per key) with `values`; return the rows it changed."""
    return _run(key, build, values)[1].rowcount


def insert(model: type[peewee.Model], rows: list[dict], ignore_conflicts: bool = False, later: bool = False) -> int:
    """Insert rows that all name the same fields, INSERT_BATCH to a statement compiled once per shape.

    With `ignore_conflicts`, a row that would break a unique constraint is skipped (ON
    CONFLICT DO NOTHING, on both stores). With `later`, on PostgreSQL the rows go with the
    transaction's next statement or its COMMIT (store/postgres.py): for rows nothing in the
    transaction reads back or checks. Return the rows written (0 with `later`: not known yet).
    """
    if not rows:
        return 0
    names = tuple(rows[0])
    fields = [model._meta.fields[name] for name in names]
    written = 0
    for start in range(0, len(rows), INSERT_BATCH):
        batch = rows[start:start + INSERT_BATCH]
        key = ("insert", model.__name__, names, len(batch), ignore_conflicts)
        build = lambda count=len(batch): _insert_query(model, fields, count, ignore_conflicts)  # noqa: E731
        values = [f.db_value(row[name]) for row in batch for f, name in zip(fields, names)]
        if later:
            run_later(key, build, values)
        else:
            written += run(key, build, values)
    return written


def run_later(key: Hashable, build: Callable[[], peewee.BaseQuery], values: Sequence[Any] = ()) -> None:
    """Run a write whose result nothing reads: on PostgreSQL, with the transaction's next statement or COMMIT."""
    db = models.database.obj
    compiled = _cache.get(key, build, db)
    db.queue_write(compiled.sql, _bind(compiled.template, values))


def _insert_query(model: type[peewee.Model], fields: list, count: int, ignore_conflicts: bool) -> peewee.Insert:
    width = len(fields)
    query = model.insert_many([{f: param(i * width + j) for j, f in enumerate(fields)} for i in range(count)])
    # Not on_conflict_ignore(): on SQLite that is INSERT OR IGNORE, which skips a NOT NULL violation too.
    return query.on_conflict(action="NOTHING") if ignore_conflicts else query


def listed(key: Hashable, build: Callable[[list, list], peewee.BaseQuery], items: Sequence[Any],
           fixed: Sequence[Any] = (), write: bool = False):
    """Run a query over a list of values (an IN list): a select's rows as tuples, or the rows a write changed.

    `build(fixed_params, item_params)` makes the query. It is compiled once per list length
    up to MAX_LISTED; a longer list is built with the values themselves, every time.
    """
    if len(items) > MAX_LISTED:
        query = build(list(fixed), list(items))
        return query.execute() if write else list(query.tuples())
    count = len(fixed)
    values = [*fixed, *items]
    make = lambda: build(params(0, count), params(count, len(items)))  # noqa: E731
    return (run if write else tuples)((key, len(items)), make, values)


def save(instance: peewee.Model, is_new: bool, if_free: bool = False) -> bool:
    """Write every field of a model instance: an INSERT when new, else an UPDATE by primary key.

    `if_free`: a new row that would break a unique constraint is not written (no error); say
    whether the row was written. The statement itself is the check, under the write lock.
    """
    model, meta = type(instance), instance._meta
    data = {f.name: getattr(instance, _attribute(f)) for f in meta.sorted_fields}
    if is_new:
        return insert(model, [data], ignore_conflicts=if_free) == 1
    key = meta.primary_key
    fields = [f for f in meta.sorted_fields if f is not key]
    values = [f.db_value(data[f.name]) for f in fields] + [key.db_value(data[key.name])]
    return run(("update", model.__name__), lambda: model.update({f: param(i) for i, f in enumerate(fields)})
               .where(key == param(len(fields))), values) == 1


def _attribute(field: peewee.Field) -> str:
    """Return the attribute holding a field's stored value (a foreign key's id, not its row)."""
    return field.object_id_name if isinstance(field, peewee.ForeignKeyField) else field.name


def count_of(select: peewee.Select) -> peewee.Select:
    """Return the query counting the rows `select` gives (no grouping or DISTINCT: one row each)."""
    wrapped = select.order_by().select(peewee.SQL("1")).alias("_wrapped")
    # Bound to the store: unbound, it would compile with the default "?" placeholder, which
    # PostgreSQL refuses as soon as the select has a value (a filter).
    return peewee.Select([wrapped], [peewee.fn.COUNT(peewee.SQL("1"))]).bind(models.database)
