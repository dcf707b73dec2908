"""Translate the parts of a SCIM filter AST that map onto indexed columns into SQL.

What cannot be translated exactly (substring matches, `not`, attributes kept only in the
JSON document) is left to the Python evaluator: `split()` returns the SQL that narrows
the candidates and says whether it is exact. Identity providers' lookups (`userName eq`,
`externalId eq`, `id eq`, `emails.value eq`, `displayName eq`) always translate exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import peewee

from skilljar_scim.base import clock, textkey
from skilljar_scim.base.errors import InvalidValue
from skilljar_scim.scim import filter as scim_filter
from skilljar_scim.scim.schemas import Resolved
from skilljar_scim.store import sqlcache

Key = tuple[str, str | None]  # (attribute name, sub-attribute name), lowercase
# PostgreSQL cannot put a value of much over 2,700 bytes in a B-tree index, and case
# folding can make a key longer than its value (ß -> ss); no real userName, externalId, email or group name
# comes near this bound, so longer ones are refused instead of failing the write.
MAX_INDEXED_BYTES = 1024


@dataclass(frozen=True)
class Column:
    """How one attribute is stored: a column, and how a literal becomes its stored form."""

    field: peewee.Field
    convert: Callable[[object], object]


@dataclass(frozen=True)
class Subquery:
    """An attribute kept in a side table: `build(placeholder)` selects the owners of a stored value."""

    build: Callable[[peewee.Node], peewee.Expression]
    convert: Callable[[object], object]


class Values(list):
    """The values a translated filter binds, in the order of its `sqlcache.param`s."""

    def bind(self, value: object) -> peewee.Value:
        self.append(value)
        return sqlcache.param(len(self) - 1)


def shape(node: scim_filter.Node) -> tuple:
    """Return what a filter's SQL depends on: its structure, attributes and operators, no literal.

    Two filters of one shape translate to the same SQL text with other values bound, so the
    shape keys the compiled statement (store/sqlcache.py).
    """
    if isinstance(node, (scim_filter.And, scim_filter.Or)):
        return (type(node).__name__, shape(node.left), shape(node.right))
    if isinstance(node, scim_filter.Not):
        return ("not", shape(node.inner))
    if isinstance(node, scim_filter.ValuePath):
        return ("[]", key_of(node.path), shape(node.filter))
    if isinstance(node, scim_filter.Compare):
        return ("cmp", key_of(node.path), node.op, node.value is None)
    return ("pr", key_of(node.path))


def at_most_one(node: scim_filter.Node, columns: dict[Key, Column]) -> bool:
    """Say whether a filter can match one resource at most: it requires a unique column to equal a value."""
    if isinstance(node, scim_filter.And):
        return at_most_one(node.left, columns) or at_most_one(node.right, columns)
    if not (isinstance(node, scim_filter.Compare) and node.op == "eq" and node.value is not None):
        return False
    column = columns.get(key_of(node.path))
    return column is not None and bool(column.field.unique or column.field.primary_key)


def key_of(path: Resolved) -> Key:
    """Return the lookup key of a resolved path (extension attributes are not columns)."""
    if path.is_extension:
        return ("", None)
    return (path.attribute.name.lower(), path.sub.name.lower() if path.sub else None)


def split(node: scim_filter.Node, columns: dict[Key, Column], subqueries: dict[Key, Subquery],
          values: Values | None = None) -> tuple:
    """Return (sql or None, exact): SQL that selects a superset, exact when it selects just the matches.

    The SQL's literals are params; `values` receives what they bind, in order.
    """
    values = Values() if values is None else values
    sql = translate(node, columns, subqueries, values)
    if sql is not None:
        return sql, True
    del values[:]  # the parts below bind afresh
    if isinstance(node, scim_filter.And):
        parts = [translate(n, columns, subqueries, values) for n in _conjuncts(node)]
        usable = [p for p in parts if p is not None]
        if usable:
            return _all(usable), False
    return None, False


def translate(node, columns: dict[Key, Column], subqueries: dict[Key, Subquery], values: Values):
    """Translate `node` into an exact SQL expression, or return None (binding nothing then)."""
    mark = len(values)
    sql = _translate(node, columns, subqueries, values)
    if sql is None:
        del values[mark:]
    return sql


def _translate(node, columns: dict[Key, Column], subqueries: dict[Key, Subquery], values: Values):
    if isinstance(node, scim_filter.And):
        return _both(node, columns, subqueries, values, lambda a, b: a & b)
    if isinstance(node, scim_filter.Or):
        return _both(node, columns, subqueries, values, lambda a, b: a | b)
    if isinstance(node, scim_filter.Compare):
        return _compare(node, columns, subqueries, values)
    if isinstance(node, scim_filter.Present):
        column = columns.get(key_of(node.path))
        return column.field.is_null(False) if column else None
    if isinstance(node, scim_filter.ValuePath):
        return _value_path(node, subqueries, values)
    return None  # `not` is left to Python: SQL's NULL logic differs from SCIM's


def _both(node, columns, subqueries, values: Values, combine):
    left = _translate(node.left, columns, subqueries, values)
    right = _translate(node.right, columns, subqueries, values) if left is not None else None
    return combine(left, right) if left is not None and right is not None else None


def _compare(node: scim_filter.Compare, columns: dict[Key, Column], subqueries: dict[Key, Subquery], values: Values):
    key = key_of(node.path)
    if key in subqueries and node.op == "eq" and node.value is not None:
        return _subquery(subqueries[key], node.value, values)
    column = columns.get(key)
    if column is None:
        return None
    if node.value is None:
        return column.field.is_null(node.op == "eq")
    if node.op not in _OPERATORS:
        return None
    return _OPERATORS[node.op](column.field, values.bind(column.field.db_value(column.convert(node.value))))


def _subquery(subquery: Subquery, value: object, values: Values):
    return subquery.build(values.bind(subquery.convert(value)))


def _value_path(node: scim_filter.ValuePath, subqueries: dict[Key, Subquery], values: Values):
    inner = node.filter
    if isinstance(inner, scim_filter.Compare) and inner.op == "eq" and inner.value is not None:
        handler = subqueries.get(key_of(inner.path))
        return _subquery(handler, inner.value, values) if handler else None
    return None


_OPERATORS = {
    "eq": lambda f, v: f == v,
    # SCIM `ne` is true when the attribute is absent too (see scim/filter.py).
    "ne": lambda f, v: f.is_null() | (f != v),
    "gt": lambda f, v: f > v,
    "ge": lambda f, v: f >= v,
    "lt": lambda f, v: f < v,
    "le": lambda f, v: f <= v,
}


def _conjuncts(node) -> list:
    if isinstance(node, scim_filter.And):
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node]


def _all(parts: list):
    expression = parts[0]
    for part in parts[1:]:
        expression = expression & part
    return expression


def check_indexable(name: str, value: object) -> None:
    """Raise invalidValue when a value stored in an index, or its key, is over MAX_INDEXED_BYTES."""
    if not isinstance(value, str):
        return
    if max(len(value.encode("utf-8")), len(textkey.key(value).encode("utf-8"))) > MAX_INDEXED_BYTES:
        raise InvalidValue(f"{name} must be at most {MAX_INDEXED_BYTES} bytes long (UTF-8)")


def exact(value: object) -> object:
    return value


def moment(value: object) -> datetime:
    return clock.parse_iso(str(value))
