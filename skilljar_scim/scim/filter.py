"""SCIM filter expressions (RFC 7644 §3.4.2.2): parse to an AST, evaluate it in Python.

`parse` turns filter text into a tree of the frozen dataclasses below, checked against a
ResourceType: every attribute path is resolved to its definition and every literal has
the type its attribute needs, so evaluators (`matches` here, the SQL translation
elsewhere) never see an unknown attribute or an ill-typed value.

Semantics where the RFC leaves room, decided once here:

- A comparison on a multi-valued attribute (or a sub-attribute of one) is true when any
  value matches (§3.4.2.2). `emails co "x"` on a multi-valued complex attribute with a
  `value` sub-attribute compares `emails.value`; the AST says so (path has `sub`).
- `ne` is the exact complement of `eq`: true when the attribute is absent or no value
  equals the literal. So `a ne x` == `not (a eq x)`, in Python and in SQL alike.
- `pr` is true when some value is present and non-empty: not null, "", [] or {}.
- `eq null` means "not present" (== `not (a pr)`) and `ne null` means present; other
  operators with null are invalid.
- Strings compare case-insensitively (base/textkey.key: NFD, casefold, NFC) unless the attribute is caseExact;
  dateTime values compare chronologically (a value without offset is taken as UTC).
- `schemas` (RFC 7643 §3) is filterable, as in the RFC's own examples, although it is
  not an attribute of any schema.
- `emails[type eq "work"].value eq "x"` (a PATCH-style path, which Entra ID uses to match
  users) means `emails[type eq "work" and value eq "x"]`.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from skilljar_scim.base import textkey
from skilljar_scim.base.errors import InvalidFilter
from skilljar_scim.scim.schemas import (
    Attribute,
    AttrPath,
    Resolved,
    ResourceType,
    coerce_boolean,
    parse_attr_path,
)

Value = str | bool | int | float | None

_COMPARISONS = ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le")
_ORDERING = ("gt", "ge", "lt", "le")
_SUBSTRING = ("co", "sw", "ew")
_KEYWORDS: dict[str, Value] = {"true": True, "false": False, "null": None}
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r'[^\s()\[\]"]+')

# RFC 7643 §3: every resource carries `schemas`; no schema defines it, so filter.py does.
_SCHEMAS = Attribute(
    "schemas",
    type="reference",
    multi_valued=True,
    description="The schema URIs the resource conforms to (RFC 7643 §3).",
)


# --- AST --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Compare:
    """`path op value` (RFC 7644 §3.4.2.2, attrExp with compValue).

    path: the resolved attribute; never complex (a bare multi-valued complex attribute
        is rewritten to its `value` sub-attribute).
    op: lowercase, one of eq ne co sw ew gt ge lt le.
    value: the literal, already of the attribute's type: str (string, reference, binary,
        and dateTime as the ISO 8601 text), bool, int or float; None for `null`.
    text: the attribute path as written (for messages); ignored by ==.
    """

    path: Resolved = field(repr=False)  # a Resolved's repr is the whole schema
    op: str
    value: Value
    text: str = field(default="", compare=False)


@dataclass(frozen=True)
class Present:
    """`path pr` (RFC 7644 §3.4.2.2): path may be complex; text is the path as written."""

    path: Resolved = field(repr=False)
    text: str = field(default="", compare=False)


@dataclass(frozen=True)
class And:
    """`left and right`; a chain of ands is built as a balanced tree of And."""

    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Or:
    """`left or right`; a chain of ors is built as a balanced tree of Or."""

    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Not:
    """`not (inner)` (RFC 7644 §3.4.2.2: the parentheses are required)."""

    inner: "Node"


@dataclass(frozen=True)
class ValuePath:
    """`path[filter]` (RFC 7644 §3.4.2.2 valuePath): some element of path satisfies filter.

    path: a complex attribute (normally multi-valued), with no sub-attribute.
    filter: relative to one element: every path in it is `path.attribute` plus a `sub`,
        and it contains no ValuePath; evaluate it with `matches_element`.
    text: the attribute path as written; ignored by ==.
    """

    path: Resolved = field(repr=False)
    filter: "Node"
    text: str = field(default="", compare=False)


Node = Compare | Present | And | Or | Not | ValuePath


# --- Tokens -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # "(" ")" "[" "]" "string" "word" "end"
    text: str  # the decoded value of a string, else the text as written
    pos: int


def _tokenize(text: str) -> list[_Token]:
    """Split filter text into parentheses, brackets, JSON strings and words (RFC 7644 §3.4.2.2)."""
    tokens, pos = [], 0
    while pos < len(text):
        char, space = text[pos], _SPACE.match(text, pos)
        if space:
            pos = space.end()
            continue
        if char in "()[]":
            token, pos = _Token(char, char, pos), pos + 1
        elif char == '"':
            token, pos = _read_string(text, pos)
        else:
            end = _WORD.match(text, pos).end()
            token, pos = _Token("word", text[pos:end], pos), end
        tokens.append(token)
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _read_string(text: str, pos: int) -> tuple[_Token, int]:
    """Read the JSON string starting at `pos` and decode its escapes (RFC 7159 §7)."""
    found = _STRING.match(text, pos)
    if found is None:
        raise InvalidFilter(f"unterminated string at position {pos + 1}")
    try:
        value = json.loads(found.group(), strict=False)
    except ValueError:
        raise InvalidFilter(f"invalid escape in the string at position {pos + 1}") from None
    # A lone surrogate (\ud800) decodes but cannot be stored or compared meaningfully.
    if any("\ud800" <= char <= "\udfff" for char in value):
        raise InvalidFilter(f"unpaired surrogate in the string at position {pos + 1}")
    if "\x00" in value:  # no stored string holds one, and PostgreSQL refuses it as a parameter
        raise InvalidFilter(f"NUL character in the string at position {pos + 1}")
    return _Token("string", value, pos), found.end()


def _describe(token: _Token) -> str:
    """Name a token for an error message, clipped so a huge token is not echoed whole."""
    if token.kind == "end":
        return "the end of the filter"
    shown = token.text if len(token.text) <= 120 else token.text[:120] + "..."
    return f"{shown!r} at position {token.pos + 1}"


# --- Parser -----------------------------------------------------------------------------


def parse(
    text: str,
    rtype: ResourceType,
    *,
    within: Resolved | None = None,
    max_length: int = 4096,
    max_depth: int = 50,
) -> Node:
    """Parse and check a filter expression against `rtype` (RFC 7644 §3.4.2.2).

    With `within` (a complex attribute), parse the inside of a value path, as in the
    PATCH path `members[value eq "id"]` (RFC 7644 §3.5.2): names are its sub-attributes.
    Raise InvalidFilter for anything that is not a valid, checkable filter.
    """
    if len(text) > max_length:
        raise InvalidFilter(f"the filter is longer than {max_length} characters")
    if within is not None and not _is_complex(within):
        raise InvalidFilter(f"{within.target.name!r} is not a complex attribute")
    return _Parser(text, rtype, within, max_depth).parse()


def _is_complex(path: Resolved) -> bool:
    return path.sub is None and path.attribute.type == "complex"


class _Parser:
    """Recursive descent over the tokens; precedence not > and > or (RFC 7644 §3.4.2.2)."""

    def __init__(self, text: str, rtype: ResourceType, within: Resolved | None, max_depth: int):
        self.tokens = _tokenize(text)
        self.pos = 0
        self.rtype = rtype
        self.urns = tuple(schema.id for schema in rtype.schemas)
        self.within = within
        self.depth = 0
        self.max_depth = max_depth

    def parse(self) -> Node:
        """Parse the whole filter; anything left over is an error."""
        node = self.or_expr()
        if self.peek().kind != "end":
            raise InvalidFilter(f"unexpected {_describe(self.peek())}")
        return node

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.peek()
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        return token.kind == "word" and token.text.lower() == word

    def expect(self, kind: str) -> None:
        if self.peek().kind != kind:
            raise InvalidFilter(f"expected {kind!r}, found {_describe(self.peek())}")
        self.advance()

    def enter(self) -> None:
        """Count one level of nesting; refuse before recursing, not after the stack overflows."""
        if self.depth >= self.max_depth:
            raise InvalidFilter(f"the filter nests deeper than {self.max_depth} levels")
        self.depth += 1

    def or_expr(self) -> Node:
        """or: the loosest binding (RFC 7644 §3.4.2.2 operator precedence)."""
        nodes = [self.and_expr()]
        while self.keyword("or"):
            self.advance()
            nodes.append(self.and_expr())
        return _balanced(Or, nodes)

    def and_expr(self) -> Node:
        """and: binds tighter than or."""
        nodes = [self.unary()]
        while self.keyword("and"):
            self.advance()
            nodes.append(self.unary())
        return _balanced(And, nodes)

    def unary(self) -> Node:
        """`not (filter)`, `(filter)` or an attribute expression (RFC 7644 Figure 1)."""
        if self.keyword("not"):
            if self.peek(1).kind != "(":
                raise InvalidFilter(f"'not' must be followed by '(' ({_describe(self.peek())})")
            self.advance()
            return Not(self.group())
        if self.peek().kind == "(":
            return self.group()
        return self.attr_expr()

    def group(self) -> Node:
        """A parenthesised filter."""
        self.advance()
        self.enter()
        node = self.or_expr()
        self.depth -= 1
        self.expect(")")
        return node

    def attr_expr(self) -> Node:
        """`path pr`, `path op value` or `path[filter]` (RFC 7644 Figure 1)."""
        token = self.advance()
        if token.kind != "word" or token.text.lower() in ("and", "or", "not"):
            raise InvalidFilter(f"expected an attribute path, found {_describe(token)}")
        path = self.resolve(token)
        if self.peek().kind == "[":
            return self.value_path(path, token.text)
        op = self.operator()
        if op == "pr":
            self.refuse_value()
            return Present(path, token.text)
        return self.comparison(path, op, token.text)

    def resolve(self, token: _Token) -> Resolved:
        """Resolve an attribute path, case-insensitively (RFC 7644 §3.10)."""
        try:
            path = parse_attr_path(token.text, self.urns)
        except ValueError:
            raise InvalidFilter(f"not an attribute path: {_describe(token)}") from None
        resolved = self.lookup(path)
        if resolved is None:
            where = f" of {self.within.attribute.name!r}" if self.within else ""
            raise InvalidFilter(f"unknown attribute{where}: {_describe(token)}")
        return resolved

    def lookup(self, path: AttrPath) -> Resolved | None:
        if self.within is not None:
            return _relative(self.within, path)
        return self.rtype.resolve(path) or _schemas_path(self.rtype, path)

    def value_path(self, path: Resolved, text: str) -> ValuePath:
        """`attr[filter]`: a filter over the elements of a complex attribute."""
        if self.within is not None:
            raise InvalidFilter(f"value paths cannot nest ({_describe(self.peek())})")
        if not _is_complex(path):
            raise InvalidFilter(f"{text!r} is not a complex attribute, so it takes no [filter]")
        self.advance()
        self.enter()
        self.within = path
        inner = self.or_expr()
        self.expect("]")
        if self.peek().kind == "word" and self.peek().text.startswith("."):
            inner = And(inner, self.sub_attribute_expr())
        self.within, self.depth = None, self.depth - 1
        return ValuePath(path, inner, text)

    def sub_attribute_expr(self) -> Node:
        """`emails[type eq "work"].value eq "x"`: the PATCH path form as a filter.

        RFC 7644 §3.4.2.2 has no `].sub` in filters, but Entra ID matches users with
        exactly this ("Tutorial: Develop and plan provisioning for a SCIM endpoint",
        /Users): read it as `emails[type eq "work" and value eq "x"]`.
        """
        token = self.advance()
        sub = _Token("word", token.text[1:], token.pos + 1)
        path = self.resolve(sub)
        op = self.operator()
        if op == "pr":
            self.refuse_value()
            return Present(path, token.text)
        return self.comparison(path, op, token.text)

    def operator(self) -> str:
        """Read an attribute operator, case-insensitively (RFC 7644 §3.4.2.2, Table 3)."""
        token = self.advance()
        op = token.text.lower() if token.kind == "word" else ""
        if op not in _COMPARISONS and op != "pr":
            raise InvalidFilter(f"expected an operator (eq ne co sw ew gt ge lt le pr), "
                                f"found {_describe(token)}")
        return op

    def refuse_value(self) -> None:
        """`pr` takes no value: only and, or, ')', ']' or the end may follow it."""
        token = self.peek()
        is_logical = token.kind == "word" and token.text.lower() in ("and", "or")
        if token.kind == "string" or (token.kind == "word" and not is_logical):
            raise InvalidFilter(f"'pr' takes no value: {_describe(token)}")

    def comparison(self, path: Resolved, op: str, text: str) -> Compare:
        """Read the value of `path op value` and check it fits the attribute."""
        value = _literal(self.advance())
        path = _comparable(path, op, text)
        return Compare(path, op, _checked(path.target, op, value, text), text)


def _balanced(cls: type[And] | type[Or], nodes: list[Node]) -> Node:
    """Join a chain as a balanced tree so its depth grows as log(n), not n."""
    if len(nodes) == 1:
        return nodes[0]
    middle = len(nodes) // 2
    return cls(_balanced(cls, nodes[:middle]), _balanced(cls, nodes[middle:]))


def _relative(within: Resolved, path: AttrPath) -> Resolved | None:
    """Resolve a name inside `within[...]` as one of its sub-attributes (RFC 7644 §3.4.2.2)."""
    if path.urn is not None or path.sub is not None:
        return None
    sub = within.attribute.sub(path.name)
    return Resolved(within.schema, within.attribute, sub) if sub else None


def _schemas_path(rtype: ResourceType, path: AttrPath) -> Resolved | None:
    """Resolve `schemas`, which every resource has but no schema defines (RFC 7643 §3)."""
    core = path.urn is None or path.urn.lower() == rtype.schema.id.lower()
    if core and path.sub is None and path.name.lower() == "schemas":
        return Resolved(rtype.schema, _SCHEMAS)
    return None


def _literal(token: _Token) -> Value:
    """Read compValue = false / null / true / number / string (RFC 7644 Figure 1)."""
    if token.kind == "string":
        return token.text
    word = token.text.lower() if token.kind == "word" else ""
    if word in _KEYWORDS:
        return _KEYWORDS[word]
    if token.kind == "word" and _NUMBER.fullmatch(token.text):
        return _number(token)
    raise InvalidFilter(f"expected a value (string, number, true, false or null), "
                        f"found {_describe(token)}")


def _number(token: _Token) -> int | float:
    """Convert a JSON number; refuse one too large to represent."""
    found = _NUMBER.fullmatch(token.text)
    try:
        number = float(token.text) if found.group(1) or found.group(2) else int(token.text)
    except ValueError:  # more digits than int() accepts (sys.get_int_max_str_digits)
        raise InvalidFilter(f"number too large: {_describe(token)}") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise InvalidFilter(f"number too large: {_describe(token)}")
    return number


def _comparable(path: Resolved, op: str, text: str) -> Resolved:
    """Return the path a comparison applies to: a bare multi-valued attribute means its value.

    RFC 7643 §2.4 makes `value` the primary sub-attribute of a multi-valued attribute,
    and RFC 7644 §3.4.2.2 filters `emails co "example.com"` that way.
    """
    if path.target.type != "complex":
        return path
    value = path.attribute.sub("value") if path.attribute.multi_valued else None
    if value is None:
        raise InvalidFilter(f"{text!r} is complex: compare one of its sub-attributes "
                            f"instead, or use 'pr' (found {op!r})")
    return Resolved(path.schema, path.attribute, value)


def _checked(attribute: Attribute, op: str, value: Value, text: str) -> Value:
    """Check `value` suits `attribute` and `op`; return it in the attribute's type.

    `text` is the attribute path as written, for the message.
    """
    if value is None:
        if op in ("eq", "ne"):
            return None
        raise InvalidFilter(f"{op!r} cannot compare with null; use 'pr' or 'eq null'")
    if op in _ORDERING and attribute.type in ("boolean", "binary"):
        # RFC 7644 §3.4.2.2: gt/ge/lt/le on Boolean or Binary SHALL be invalidFilter.
        raise InvalidFilter(f"{op!r} cannot compare {attribute.type} attribute {text!r}")
    check = _CHECKS.get(attribute.type, _check_text)
    if not check(op, value):
        expected = _EXPECTED.get(attribute.type, _EXPECTED["string"])
        raise InvalidFilter(f"{text!r} is of type {attribute.type}: {expected} "
                            f"(found {op} {json.dumps(value)})")
    return coerce_boolean(value) if attribute.type == "boolean" else value


def _check_text(op: str, value: Value) -> bool:
    """string, reference and binary attributes compare with string literals."""
    return isinstance(value, str)


def _check_boolean(op: str, value: Value) -> bool:
    """Boolean attributes take eq/ne with true/false, or "true"/"false" strings (as IdPs send)."""
    return op in ("eq", "ne") and isinstance(coerce_boolean(value), bool)


def _check_number(op: str, value: Value) -> bool:
    """integer and decimal attributes compare numerically with number literals."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and op not in _SUBSTRING


def _check_datetime(op: str, value: Value) -> bool:
    """dateTime attributes compare chronologically with ISO 8601 strings (RFC 7643 §2.3.5)."""
    return op not in _SUBSTRING and _datetime(value) is not None


_EXPECTED = {
    "boolean": "use eq or ne with true or false",
    "integer": "compare it with a number using eq ne gt ge lt le",
    "decimal": "compare it with a number using eq ne gt ge lt le",
    "dateTime": 'compare it with an ISO 8601 string such as "2011-05-13T04:42:34Z" '
    "using eq ne gt ge lt le",
    "string": "compare it with a string",
    "reference": "compare it with a string",
    "binary": "compare it with a string",
}

_CHECKS: dict[str, Callable[[str, Value], bool]] = {
    "boolean": _check_boolean,
    "integer": _check_number,
    "decimal": _check_number,
    "dateTime": _check_datetime,
}


def _datetime(value: object) -> datetime | None:
    """Parse an ISO 8601 date-time; one without an offset is UTC, so any two compare."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
        # To UTC now: a moment at the calendar's edge (year 1 at +01:00) has no UTC form.
        return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError):
        return None


# --- Evaluation -------------------------------------------------------------------------


def matches(node: Node, resource: Mapping[str, Any]) -> bool:
    """Say whether a canonical SCIM resource satisfies `node` (RFC 7644 §3.4.2.2).

    Core and common attributes are top-level keys; extension attributes sit under their
    schema URN; dateTime values are ISO 8601 strings; multi-valued attributes are lists.
    """
    return _evaluate(node, resource, _resource_values)


def matches_element(node: Node, element: Mapping[str, Any]) -> bool:
    """Say whether one element of a multi-valued attribute satisfies a `within` filter.

    This is how PATCH picks targets such as `members[value eq "id"]` (RFC 7644 §3.5.2).
    """
    return _evaluate(node, element, _element_values)


Values = Callable[[Mapping[str, Any], Resolved], list]


def _evaluate(node: Node, data: Mapping[str, Any], values: Values) -> bool:
    """Evaluate `node`, reading attribute values from `data` with `values`."""
    if isinstance(node, And):
        return _evaluate(node.left, data, values) and _evaluate(node.right, data, values)
    if isinstance(node, Or):
        return _evaluate(node.left, data, values) or _evaluate(node.right, data, values)
    if isinstance(node, Not):
        return not _evaluate(node.inner, data, values)
    if isinstance(node, Present):
        return any(_filled(value) for value in values(data, node.path))
    if isinstance(node, Compare):
        return _evaluate_compare(node, values(data, node.path))
    if isinstance(node, ValuePath):
        return any(matches_element(node.filter, element) for element in _elements(data, node))
    raise TypeError(f"not a filter node: {node!r}")


def _evaluate_compare(node: Compare, candidates: list) -> bool:
    """Match if any value matches (RFC 7644 §3.4.2.2); ne and null as the module says."""
    if node.value is None:
        present = any(_filled(candidate) for candidate in candidates)
        return present if node.op == "ne" else not present
    op = "eq" if node.op == "ne" else node.op
    found = any(_compare(candidate, op, node.value, node.path.target) for candidate in candidates)
    return not found if node.op == "ne" else found


def _compare(candidate: object, op: str, literal: Value, attribute: Attribute) -> bool:
    """Compare one stored value with the literal by the attribute's type (RFC 7644 Table 3)."""
    left, right = _normalise(candidate, attribute), _normalise(literal, attribute)
    if left is None or right is None:
        return False  # a stored value of the wrong type matches nothing
    return _OPERATORS[op](left, right)


def _normalise(value: object, attribute: Attribute) -> object:
    """Bring a value to a comparable form for `attribute`, or None when it does not fit."""
    kind = attribute.type
    if kind == "boolean":
        value = coerce_boolean(value)
        return value if isinstance(value, bool) else None
    if kind in ("integer", "decimal"):
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        return value if numeric else None
    if kind == "dateTime":
        return _datetime(value)
    if not isinstance(value, str):
        return None
    # RFC 7643 §2.2: caseExact false means comparisons ignore case: by the same key as the
    # store's *_key columns, so SQL and Python agree (base/textkey.py).
    return value if attribute.case_exact else textkey.key(value)


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "co": operator.contains,
    "sw": str.startswith,
    "ew": str.endswith,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


def values_of(resource: Mapping[str, Any], path: Resolved) -> list:
    """Return the values `path` designates in a canonical resource (used for sorting too)."""
    return _resource_values(resource, path)


def _resource_values(resource: Mapping[str, Any], path: Resolved) -> list:
    """Collect the values `path` designates in a resource, flattening multi-valued ones."""
    container = _get(resource, path.schema.id) if path.is_extension else resource
    value = _get(container, path.attribute.name)
    if path.sub is not None:
        value = [_get(element, path.sub.name) for element in _as_list(value)]
    return [item for item in _as_list(value) if item is not None]


def _element_values(element: Mapping[str, Any], path: Resolved) -> list:
    """Collect the values of a sub-attribute in one element of a multi-valued attribute."""
    return [item for item in _as_list(_get(element, path.target.name)) if item is not None]


def _elements(resource: Mapping[str, Any], node: ValuePath) -> list:
    """Return the elements a value path filters: a list, or a single complex value."""
    container = _get(resource, node.path.schema.id) if node.path.is_extension else resource
    value = _get(container, node.path.attribute.name)
    return [element for element in _as_list(value) if isinstance(element, Mapping)]


def _get(data: object, key: str) -> object:
    """Read `key` from a mapping, its name in any case (RFC 7643 §2.1)."""
    return textkey.get(data, key)


def _as_list(value: object) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _filled(value: object) -> bool:
    """Say whether a value counts as present for `pr` (RFC 7644 §3.4.2.2): not null or empty."""
    if value is None or value == "":
        return False
    if isinstance(value, list):
        return any(_filled(item) for item in value)
    if isinstance(value, Mapping):
        return any(_filled(item) for item in value.values())
    return True
