"""List resources: filter (SQL where exact, Python for the rest), sort, page (RFC 7644 §3.4.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import peewee

from skilljar_scim.base import clock, textkey
from skilljar_scim.base.errors import InvalidValue
from skilljar_scim.scim import filter as scim_filter
from skilljar_scim.scim.schemas import Resolved, ResourceType, parse_attr_path
from skilljar_scim.domain.search import sql
from skilljar_scim.store import sqlcache

BATCH = 500


@dataclass(frozen=True)
class Query:
    """A list request: filter text, 1-based start index, page size, sorting (RFC 7644 §3.4.2)."""

    filter: str | None = None
    start_index: int = 1
    count: int = 100
    sort_by: str | None = None
    descending: bool = False


@dataclass(frozen=True)
class Page:
    total: int
    start_index: int
    resources: list[dict]


@dataclass(frozen=True)
class Source:
    """How one resource type is searched: its base query, columns and renderer."""

    rtype: ResourceType
    base: Callable[[], peewee.ModelSelect]
    columns: dict
    subqueries: dict
    sort_columns: dict
    tiebreak: peewee.Field
    render: Callable[[list], list[dict]]  # rows -> canonical resources, in order


@dataclass(frozen=True)
class _Select:
    """The SQL part of a list request: how to build its query (literals as params), their values, its shape.

    `query()` builds the query only when its statement is not compiled yet (store/sqlcache.py):
    building a peewee query with its joins costs more than running the compiled statement.
    """

    query: Callable[[], peewee.ModelSelect]
    values: tuple
    shape: tuple  # with a suffix naming the statement, it keys the compiled SQL (store/sqlcache.py)
    order: tuple = ()  # the ORDER BY the query has, for a page that reads its ids first (_window)

    def rows(self, name: str, build: Callable[[peewee.ModelSelect, int], peewee.Query], *more, sole: bool = False) -> list:
        """Run `build(query, first extra param index)`, binding this select's values then `more`."""
        return sqlcache.instances((*self.shape, name), lambda: build(self.query(), len(self.values)),
                                  (*self.values, *more), sole)

    def count(self) -> int:
        return sqlcache.scalar((*self.shape, "count"), lambda: sqlcache.count_of(self.query()), self.values)


def run(source: Source, query: Query, max_filter_length: int, max_filter_depth: int, sole: bool = False) -> Page:
    """Return the page of resources `query` asks for, with the total number of matches.

    `sole`: this search is all its read transaction reads (a view's one domain call), so a
    lookup that can match one resource at most is one statement, sent without BEGIN.
    """
    node = _parse(source.rtype, query.filter, max_filter_length, max_filter_depth)
    values = sql.Values()
    where, exact = sql.split(node, source.columns, source.subqueries, values) if node else (None, True)
    select = _filtered(source, where)
    order = _order(source, query)
    shape = (source.rtype.name, sql.shape(node) if node else None, exact,
             (query.sort_by or "").lower() if order is not None else None, query.descending)
    if exact and order is not None:
        single = node is not None and sql.at_most_one(node, source.columns)
        return _sql_page(_Select(lambda: select().order_by(*order), tuple(values), shape, tuple(order)), query, source,
                         single, sole)
    return _python_page(_Select(select, tuple(values), shape), node, query, source, order)


def _filtered(source: Source, where) -> Callable[[], peewee.ModelSelect]:
    """Return a builder of the source's base query narrowed by `where` (None: every row)."""
    return source.base if where is None else lambda: source.base().where(where)


def _parse(rtype: ResourceType, text: str | None, max_length: int, max_depth: int):
    if text is None or not text.strip():
        return None
    return scim_filter.parse(text, rtype, max_length=max_length, max_depth=max_depth)


def _order(source: Source, query: Query) -> list | None:
    """Return the SQL ORDER BY for sortBy, or None when the attribute is not a column."""
    if not query.sort_by:
        default = source.sort_columns[None]  # a column, or the columns of an index's order
        return [*(default if isinstance(default, tuple) else (default,)), source.tiebreak]
    try:
        resolved = source.rtype.resolve(parse_attr_path(query.sort_by, tuple(s.id for s in source.rtype.schemas)))
    except ValueError:
        resolved = None
    if resolved is None:
        raise InvalidValue(f"cannot sort by {query.sort_by!r}: no such attribute")
    if _sort_target(resolved) is None:
        raise InvalidValue(f"cannot sort by {query.sort_by!r}: it is complex, so name one of its sub-attributes")
    field = source.sort_columns.get(sql.key_of(resolved))
    if field is None:
        return None
    # RFC 7644 §3.4.2.3: resources without a value come last ascending, first descending.
    ordering = field.desc(nulls="FIRST") if query.descending else field.asc(nulls="LAST")
    return [ordering, source.tiebreak]


def _sql_page(select: _Select, query: Query, source: Source, single: bool = False, sole: bool = False) -> Page:
    if query.count and query.start_index == 1:
        # An IdP's lookup: a first page shorter than `count` is every match, and so is one of
        # a filter that matches one resource at most (`single`): no COUNT is needed. Then the page
        # is the whole read when the search is (`sole`): one statement.
        rows = select.rows("first", _first, query.count, sole=single and sole)
        total = len(rows) if len(rows) < query.count or single else select.count()
        return Page(total, 1, source.render(rows))
    total = select.count()
    if query.count == 0 or query.start_index > total:  # also keeps a huge OFFSET out of SQL
        return Page(total, query.start_index, [])
    first, end = query.start_index - 1, min(query.start_index - 1 + query.count, total)
    if total - end < first:  # nearer the end: walk the order backwards from there, as far as the page
        rows = select.rows("page_from_end", _window(source, select.order, backwards=True), total - end, end - first)
    else:
        rows = select.rows("page", _window(source, select.order), first, query.count)
    return Page(total, query.start_index, source.render(rows))


def _first(query: peewee.ModelSelect, at: int) -> peewee.ModelSelect:
    return query.limit(sqlcache.param(at))


def _window(source: Source, order: tuple, backwards: bool = False) -> Callable[[peewee.ModelSelect, int], peewee.ModelSelect]:
    """Build a page that finds its ids first, then reads only those rows, in the same order.

    An OFFSET skips rows by reading them: far into a listing, a page of whole rows read
    (on PostgreSQL, from the table as well as the index) every row before it. The ids come
    from the listing's index alone (schema 3 holds the id), so a deep page costs an index
    walk and 100 row reads; `backwards`, the walk starts from the end of the order (a page
    past the middle), so the last page costs what the first does (README "Performance").
    """
    walk = tuple(_reversed(term) for term in order) if backwards else order

    def build(query: peewee.ModelSelect, at: int) -> peewee.ModelSelect:
        ids = query.order_by(*walk).select(source.tiebreak).offset(sqlcache.param(at)).limit(sqlcache.param(at + 1))
        page = ids.alias("page")
        # A join, not `id IN (ids)`: SQLite would then walk the listing index over every row to
        # keep its order; joined, it reads the page's rows by primary key and sorts only those.
        return source.base().join_from(source.tiebreak.model, page, on=(source.tiebreak == page.c.id)).order_by(*order)

    return build


def _reversed(term) -> peewee.Ordering:
    """Return the ORDER BY term that lists the rows `term` lists, last first (nulls too: RFC 7644 §3.4.2.3)."""
    if not isinstance(term, peewee.Ordering):
        return term.desc()  # a bare column sorts ascending
    direction = "ASC" if term.direction.upper() == "DESC" else "DESC"
    nulls = {"first": "LAST", "last": "FIRST"}.get((term.nulls or "").lower())
    return peewee.Ordering(term.node, direction, term.collation, nulls)


def _python_page(select: _Select, node, query: Query, source: Source, order: list | None) -> Page:
    """Filter (and, when needed, sort) in Python over the SQL candidates, in batches."""
    streamed = tuple(order or [source.tiebreak])
    ordered = _Select(lambda: select.query().order_by(*streamed), select.values, select.shape, streamed)
    candidates = _in_time(_stream(ordered, source))
    matched = (r for r in candidates if not node or scim_filter.matches(node, r))
    if order is None:
        matched = iter(_python_sorted(list(matched), source.rtype, query))
    total, page = 0, []
    for resource in matched:
        total += 1
        if query.start_index <= total < query.start_index + query.count:
            page.append(resource)
    return Page(total, query.start_index, page)


def _in_time(resources: Iterator[dict]) -> Iterator[dict]:
    """Yield resources, checking the request's deadline before each (503 past it): this loop can be long."""
    for resource in resources:
        clock.check_deadline()
        yield resource


def _stream(select: _Select, source: Source) -> Iterator[dict]:
    offset = 0
    while True:
        rows = select.rows("page", _window(source, select.order), offset, BATCH)
        yield from source.render(rows)
        if len(rows) < BATCH:
            return
        offset += BATCH


def _python_sorted(resources: list[dict], rtype: ResourceType, query: Query) -> list[dict]:
    """Sort by any attribute; no value sorts last ascending, first descending (RFC 7644 §3.4.2.3)."""
    path = rtype.resolve(parse_attr_path(query.sort_by, tuple(s.id for s in rtype.schemas)))

    def key(resource: dict) -> tuple:
        value = _sort_value(resource, path)
        if isinstance(value, str) and not _sort_target(path).case_exact:
            value = textkey.key(value)
        return (value is None, "" if value is None else value)

    # sorted() is stable with reverse too: ties keep the tiebreak order of the SQL stream.
    return sorted(resources, key=key, reverse=query.descending)


def _sort_value(resource: dict, path: Resolved) -> object:
    """Return the value a resource sorts by: of the primary element, else the first (§3.4.2.3)."""
    attribute = path.attribute
    if not (attribute.multi_valued and attribute.type == "complex"):
        found = scim_filter.values_of(resource, path)
        return found[0] if found else None
    elements = [e for e in scim_filter.values_of(resource, Resolved(path.schema, attribute)) if isinstance(e, dict)]
    chosen = next((e for e in elements if e.get("primary") is True), elements[0] if elements else None)
    return chosen.get(_sort_target(path).name) if chosen is not None else None


def _sort_target(path: Resolved):
    """Return the simple attribute a path sorts by: itself, or a multi-valued one's `value`."""
    if path.target.type != "complex":
        return path.target
    return path.attribute.sub("value") if path.attribute.multi_valued else None
