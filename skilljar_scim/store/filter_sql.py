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

from skilljar_scim import clock
from skilljar_scim.errors import InvalidValue
from skilljar_scim.scim import filter as scim_filter
from skilljar_scim.scim.schemas import Resolved

Key = tuple[str, str | None]  # (attribute name, sub-attribute name), lowercase
# PostgreSQL cannot put a value of much over 2,700 bytes in a B-tree index, and NFKC can
# make a key longer than its value; no real userName, externalId, email or group name
# comes near this bound, so longer ones are refused instead of failing the write.
MAX_INDEXED_BYTES = 1024


@dataclass(frozen=True)
class Column:
    """How one attribute is stored: a column, and how a literal becomes its stored form."""

    field: peewee.Field
    convert: Callable[[object], object]


def key_of(path: Resolved) -> Key:
    """Return the lookup key of a resolved path (extension attributes are not columns)."""
    if path.is_extension:
        return ("", None)
    return (path.attribute.name.lower(), path.sub.name.lower() if path.sub else None)


def split(node: scim_filter.Node, columns: dict[Key, Column], subqueries: dict[Key, Callable]) -> tuple:
    """Return (sql or None, exact): SQL that selects a superset, exact when it selects just the matches."""
    sql = translate(node, columns, subqueries)
    if sql is not None:
        return sql, True
    if isinstance(node, scim_filter.And):
        parts = [translate(n, columns, subqueries) for n in _conjuncts(node)]
        usable = [p for p in parts if p is not None]
        if usable:
            return _all(usable), False
    return None, False


def translate(node, columns: dict[Key, Column], subqueries: dict[Key, Callable]):
    """Translate `node` into an exact SQL expression, or return None."""
    if isinstance(node, scim_filter.And):
        return _both(node, columns, subqueries, lambda a, b: a & b)
    if isinstance(node, scim_filter.Or):
        return _both(node, columns, subqueries, lambda a, b: a | b)
    if isinstance(node, scim_filter.Compare):
        return _compare(node, columns, subqueries)
    if isinstance(node, scim_filter.Present):
        column = columns.get(key_of(node.path))
        return column.field.is_null(False) if column else None
    if isinstance(node, scim_filter.ValuePath):
        return _value_path(node, subqueries)
    return None  # `not` is left to Python: SQL's NULL logic differs from SCIM's


def _both(node, columns, subqueries, combine):
    left = translate(node.left, columns, subqueries)
    right = translate(node.right, columns, subqueries)
    return combine(left, right) if left is not None and right is not None else None


def _compare(node: scim_filter.Compare, columns: dict[Key, Column], subqueries: dict[Key, Callable]):
    key = key_of(node.path)
    if key in subqueries and node.op == "eq" and node.value is not None:
        return subqueries[key](node.value)
    column = columns.get(key)
    if column is None:
        return None
    if node.value is None:
        return column.field.is_null(node.op == "eq")
    value = column.convert(node.value)
    return _OPERATORS[node.op](column.field, value) if node.op in _OPERATORS else None


def _value_path(node: scim_filter.ValuePath, subqueries: dict[Key, Callable]):
    inner = node.filter
    if isinstance(inner, scim_filter.Compare) and inner.op == "eq" and inner.value is not None:
        handler = subqueries.get(key_of(inner.path))
        return handler(inner.value) if handler else None
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


def casefold(value: object) -> object:
    """Store-side form of a case-insensitive string (NFKC, then casefold)."""
    import unicodedata

    return unicodedata.normalize("NFKC", str(value)).casefold()


def check_indexable(name: str, value: object) -> None:
    """Raise invalidValue when a value stored in an index, or its key, is over MAX_INDEXED_BYTES."""
    if not isinstance(value, str):
        return
    if max(len(value.encode("utf-8")), len(casefold(value).encode("utf-8"))) > MAX_INDEXED_BYTES:
        raise InvalidValue(f"{name} must be at most {MAX_INDEXED_BYTES} bytes long (UTF-8)")


def exact(value: object) -> object:
    return value


def moment(value: object) -> datetime:
    return clock.parse_iso(str(value))
