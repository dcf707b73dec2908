"""PATCH (RFC 7644 §3.5.2): the PatchOp message, the path grammar, and applying operations.

`parse` checks a PatchOp body and returns its `Operation`s; `split_members` takes out
the ones on Group `members` (so a membership change never loads the member list);
`apply` runs the rest on a copy of a canonical resource (names exactly as the schemas
declare them, extension attributes under their URN), so a failing list changes nothing.

Where RFC 7644 or the IdPs leave room, decided once here:

- `op` and the message keys (`Operations`, `path`, `value`) match in any letter case;
  booleans may be "True"/"False" (Entra ID). null, "" and [] as a value clear the
  target (RFC 7643 §2.5: they all mean unassigned).
- A path-less add/replace takes each key of its value as a path: plain, dotted
  (`name.givenName`), URN-qualified, or an extension URN holding an object of its
  attributes. `schemas` there is ignored; an unknown attribute is invalidPath.
- A path may name a whole schema by its URN (RFC 7644 §3.5.2): add/replace with the
  enterprise extension's URN take an object of its attributes, as a path-less value keyed
  by the URN does (attributes not given are left unchanged); remove with it drops the
  whole extension object, or only the attributes an object `value` names. The core
  schema's URN as a path is a path-less add/replace; it cannot be removed (noTarget).
  `URN.attribute` (a dot after the URN) is not a path: invalidPath.
- A write to a readOnly attribute that leaves it unchanged succeeds (Okta renames a
  Group with `{"id": <same id>, "displayName": ...}`); one that changes it is
  `mutability`, as is changing an immutable value once set (RFC 7644 §3.5.2).
  Removing a required attribute is invalidValue (RFC 7644 §3.12: a required value
  was missing).
- A bare name that only an extension defines resolves to it, and a single-valued complex
  attribute takes a one-element list as its value: Entra ID's tutorial sends
  `{"op": "Add", "path": "manager", "value": [{"$ref": ..., "value": id}]}`.
- add/replace through a value filter that matches no element (Entra ID sends
  `emails[type eq "work"].value` for a user with no work email) creates the element
  from the filter's `eq` terms plus the value, instead of §3.5.2.3's noTarget;
  remove through a filter that matches nothing is noTarget (RFC 7644 §3.12).
- Elements of a multi-valued attribute are the same when their (type, value) match
  (RFC 7643 §2.4), or, without a `value` sub-attribute, when all sub-attributes match;
  strings compare case-insensitively unless caseExact. An add never duplicates one:
  it updates the element already there.
- Removing the `value` of an element (`emails[type eq "work"].value`) removes the
  element: an element without its value describes nothing.
- An operation may write at most `max_values` values to a multi-valued attribute (Group
  `members` aside: they have their own limit), refused before anything is applied.
  Applying costs time linear in the values: elements are matched through a dict keyed by
  their normalised identity, never by scanning the list for each value. `apply` checks the
  request's deadline (base/clock) between operations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Hashable

from skilljar_scim.base import clock, errors, textkey
from skilljar_scim.scim import filter as scim_filter
from skilljar_scim.scim import resources, schemas
from skilljar_scim.scim.schemas import Attribute, Resolved, ResourceType, Schema

OPS = ("add", "remove", "replace")
MEMBER_CHANGE_KINDS = ("add", "remove", "replace", "remove_all")

_MISSING = object()  # a key absent from the message, as opposed to a JSON null


@dataclass(frozen=True)
class Path:
    """A PATCH path: attrPath, or valuePath ["." subAttr] (RFC 7644 §3.5.2).

    resolved: the attribute and, for `name.givenName` or `emails[...].value`, the
        sub-attribute, with canonical names; filter: the value filter between the
        brackets (names in it are sub-attributes of the attribute), or None.
    """

    text: str
    resolved: Resolved = field(repr=False)
    filter: scim_filter.Node | None = field(default=None, repr=False)

    @property
    def attribute(self) -> Attribute:
        return self.resolved.attribute

    @property
    def sub(self) -> Attribute | None:
        return self.resolved.sub


@dataclass(frozen=True)
class Operation:
    """One PATCH operation (RFC 7644 §3.5.2): op is "add", "remove" or "replace".

    path is None for a path-less add/replace, whose value is then an object of
    attributes; value is None for a remove without one.
    """

    op: str
    path: Path | None
    value: Any = None


@dataclass(frozen=True)
class MemberChange:
    """A change to a Group's members (RFC 7644 §3.5.2), by member id.

    kind: "add", "remove", "replace" (the members become exactly `ids`) or
    "remove_all" (ids is empty).
    """

    kind: str
    ids: tuple[str, ...] = ()


# --- parse: the PatchOp message --------------------------------------------------------


def parse(body: object, rtype: ResourceType, *, max_operations: int = 1000, max_values: int = 0) -> list[Operation]:
    """Check a PatchOp message and return its operations in order (RFC 7644 §3.5.2).

    `max_values` (0: no limit) caps the values one operation writes to a multi-valued attribute.
    """
    if not isinstance(body, dict):
        raise errors.InvalidSyntax("The PATCH body must be a JSON object.")
    _check_schemas(_get(body, "schemas"))
    raw = _get(body, "Operations")
    if not isinstance(raw, list) or not raw:
        raise errors.InvalidSyntax('"Operations" must be a non-empty JSON array.')
    if len(raw) > max_operations:
        raise errors.TooMany(f"A PATCH request may hold at most {max_operations} operations.")
    operations = []
    for n, item in enumerate(raw, 1):
        for operation in _parse_operation(item, rtype, n):
            if max_values > 0:
                _check_value_count(operation, rtype, max_values, n)
            operations.append(operation)
    return operations


def _check_value_count(operation: Operation, rtype: ResourceType, max_values: int, n: int) -> None:
    """Refuse an operation writing more values to a multi-valued attribute than it may hold (RFC 7644 §3.12)."""
    members = rtype.schema.attribute("members")  # rows of their own, capped by max_members_per_patch
    for path, value in _targets(operation, rtype):
        whole = path.attribute.multi_valued and path.filter is None and path.sub is None
        if whole and path.attribute is not members and isinstance(value, list) and len(value) > max_values:
            raise errors.InvalidValue(f"Operation {n}: attribute '{path.attribute.name}' may hold at most "
                                      f"{max_values} values; this operation gives {len(value)}.")


def _check_schemas(value: object) -> None:
    """Require the PatchOp URN in `schemas`, in any letter case (RFC 7644 §3.5.2)."""
    if not schemas.declares(value, schemas.PATCH_OP):
        raise errors.InvalidSyntax(f'"schemas" must contain "{schemas.PATCH_OP}".')


def _parse_operation(item: object, rtype: ResourceType, n: int) -> list[Operation]:
    """Check one element of "Operations" (RFC 7644 §3.5.2); return the operations it stands for."""
    if not isinstance(item, dict):
        raise errors.InvalidSyntax(f"Operation {n} must be a JSON object.")
    op = _op_name(_get(item, "op"), n)
    value = _get(item, "value")
    schema = _schema_named(_get(item, "path"), rtype)
    if schema is not None:
        return _whole_schema(op, schema, value, rtype, n)
    path = _optional_path(_get(item, "path"), rtype)
    if op == "remove" and path is None:
        # RFC 7644 §3.5.2.2: "If 'path' is unspecified, the operation fails".
        raise errors.NoTarget(f"Operation {n}: a remove operation needs a path.")
    if op != "remove" and value is _MISSING:
        raise errors.InvalidSyntax(f'Operation {n}: an {op} operation needs a "value".')
    operation = Operation(op, path, None if value is _MISSING else value)
    if path is None:
        _expand(operation.value, rtype)  # check every key now, before anything is applied
    return [operation]


def _schema_named(path: object, rtype: ResourceType) -> Schema | None:
    """Return the schema a path names whole, by its URN in any letter case (RFC 7644 §3.5.2, §3.10)."""
    return rtype.schema_by_urn(path.strip()) if isinstance(path, str) else None


def _whole_schema(op: str, schema: Schema, value: object, rtype: ResourceType, n: int) -> list[Operation]:
    """Turn an operation on a whole schema's attributes into operations on each (RFC 7644 §3.5.2).

    add/replace take an object of attributes, as a path-less value keyed by the URN does;
    remove drops the attributes `value` names, or with no value the whole extension object.
    """
    if op != "remove":
        if value is _MISSING:
            raise errors.InvalidSyntax(f'Operation {n}: an {op} operation needs a "value".')
        operation = Operation(op, None, {schema.id: value} if schema is not rtype.schema else value)
        _expand(operation.value, rtype)
        return [operation]
    if schema is rtype.schema:
        raise errors.NoTarget(f"Operation {n}: the core schema cannot be removed; name its attributes.")
    if value not in (_MISSING, None) and not isinstance(value, dict):
        raise errors.InvalidValue(f"Operation {n}: a remove of '{schema.id}' takes an object of its attributes.")
    names = [a.name for a in schema.attributes] if value in (_MISSING, None) else list(value)
    return [Operation("remove", parse_path(f"{schema.id}:{name}", rtype)) for name in names]


def _op_name(value: object, n: int) -> str:
    """Return add/remove/replace from `op` in any letter case (Entra ID sends "Replace")."""
    name = value.strip().lower() if isinstance(value, str) else None
    if name not in OPS:
        raise errors.InvalidSyntax(f'Operation {n}: "op" must be add, remove or replace.')
    return name


def _optional_path(value: object, rtype: ResourceType) -> Path | None:
    """Parse `path` when given; absent, null or blank means none (RFC 7644 §3.5.2)."""
    if value is _MISSING or value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_path(value, rtype)


def _get(data: dict, key: str) -> object:
    """Read `key` from a message object in any letter case, or _MISSING."""
    return textkey.get(data, key, _MISSING)


# --- the path grammar --------------------------------------------------------------------


def parse_path(text: object, rtype: ResourceType) -> Path:
    """Parse `attrPath` or `valuePath ["." subAttr]` against `rtype` (RFC 7644 §3.5.2, §3.10).

    A malformed path or unknown attribute is invalidPath; a bad filter inside the
    brackets is invalidFilter (raised by the filter parser).
    """
    if not isinstance(text, str) or not text.strip():
        raise errors.InvalidPath('"path" must be a non-empty string.')
    text = text.strip()
    head, inner, sub = _split_value_path(text)
    resolved = _resolve(head, rtype, text)
    if inner is None:
        return Path(text, resolved)
    return _value_path(text, resolved, inner, sub, rtype)


def _split_value_path(text: str) -> tuple[str, str | None, str | None]:
    """Split `attr[filter].sub` into (attr, filter, sub); no brackets gives (text, None, None)."""
    start = text.find("[")
    if start < 0:
        if "]" in text:
            raise errors.InvalidPath(f"Path '{text}' has ']' without '['.")
        return text, None, None
    end = _closing_bracket(text, start)
    inner, rest = text[start + 1 : end], text[end + 1 :]
    if not inner.strip():
        raise errors.InvalidPath(f"Path '{text}' has an empty value filter.")
    if rest and (not rest.startswith(".") or len(rest) == 1):
        raise errors.InvalidPath(f"Path '{text}': only '.subAttribute' may follow ']'.")
    return text[:start], inner, rest[1:] or None


def _closing_bracket(text: str, start: int) -> int:
    """Find the ']' closing the '[' at `start`, skipping JSON strings (RFC 7644 §3.4.2.2)."""
    in_string, i = False, start + 1
    while i < len(text):
        char = text[i]
        if in_string:
            i += 1 if char == "\\" else 0  # an escaped character cannot end the string
            in_string = char != '"'
        elif char == '"':
            in_string = True
        elif char == "[":
            raise errors.InvalidPath(f"Path '{text}': value filters cannot nest.")
        elif char == "]":
            return i
        i += 1
    raise errors.InvalidPath(f"Path '{text}' has '[' without ']'.")


def _resolve(text: str, rtype: ResourceType, whole: str) -> Resolved:
    """Resolve `[URN:]attr[.sub]` to canonical definitions, or raise invalidPath."""
    try:
        attr_path = schemas.parse_attr_path(text, schemas.KNOWN_URNS)
    except ValueError:
        raise errors.InvalidPath(f"'{whole}' is not a valid attribute path.") from None
    resolved = rtype.resolve(attr_path) or _extension_attribute(attr_path, rtype)
    if resolved is None:
        raise errors.InvalidPath(f"'{whole}' names no attribute of a {rtype.name}.")
    return resolved


def _extension_attribute(attr_path: schemas.AttrPath, rtype: ResourceType) -> Resolved | None:
    """Resolve a bare name that only one extension defines (Entra ID sends path "manager")."""
    if attr_path.urn is not None:
        return None
    owners = [s for s in rtype.extensions if s.attribute(attr_path.name) is not None]
    if len(owners) != 1:
        return None
    return rtype.resolve(schemas.AttrPath(owners[0].id, attr_path.name, attr_path.sub))


def _value_path(
    text: str, resolved: Resolved, inner: str, sub: str | None, rtype: ResourceType
) -> Path:
    """Build a valuePath: the filter selects elements of a multi-valued complex attribute."""
    attribute = resolved.attribute
    if resolved.sub is not None or not attribute.multi_valued or attribute.type != "complex":
        raise errors.InvalidPath(
            f"Path '{text}': a value filter needs a multi-valued complex attribute.")
    node = scim_filter.parse(inner, rtype, within=resolved)
    if sub is None:
        return Path(text, resolved, node)
    sub_attribute = attribute.sub(sub)
    if sub_attribute is None:
        raise errors.InvalidPath(f"Path '{text}': '{attribute.name}' has no '{sub}'.")
    return Path(text, Resolved(resolved.schema, attribute, sub_attribute), node)


def _expand(value: object, rtype: ResourceType) -> list[tuple[Path, object]]:
    """Turn a path-less add/replace value into (path, value) pairs (RFC 7644 §3.5.2.1)."""
    if not isinstance(value, dict):
        raise errors.InvalidValue("A PATCH operation without a path needs an object value.")
    pairs: list[tuple[Path, object]] = []
    for key, item in value.items():
        if key.lower() == "schemas":
            continue  # the client's copy of the resource's schemas: not an attribute
        schema = rtype.schema_by_urn(key)
        if schema is None:
            pairs.append((parse_path(key, rtype), item))
        elif isinstance(item, dict):
            pairs += [(parse_path(f"{schema.id}:{k}", rtype), v) for k, v in item.items()]
        else:
            raise errors.InvalidValue(f"'{key}' must be a JSON object of its attributes.")
    return pairs


# --- split_members: Group membership, applied without loading the members -----------------


def split_members(
    ops: list[Operation], rtype: ResourceType
) -> tuple[list[MemberChange], list[Operation]]:
    """Separate changes to Group `members` from other operations, in order (RFC 7644 §3.5.2)."""
    members = rtype.schema.attribute("members")
    if members is None:
        return [], list(ops)
    changes: list[MemberChange] = []
    rest: list[Operation] = []
    for operation in ops:
        if operation.path is None:
            found, remaining = _split_value(operation, members, rtype)
            changes += found
            rest += [remaining] if remaining is not None else []
        elif operation.path.attribute is members:
            changes.append(_member_change(operation.op, operation.path, operation.value))
        else:
            rest.append(operation)
    return changes, rest


def _split_value(
    operation: Operation, members: Attribute, rtype: ResourceType
) -> tuple[list[MemberChange], Operation | None]:
    """Take a `members` key out of a path-less value (Okta and Entra ID send one)."""
    changes, others = [], {}
    for key, item in operation.value.items():
        if _is_members_key(key, members, rtype):
            path = parse_path(key, rtype)
            changes.append(_member_change(operation.op, path, item))
        else:
            others[key] = item
    return changes, (Operation(operation.op, None, others) if others else None)


def _is_members_key(key: str, members: Attribute, rtype: ResourceType) -> bool:
    """Say whether a key of a path-less value names `members`."""
    if key.lower() == "schemas" or rtype.schema_by_urn(key) is not None:
        return False
    return parse_path(key, rtype).attribute is members


def _member_change(op: str, path: Path, value: object) -> MemberChange:
    """Turn one operation on `members` into a MemberChange (RFC 7644 §3.5.2.1-3)."""
    if path.sub is not None:
        raise errors.NoTarget(f"Path '{path.text}': members are added or removed whole, "
                              "by value; their sub-attributes cannot be patched.")
    if path.filter is not None:
        if op != "remove":
            raise errors.NoTarget(f"Path '{path.text}': a filter on members is supported "
                                  "only by remove; add members with path 'members'.")
        return MemberChange("remove", _filter_ids(path.filter, path.text))
    if op == "remove" and value is None:
        return MemberChange("remove_all")  # RFC 7644 §3.5.2.2: no filter removes all values
    return MemberChange(op, _member_ids(value))


def _member_ids(value: object) -> tuple[str, ...]:
    """Read member ids from `[{"value": id}, ...]`; a lone object or null is tolerated."""
    items = value if isinstance(value, list) else ([] if value is None else [value])
    ids = []
    for item in items:
        raw = _get(item, "value") if isinstance(item, dict) else _MISSING
        if not isinstance(raw, str) or not raw.strip():
            raise errors.InvalidValue(
                'Each member must be an object whose "value" is a non-empty string id.')
        check_member_type(item)
        ids.append(raw)
    return tuple(dict.fromkeys(ids))  # the same member twice is one change


def check_member_type(member: dict) -> None:
    """Refuse a member whose `type` is not "User": groups here hold only Users (see /Schemas).

    IdPs send "User" or no type; a nested Group must not be stored as a User member.
    """
    kind = _get(member, "type")
    if kind in (_MISSING, None, "") or (isinstance(kind, str) and kind.strip().lower() == "user"):
        return
    raise errors.InvalidValue(f'Only User members are supported, not member type {kind!r}.')


def _filter_ids(node: scim_filter.Node, text: str) -> tuple[str, ...]:
    """Read ids from `value eq "a" or value eq "b"`, the filters IdPs send (Okta)."""
    if isinstance(node, scim_filter.Or):
        return tuple(dict.fromkeys(_filter_ids(node.left, text) + _filter_ids(node.right, text)))
    is_value = isinstance(node, scim_filter.Compare) and node.path.target.name == "value"
    if is_value and node.op == "eq" and isinstance(node.value, str) and node.value.strip():
        return (node.value,)
    raise errors.InvalidFilter(f"Path '{text}': members can be selected only by "
                               '\'value eq "id"\', or several of those joined by \'or\'.')


# --- apply: run operations on a copy of the resource ---------------------------------------


def apply(resource: dict, ops: list[Operation], rtype: ResourceType) -> dict:
    """Return a new resource with `ops` applied in order; `resource` is never changed.

    RFC 7644 §3.5.2: the operations are atomic, so an error in any leaves the caller's
    resource exactly as it was.
    """
    doc = copied(resource)
    for operation in ops:
        for path, value in _targets(operation, rtype):
            clock.check_deadline()
            _apply_target(doc, operation.op, path, value)
    return doc


def copied(value: object) -> object:
    """Return a deep copy of a JSON value (objects, arrays, immutable scalars): what copy.deepcopy gives, faster."""
    if isinstance(value, dict):
        return {key: copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copied(item) for item in value]
    return value


def _targets(operation: Operation, rtype: ResourceType) -> list[tuple[Path, object]]:
    """Return the (path, value) pairs one operation writes (RFC 7644 §3.5.2)."""
    if operation.path is not None:
        return [(operation.path, operation.value)]
    return _expand(operation.value, rtype)


def _apply_target(doc: dict, op: str, path: Path, value: object) -> None:
    """Apply one op at one path, then enforce mutability, required and primary."""
    holder = _holder(doc, path.resolved)
    name = path.attribute.name
    before = copied(holder.get(name))
    if path.attribute.multi_valued:
        written = _apply_multi(holder, op, path, value)
    else:
        written = _apply_single(holder, op, path, value)
    _check_mutability(path, before, holder.get(name))
    _check_required(path, holder.get(name))
    _enforce_primary(holder, path.attribute, written)
    _settle_extension(doc, path.resolved)


def _holder(doc: dict, resolved: Resolved) -> dict:
    """Return the object holding the attribute: the resource, or its extension object."""
    if not resolved.is_extension:
        return doc
    if not isinstance(doc.get(resolved.schema.id), dict):
        doc[resolved.schema.id] = {}
    return doc[resolved.schema.id]


def _settle_extension(doc: dict, resolved: Resolved) -> None:
    """Drop an emptied extension object and keep `schemas` in step (RFC 7643 §3)."""
    if not resolved.is_extension:
        return
    urn, listed = resolved.schema.id, doc.get("schemas")
    if not doc[urn]:
        del doc[urn]
    if not isinstance(listed, list):
        return
    named = [u for u in listed if isinstance(u, str) and u.lower() == urn.lower()]
    if urn in doc and not named:
        doc["schemas"] = listed + [urn]
    elif urn not in doc and named:
        doc["schemas"] = [u for u in listed if u not in named]


def _store(holder: dict, name: str, value: object) -> None:
    """Set an attribute, or remove it when the value is unassigned (RFC 7643 §2.5)."""
    if value is None or value == [] or value == {}:
        holder.pop(name, None)
    else:
        holder[name] = value


# --- single-valued attributes --------------------------------------------------------------


def _apply_single(holder: dict, op: str, path: Path, value: object) -> list:
    """Set, merge or clear a single-valued attribute or sub-attribute (RFC 7644 §3.5.2.1-3)."""
    name = path.attribute.name
    if path.sub is not None:
        current = dict(holder.get(name) or {})
        new = None if op == "remove" else _coerce(path.sub, value, path.text)
        _store(current, path.sub.name, new)
        _store(holder, name, current)
        return []
    new = None if op == "remove" else _coerce(path.attribute, value, path.text)
    current = holder.get(name)
    if op != "remove" and isinstance(current, dict) and (isinstance(new, dict) or value):
        new = _merge(path.attribute, current, new or {}, value)
    _store(holder, name, new)
    return []


def _merge(attribute: Attribute, current: dict, new: dict, raw: object) -> dict:
    """Merge sub-attributes into a complex value; those not given are left unchanged.

    RFC 7644 §3.5.2.3; a sub-attribute given as null (or "") is cleared.
    """
    merged = {**current, **new}
    for key, item in (raw.items() if isinstance(raw, dict) else ()):
        sub = attribute.sub(key)
        if sub is not None and item in (None, "", []):
            merged.pop(sub.name, None)
    return merged


def _coerce(attribute: Attribute, value: object, where: str) -> object:
    """Validate and canonicalise one value (RFC 7643 §2.3); None means unassigned."""
    if attribute.mutability == "readOnly":
        # Coercion drops readOnly input; keep it so an unchanged value can be recognised.
        return None if value in (None, "", [], {}) else value
    if attribute.type == "complex" and not attribute.multi_valued and _is_one_item_list(value):
        value = value[0]  # Entra ID sends manager as [{"$ref": ..., "value": id}]
    return resources.coerce_value(attribute, value, where)


def _is_one_item_list(value: object) -> bool:
    return isinstance(value, list) and len(value) == 1


# --- multi-valued attributes --------------------------------------------------------------


def _apply_multi(holder: dict, op: str, path: Path, value: object) -> list:
    """Apply an op to a multi-valued attribute; return the elements it wrote."""
    name = path.attribute.name
    items = list(holder.get(name) or [])
    if path.filter is None and path.sub is None:
        items, written = _apply_list(op, path, items, value)
    else:
        items, written = _apply_selected(op, path, items, value)
    _store(holder, name, items)
    return written


def _apply_list(op: str, path: Path, items: list, value: object) -> tuple[list, list]:
    """Add to, replace or remove from the whole list (RFC 7644 §3.5.2.1-3)."""
    attribute = path.attribute
    if op == "remove" and value is None:
        return [], []
    new = _elements(attribute, value, path.text)
    if op == "remove":
        # Entra ID and Okta name the values to remove in `value`.
        selects = _selector(attribute, new)
        return [e for e in items if not selects(e)], []
    if op == "replace":
        items = []
    return _add_all(attribute, items, new)


def _elements(attribute: Attribute, value: object, where: str) -> list:
    """Validate the elements written to a multi-valued attribute; a lone element is tolerated."""
    items = value if isinstance(value, list) else [value]
    if attribute.mutability == "readOnly":
        return [item for item in items if item not in (None, "", [], {})]
    return resources.coerce_value(attribute, items, where) or []


def _add_all(attribute: Attribute, items: list, new: list) -> tuple[list, list]:
    """Append elements, updating instead of duplicating one already there (RFC 7644 §3.5.2.1)."""
    items, touched = list(items), []
    where: dict[Hashable, int] = {}
    for i, element in enumerate(items):
        where.setdefault(_identity(attribute, element), i)
    for element in new:
        key = _identity(attribute, element)
        index = where.get(key)
        if index is None:
            items.append(element)
            index = where[key] = len(items) - 1
        elif isinstance(element, dict) and attribute.sub("value"):
            # The same (type, value): keep it as stored (§3.5.2.1: no change for a value
            # already there) but take the other sub-attributes given, such as primary.
            extra = {k: v for k, v in element.items() if k not in ("type", "value")}
            items[index] = {**items[index], **extra}
        touched.append(index)
    return items, [items[i] for i in dict.fromkeys(touched)]


def _apply_selected(op: str, path: Path, items: list, value: object) -> tuple[list, list]:
    """Apply an op to the elements a value filter selects (RFC 7644 §3.5.2.1-3)."""
    hits = [i for i, element in enumerate(items) if _hit(path, element)]
    if op == "remove" and not hits and path.filter is not None:
        raise errors.NoTarget(f"Path '{path.text}' matches no value to remove.")
    new = None if op == "remove" else _selected_value(path, value)
    if new is None:
        return _remove_selected(path, items, hits), []
    if not hits:
        return _create(path, items, new)
    return _write_selected(op, path, items, hits, new)


def _hit(path: Path, element: object) -> bool:
    """Say whether the path's filter selects `element`; no filter selects every element."""
    if path.filter is None:
        return True
    return isinstance(element, dict) and scim_filter.matches_element(path.filter, element)


def _selected_value(path: Path, value: object) -> object:
    """Validate the value written at a filtered path: a sub-attribute value or an element."""
    if path.sub is not None:
        return _coerce(path.sub, value, path.text)
    if path.attribute.mutability == "readOnly":
        element = _coerce(path.attribute, value, path.text)
    else:
        element = resources.coerce_item(path.attribute, value, path.text)
    if element is not None and not isinstance(element, dict):
        raise errors.InvalidValue(f"Path '{path.text}' takes a JSON object.")
    return element


def _remove_selected(path: Path, items: list, hits: list[int]) -> list:
    """Remove the selected elements, or their sub-attribute (RFC 7644 §3.5.2.2)."""
    sub, hits = path.sub, set(hits)
    if sub is None or sub.name == "value":  # an element without its value is nothing
        return [e for i, e in enumerate(items) if i not in hits]
    out = [{k: v for k, v in e.items() if k != sub.name} if i in hits else e
           for i, e in enumerate(items)]
    return [e for e in out if e]


def _write_selected(
    op: str, path: Path, items: list, hits: list[int], new: object
) -> tuple[list, list]:
    """Replace (or, for add, merge into) the selected elements or their sub-attribute."""
    out = list(items)
    for i in hits:
        if path.sub is not None:
            out[i] = {**out[i], path.sub.name: new}
        else:
            out[i] = {**out[i], **new} if op == "add" else dict(new)
    return out, [out[i] for i in hits]


def _create(path: Path, items: list, new: object) -> tuple[list, list]:
    """Append the element a no-match filter describes, as Entra ID expects (see module doc)."""
    terms = _equality_terms(path.filter) if path.filter is not None else {}
    if terms is None:
        raise errors.NoTarget(f"Path '{path.text}' matches no value, and its filter does not "
                              "describe one to create (use 'eq' joined by 'and').")
    element = {**terms, path.sub.name: new} if path.sub is not None else {**terms, **new}
    if path.filter is not None and not scim_filter.matches_element(path.filter, element):
        raise errors.NoTarget(f"Path '{path.text}': the value contradicts the filter.")
    return items + [element], [element]


def _equality_terms(node: scim_filter.Node) -> dict | None:
    """Read `a eq x and b eq y` as {a: x, b: y}; None for any other filter."""
    if isinstance(node, scim_filter.And):
        left, right = _equality_terms(node.left), _equality_terms(node.right)
        return None if left is None or right is None else {**left, **right}
    if isinstance(node, scim_filter.Compare) and node.op == "eq" and node.value is not None:
        return {node.path.target.name: node.value}
    return None


# --- comparing elements -------------------------------------------------------------------


def _identity(attribute: Attribute, element: object) -> Hashable:
    """Return what makes two elements the same value, as a dict key (RFC 7643 §2.4).

    Complex elements are the same when their type and value match, or, without a `value`
    sub-attribute, when every sub-attribute matches (a missing one matches null).
    """
    if not isinstance(element, dict):
        return ("simple", _hashable(_norm(attribute, element)))
    keys = ("type", "value") if attribute.sub("value") else sorted(k for k, v in element.items() if v is not None)
    return ("complex", _fields(attribute, element, keys))


def _selector(attribute: Attribute, given: list):
    """Return a test of whether a value named for removal selects an element: by `value`, else by its fields.

    Built once from `given`, so removing n values from m elements costs n + m, not n x m.
    """
    simple = {_hashable(_norm(attribute, g)) for g in given if not isinstance(g, dict)}
    by_fields: dict[tuple[str, ...], set] = {}
    for g in given:
        if isinstance(g, dict):
            keys = ("value",) if "value" in g else tuple(sorted(g))
            by_fields.setdefault(keys, set()).add(_fields(attribute, g, keys))

    def selects(element: object) -> bool:
        if not isinstance(element, dict):
            return _hashable(_norm(attribute, element)) in simple
        return any(_fields(attribute, element, keys) in found for keys, found in by_fields.items())

    return selects


def _fields(attribute: Attribute, element: dict, keys) -> tuple:
    """Return the normalised (name, value) pairs of `keys` in a complex element."""
    return tuple((k, _hashable(_norm(attribute.sub(k), element.get(k)))) for k in keys)


def _hashable(value: object) -> Hashable:
    """Return `value`, or a canonical JSON text of it when it is a list or object."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return value


def _norm(attribute: Attribute | None, value: object) -> object:
    """Return the case-insensitive key unless the attribute is caseExact (RFC 7643 §2.2)."""
    if isinstance(value, str) and attribute is not None and not attribute.case_exact:
        return textkey.key(value)
    return value


# --- the rules checked after each write ----------------------------------------------------


def _check_mutability(path: Path, before: object, after: object) -> None:
    """Refuse changing a readOnly value, or an immutable one already set (RFC 7644 §3.5.2)."""
    if before == after:
        return  # e.g. Okta resending the same id: nothing is modified
    _guard(path.attribute, before, path.attribute.name)
    # Only a path naming a sub-attribute is checked against the sub-attribute: readOnly
    # parts of a writable value (manager.displayName) are the server's, and coercion
    # already ignores them in a written value (RFC 7643 §2.2).
    if path.sub is not None:
        _guard(path.sub, before, path.text)


def _guard(attribute: Attribute, old: object, where: str) -> None:
    """Raise mutability for a change `attribute`'s mutability forbids (RFC 7643 §2.2)."""
    if attribute.mutability == "readOnly":
        raise errors.Mutability(f"Attribute '{where}' is readOnly.")
    if attribute.mutability == "immutable" and old not in (None, "", [], {}):
        raise errors.Mutability(f"Attribute '{where}' is immutable and already has a value.")


def _check_required(path: Path, after: object) -> None:
    """Refuse to leave a required attribute unassigned (RFC 7643 §2.2, RFC 7644 §3.12)."""
    if path.attribute.required and after in (None, "", [], {}):
        raise errors.InvalidValue(f"Attribute '{path.attribute.name}' is required.")


def _enforce_primary(holder: dict, attribute: Attribute, written: list) -> None:
    """Make a newly primary element the only one (RFC 7643 §2.4)."""
    chosen = [e for e in written if isinstance(e, dict) and _is_primary(e)]
    if attribute.sub("primary") is None or not chosen:
        return
    if len({id(e) for e in chosen}) > 1:
        raise errors.InvalidValue(f"Attribute '{attribute.name}' has more than one primary value.")
    items = holder.get(attribute.name) or []
    holder[attribute.name] = [
        {**e, "primary": False} if e is not chosen[0] and _is_primary(e) else e for e in items
    ]


def _is_primary(element: dict) -> bool:
    return schemas.coerce_boolean(element.get("primary")) is True
