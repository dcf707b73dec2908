"""Queries compiled to SQL once, then run with new values (the request hot path).

Peewee turns a query into SQL text anew on every execution, and for the few statements
every SCIM request runs (rate-limit counters, the token, the user lookup, a user's groups
and roles) that compilation costs several times what SQLite takes to answer. A query is
built here with `param(i)` standing for its i-th value; the first execution compiles it,
later ones under the same key only bind values. The SQL text depends on the query's shape
and the database's dialect, never on a value, so the key names the shape and the cache is
per database class.

Values given for params are bound as they are: convert them to their stored form first
(peewee's field converters are skipped for params, as for any value marked converter=False).
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
    query: peewee.BaseQuery
    sql: str
    template: tuple  # parameters, Slot where a value is bound
    decode: Callable[[Any], list]  # cursor -> rows, as peewee would give them


def _decoder(query: peewee.BaseQuery) -> Callable[[Any], list]:
    """Return how to turn a cursor into the query's rows, with peewee's converters.

    Peewee's own cursor wrapper works out the columns again for every cursor, which costs
    as much as a lookup itself; a statement's columns never change, so for the two row types
    the hot path uses (whole models of one table, and tuples) that work is done once here.
    """
    if not isinstance(query, peewee.ModelSelect):
        return lambda cursor: list(query._get_cursor_wrapper(cursor))
    columns = query._returning or []
    row_type = query._row_type or query.default_row_type
    converters = [c.python_value if isinstance(c, peewee.Field) else None for c in columns]
    if row_type == peewee.ROW.TUPLE:
        return lambda cursor: [tuple(_converted(converters, row)) for row in cursor.fetchall()]
    model = query.model
    whole_model = (row_type == peewee.ROW.MODEL and not query._joins and query._from_list == [model]
                   and all(isinstance(c, peewee.Field) and c.model is model for c in columns))
    if whole_model:
        names = [c.name for c in columns]
        return lambda cursor: [_instance(model, names, _converted(converters, row)) for row in cursor.fetchall()]
    return lambda cursor: list(query._get_cursor_wrapper(cursor))


def _converted(converters: list, row: tuple):
    return (v if c is None or v is None else c(v) for c, v in zip(converters, row))


def _instance(model, names: list[str], values) -> peewee.Model:
    instance = model(__no_default__=1, **dict(zip(names, values)))
    instance._dirty.clear()  # as loaded, nothing to save
    return instance


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
        query = build()
        sql, parameters = query.sql()
        compiled = _Compiled(query, sql, tuple(parameters), _decoder(query))
        with self.lock:
            self.entries[full] = compiled
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return compiled


_cache = _Cache()


def _bind(template: tuple, values: Sequence[Any]) -> list:
    return [values[p.index] if type(p) is Slot else p for p in template]


def _run(key: Hashable, build: Callable[[], peewee.BaseQuery], values: Sequence[Any]) -> tuple[_Compiled, Any]:
    """Run the statement `build` returns (built once per key) with `values`; return it and its cursor."""
    db = models.database.obj
    compiled = _cache.get(key, build, db)
    return compiled, db.execute_sql(compiled.sql, _bind(compiled.template, values))


def execute(key: Hashable, build: Callable[[], peewee.BaseQuery], values: Sequence[Any] = ()) -> list:
    """Run the query `build` returns (built once per key) with `values`; return its rows.

    Rows come as the query would give them: model instances, tuples or dicts.
    """
    compiled, cursor = _run(key, build, values)
    return compiled.decode(cursor)


def first(key: Hashable, build: Callable[[], peewee.BaseQuery], values: Sequence[Any] = ()) -> Any:
    """Return the first row of execute(), or None."""
    rows = execute(key, build, values)
    return rows[0] if rows else None


def scalar(key: Hashable, build: Callable[[], peewee.BaseQuery], values: Sequence[Any] = ()) -> Any:
    """Return the first column of the first row (a COUNT), or None."""
    row = _run(key, build, values)[1].fetchone()
    return row[0] if row else None


def run(key: Hashable, build: Callable[[], peewee.BaseQuery], values: Sequence[Any] = ()) -> int:
    """Run a write statement (built once per key) with `values`; return the rows it changed."""
    return _run(key, build, values)[1].rowcount


def insert(model: type[peewee.Model], rows: list[dict], ignore_conflicts: bool = False) -> None:
    """Insert rows that all name the same fields, INSERT_BATCH to a statement compiled once per shape.

    With `ignore_conflicts`, a row that would break a unique constraint is skipped.
    """
    if not rows:
        return
    names = tuple(rows[0])
    fields = [model._meta.fields[name] for name in names]
    for start in range(0, len(rows), INSERT_BATCH):
        batch = rows[start:start + INSERT_BATCH]
        run(("insert", model.__name__, names, len(batch), ignore_conflicts),
            lambda count=len(batch): _insert_query(model, fields, count, ignore_conflicts),
            [f.db_value(row[name]) for row in batch for f, name in zip(fields, names)])


def _insert_query(model: type[peewee.Model], fields: list, count: int, ignore_conflicts: bool) -> peewee.Insert:
    width = len(fields)
    query = model.insert_many([{f: param(i * width + j) for j, f in enumerate(fields)} for i in range(count)])
    return query.on_conflict_ignore() if ignore_conflicts else query


def listed(key: Hashable, build: Callable[[list, list], peewee.BaseQuery], items: Sequence[Any],
           fixed: Sequence[Any] = (), write: bool = False):
    """Run a query over a list of values (an IN list): rows of a select, or the rows a write changed.

    `build(fixed_params, item_params)` makes the query. It is compiled once per list length
    up to MAX_LISTED; a longer list is built with the values themselves, every time.
    """
    if len(items) > MAX_LISTED:
        query = build(list(fixed), list(items))
        return query.execute() if write else list(query)
    count = len(fixed)
    values = [*fixed, *items]
    make = lambda: build(params(0, count), params(count, len(items)))  # noqa: E731
    return (run if write else execute)((key, len(items)), make, values)


def save(instance: peewee.Model, is_new: bool) -> None:
    """Write every field of a model instance: an INSERT when new, else an UPDATE by primary key."""
    model, meta = type(instance), instance._meta
    data = {f.name: instance.__data__.get(f.name) for f in meta.sorted_fields}
    if is_new:
        insert(model, [data])
        return
    key = meta.primary_key
    fields = [f for f in meta.sorted_fields if f is not key]
    values = [f.db_value(data[f.name]) for f in fields] + [key.db_value(data[key.name])]
    run(("update", model.__name__), lambda: model.update({f: param(i) for i, f in enumerate(fields)})
        .where(key == param(len(fields))), values)


def count_of(select: peewee.Select) -> peewee.Select:
    """Return the query counting the rows `select` gives (no grouping or DISTINCT: one row each)."""
    wrapped = select.order_by().select(peewee.SQL("1")).alias("_wrapped")
    return peewee.Select([wrapped], [peewee.fn.COUNT(peewee.SQL("1"))])
