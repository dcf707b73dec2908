"""Resource bodies in and out: validation to canonical form, and response projection.

Canonical form is SCIM JSON with the attribute names exactly as the schemas declare
them: core and common attributes (externalId) at the top level, extension attributes
in an object under the extension URN. `normalise` turns what a client sent into that
form (RFC 7643 §2, RFC 7644 §3.3, §3.5.1); `project` cuts a full canonical resource down
to what a response carries (RFC 7643 §2.2 `returned`, RFC 7644 §3.4.2.5, §3.9).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from datetime import datetime

from skilljar_scim.base import textkey
from skilljar_scim.base.errors import InvalidSyntax, InvalidValue
from skilljar_scim.scim.schemas import (
    COMMON_ATTRIBUTES,
    KNOWN_URNS,
    SEARCH_REQUEST,
    Attribute,
    ResourceType,
    Schema,
    coerce_boolean,
    common_attribute,
    declares,
    parse_attr_path,
)


# Group members are rows of their own (max_members_per_patch bounds a change to them), not
# part of the stored document, so the bounds below leave them out.
STORED_APART = ("members",)

_DROP = object()  # marks "leave this out of the output"; False and 0 are real values


# --- normalise: client body -> canonical form --------------------------------------------


def normalise(
    rtype: ResourceType,
    body: object,
    *,
    ignored: list[str] | None = None,
) -> dict:
    """Validate a POST/PUT body and return it in canonical form (RFC 7644 §3.3, §3.5.1).

    Names of attributes the server does not know are appended to `ignored` (RFC 7644
    §3.3 lets the server ignore them), so a caller can log a warning. A POST and a PUT
    body follow the same rules here; immutable values are compared with the stored
    resource by the domain layer.
    """
    if not isinstance(body, dict):
        raise InvalidSyntax("The request body must be a JSON object.")
    ignored = [] if ignored is None else ignored
    out: dict = {}
    for key, value in body.items():
        _take_member(rtype, out, key, value, ignored)
    _check_required(rtype, out)
    return out


def _take_member(rtype: ResourceType, out: dict, key: str, value: object, ignored: list) -> None:
    """Put one top-level member of the body into `out` under its canonical name."""
    # `schemas` is rebuilt on output; IdPs send URNs we do not know (RFC 7643 §3).
    if key.lower() == "schemas":
        return
    schema = rtype.schema_by_urn(key)
    if schema is not None:
        _take_schema_object(rtype, schema, out, value, ignored)
        return
    resolved = _resolve_member(rtype, key)
    if resolved is None:
        ignored.append(key)
        return
    schema, attribute = resolved
    _put(rtype, out, schema, attribute, value, _path(rtype, schema, attribute.name), ignored)


def _take_schema_object(
    rtype: ResourceType, schema: Schema, out: dict, value: object, ignored: list
) -> None:
    """Take the attributes of an object keyed by a schema URN (RFC 7643 §3.3)."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise InvalidValue(f"'{schema.id}' must be a JSON object.")
    for key, member in value.items():
        attribute = _attribute_of(rtype, schema, key)
        path = _path(rtype, schema, attribute.name if attribute else key)
        if attribute is None:
            ignored.append(path)
        else:
            _put(rtype, out, schema, attribute, member, path, ignored)


def _resolve_member(rtype: ResourceType, key: str) -> tuple[Schema, Attribute] | None:
    """Resolve a plain or URN-qualified top-level key to (schema, attribute), or None."""
    attribute = _attribute_of(rtype, rtype.schema, key)  # most keys: a plain name, found without parsing
    if attribute is not None:
        return rtype.schema, attribute
    try:
        path = parse_attr_path(key, KNOWN_URNS)
    except ValueError:
        return None
    resolved = rtype.resolve(path) if path.sub is None else None
    return (resolved.schema, resolved.attribute) if resolved else None


def _attribute_of(rtype: ResourceType, schema: Schema, name: str) -> Attribute | None:
    """Find `name` in `schema`; the core schema also answers for common attributes."""
    attribute = schema.attribute(name)
    if attribute is None and schema is rtype.schema:
        attribute = common_attribute(name)
    return attribute


def _put(
    rtype: ResourceType,
    out: dict,
    schema: Schema,
    attribute: Attribute,
    value: object,
    path: str,
    ignored: list,
) -> None:
    """Validate one attribute value and store it where canonical form puts it."""
    # RFC 7643 §2.2: readOnly values sent by a client SHALL be ignored (id, meta, groups, roles).
    if attribute.mutability == "readOnly":
        return
    target = out if schema is rtype.schema else out.get(schema.id, {})
    if attribute.name in target:
        raise InvalidValue(f"Attribute '{path}' is given more than once.")
    coerced = coerce_value(attribute, value, path, ignored=ignored)
    if coerced is not None:
        target[attribute.name] = coerced
        if target is not out:
            out[schema.id] = target


def _check_required(rtype: ResourceType, out: dict) -> None:
    """Reject a body that lacks a required attribute (RFC 7643 §2.2 `required`)."""
    for schema in rtype.schemas:
        target = out if schema is rtype.schema else out.get(schema.id)
        if target is None:
            continue  # extensions are optional (schemaExtensions required=false)
        for attribute in schema.required:
            if attribute.name not in target:
                raise InvalidValue(
                    f"Attribute '{_path(rtype, schema, attribute.name)}' is required."
                )


def _path(rtype: ResourceType, schema: Schema, name: str) -> str:
    """Name an attribute for error messages: URN-qualified only for extensions."""
    return name if schema is rtype.schema else f"{schema.id}:{name}"


# --- bounds: how large a stored resource may be --------------------------------------------


@dataclass(frozen=True)
class Bounds:
    """How large a stored resource may be (README "Limits"); 0 means no limit."""

    max_values: int = 100  # values of one multi-valued attribute
    max_bytes: int = 65_536  # the resource's JSON, compact, in UTF-8

    @classmethod
    def from_limits(cls, limits) -> "Bounds":
        """Build the bounds from the [limits] settings."""
        return cls(limits.max_values_per_attribute, limits.max_resource_bytes)


def check_bounds(rtype: ResourceType, data: dict, bounds: Bounds) -> None:
    """Refuse a canonical resource larger than this server stores (RFC 7644 §3.12 invalidValue)."""
    if bounds.max_values > 0:
        for schema, attribute in rtype.counted:
            target = data if schema is rtype.schema else data.get(schema.id) or {}
            _check_value_count(rtype, schema, attribute, target.get(attribute.name), bounds.max_values)
    if bounds.max_bytes > 0:
        stored = {k: v for k, v in data.items() if k not in STORED_APART}
        size = len(json.dumps(stored, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        if size > bounds.max_bytes:
            raise InvalidValue(f"The resource would take {size} bytes of JSON; this server stores at most "
                               f"{bounds.max_bytes} per resource.")


def _check_value_count(rtype: ResourceType, schema: Schema, attribute: Attribute, values: object,
                       max_values: int) -> None:
    """Refuse more values in a multi-valued attribute than `max_values`."""
    counted = attribute.name not in STORED_APART and isinstance(values, list)
    if counted and len(values) > max_values:
        path = _path(rtype, schema, attribute.name)
        raise InvalidValue(f"Attribute '{path}' may hold at most {max_values} values, not {len(values)}.")


# --- coerce_value: one attribute value -----------------------------------------------------


def coerce_value(
    attribute: Attribute, value: object, path: str, *, ignored: list[str] | None = None
) -> object:
    """Validate `value` for `attribute`; return its canonical form, or None for unset.

    null, "" and [] mean "no value" (RFC 7643 §2.5); a multi-valued attribute takes a
    JSON array (RFC 7643 §2.4) with at most one `primary: true`.
    """
    if _is_unset(value):
        return None
    if not attribute.multi_valued:
        return coerce_item(attribute, value, path, ignored=ignored)
    if not isinstance(value, list):
        raise InvalidValue(f"Attribute '{path}' is multi-valued: expected a JSON array.")
    items = [coerce_item(attribute, item, path, ignored=ignored) for item in value]
    items = [item for item in items if item is not None]
    _check_primary(attribute, items, path)
    return items or None


def coerce_item(
    attribute: Attribute, value: object, path: str, *, ignored: list[str] | None = None
) -> object:
    """Validate one value (one element, for a multi-valued attribute) (RFC 7643 §2.3)."""
    if _is_unset(value):
        return None
    if attribute.type == "complex":
        return _coerce_complex(attribute, value, path, ignored)
    return _SCALARS[attribute.type](value, path)


def _is_unset(value: object) -> bool:
    """Say whether a value means "unassigned" (RFC 7643 §2.5): null, "", [] or {}."""
    return value is None or (isinstance(value, (str, list, dict)) and not value)


def _coerce_complex(
    attribute: Attribute, value: object, path: str, ignored: list[str] | None
) -> dict | None:
    """Validate a complex value's sub-attributes (RFC 7643 §2.3.8)."""
    if isinstance(value, str) and not attribute.multi_valued and attribute.sub("value"):
        value = {"value": value}  # Entra ID sends the enterprise `manager` as a bare id
    if not isinstance(value, dict):
        raise InvalidValue(f"Attribute '{path}' must be a JSON object.")
    out: dict = {}
    seen: set[str] = set()
    for key, member in value.items():
        _take_sub(attribute, out, seen, key, member, path, ignored)
    return out or None


def _take_sub(attribute: Attribute, out: dict, seen: set, key: str, member: object, path: str,
              ignored: list[str] | None) -> None:
    """Put one sub-attribute into `out`; a name given twice in any case is refused (RFC 7643 §2.1)."""
    sub = attribute.sub(key)
    if sub is None:
        if ignored is not None:
            ignored.append(f"{path}.{key}")
        return
    if sub.name in seen:
        raise InvalidValue(f"Attribute '{path}.{sub.name}' is given more than once.")
    seen.add(sub.name)
    if sub.mutability != "readOnly":  # RFC 7643 §2.2: readOnly input is ignored
        coerced = coerce_value(sub, member, f"{path}.{sub.name}", ignored=ignored)
        if coerced is not None:
            out[sub.name] = coerced


def _check_primary(attribute: Attribute, items: list, path: str) -> None:
    """Reject more than one `primary: true` value (RFC 7643 §2.4)."""
    if attribute.sub("primary") is None:
        return
    if sum(1 for item in items if item.get("primary") is True) > 1:
        raise InvalidValue(f"Attribute '{path}' has more than one primary value.")


def _string(value: object, path: str) -> str:
    """Accept a JSON string without NUL characters (RFC 7643 §2.3.1)."""
    if not isinstance(value, str):
        raise InvalidValue(f"Attribute '{path}' must be a string.")
    if "\x00" in value:
        raise InvalidValue(f"Attribute '{path}' must not contain NUL characters.")
    return value


def _boolean(value: object, path: str) -> bool:
    """Accept true/false, or "True"/"False" as Entra ID sends them (RFC 7643 §2.3.2)."""
    value = coerce_boolean(value)
    if not isinstance(value, bool):
        raise InvalidValue(f"Attribute '{path}' must be a boolean.")
    return value


def _integer(value: object, path: str) -> int:
    """Accept a JSON integer, not a boolean (RFC 7643 §2.3.4)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(f"Attribute '{path}' must be an integer.")
    return value


def _decimal(value: object, path: str) -> int | float:
    """Accept a finite JSON number, not a boolean (RFC 7643 §2.3.3)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValue(f"Attribute '{path}' must be a number.")
    if not math.isfinite(value):
        raise InvalidValue(f"Attribute '{path}' must be a finite number.")
    return value


def _datetime(value: object, path: str) -> str:
    """Accept an xsd:dateTime string such as 2015-09-01T12:00:00Z (RFC 7643 §2.3.5)."""
    text = _string(value, path)
    try:
        datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text)
    except ValueError:
        raise InvalidValue(f"Attribute '{path}' must be an ISO 8601 date-time.") from None
    return text


def _binary(value: object, path: str) -> str:
    """Accept base64 text; line breaks are tolerated (RFC 7643 §2.3.6)."""
    text = _string(value, path)
    try:
        base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidValue(f"Attribute '{path}' must be base64-encoded.") from None
    return text


_SCALARS = {
    "string": _string,
    "boolean": _boolean,
    "integer": _integer,
    "decimal": _decimal,
    "dateTime": _datetime,
    "reference": _string,  # RFC 7643 §2.3.7: a URI; relative and URN forms are allowed
    "binary": _binary,
}


# --- project: canonical resource -> response ---------------------------------------------

_Key = tuple[str, str]  # (schema URN, canonical attribute name)
_Selection = dict[_Key, "set[str] | None"]  # None: the whole attribute; else sub-attributes


def parse_attribute_list(text: str | None) -> list[str] | None:
    """Split an attributes/excludedAttributes parameter on commas (RFC 7644 §3.4.2.5)."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    return names or None


def project(
    resource: dict,
    rtype: ResourceType,
    attributes: list[str] | None = None,
    excluded: list[str] | None = None,
) -> dict:
    """Return the part of a canonical resource a response carries (RFC 7644 §3.4.2.5, §3.9).

    `returned` decides first (RFC 7643 §2.2): never is never sent, always is always
    sent; `attributes` narrows the default set and is the only way to get `request`
    attributes; `excludedAttributes` removes default ones. Unknown names are ignored.
    """
    wanted = _selection(rtype, attributes) if attributes else None
    unwanted = _selection(rtype, excluded or [])
    out: dict = {"schemas": [rtype.schema.id]}
    for key, value in resource.items():
        schema = rtype.schema_by_urn(key)
        if schema is not None and schema is not rtype.schema:
            _project_extension(out, schema, value, wanted, unwanted)
        elif key == "meta":
            out["meta"] = value  # kept always: it carries the ETag and location
        elif key != "schemas":
            _project_core(out, rtype, key, value, wanted, unwanted)
    return out


def _project_core(
    out: dict,
    rtype: ResourceType,
    key: str,
    value: object,
    wanted: _Selection | None,
    unwanted: _Selection,
) -> None:
    """Project one core or common attribute into `out`."""
    attribute = _attribute_of(rtype, rtype.schema, key)
    if attribute is None:
        return
    selection_key = (rtype.schema.id, attribute.name)
    kept = _project_attribute(attribute, value, selection_key, wanted, unwanted)
    if kept is not _DROP:
        out[attribute.name] = kept


def _project_extension(
    out: dict, schema: Schema, value: object, wanted: _Selection | None, unwanted: _Selection
) -> None:
    """Project an extension object; leave it (and its URN in `schemas`) out when empty."""
    if not isinstance(value, dict):
        return
    kept = {}
    for key, member in value.items():
        attribute = schema.attribute(key)
        if attribute is None:
            continue
        selection_key = (schema.id, attribute.name)
        projected = _project_attribute(attribute, member, selection_key, wanted, unwanted)
        if projected is not _DROP:
            kept[attribute.name] = projected
    if kept:
        out[schema.id] = kept
        out["schemas"].append(schema.id)


def _project_attribute(
    attribute: Attribute, value: object, key: _Key, wanted: _Selection | None, unwanted: _Selection
) -> object:
    """Return the projected value of one attribute, or _DROP (RFC 7643 §2.2 `returned`)."""
    if value is None or attribute.returned == "never":
        return _DROP
    if attribute.returned == "always":
        return value
    if key in unwanted and unwanted[key] is None:
        return _DROP
    if wanted is None and attribute.returned == "request":
        return _DROP
    if wanted is not None and key not in wanted:
        return _DROP
    subs_wanted = wanted[key] if wanted is not None else None
    return _project_subs(attribute, value, subs_wanted, unwanted.get(key) or set())


def _project_subs(attribute: Attribute, value: object, wanted: set | None, unwanted: set) -> object:
    """Apply sub-attribute selection to a complex value, element by element."""
    if attribute.type != "complex":
        return value
    if attribute.multi_valued and isinstance(value, list):
        items = [_project_item(attribute, item, wanted, unwanted) for item in value]
        items = [item for item in items if item]
        return items or _DROP
    if isinstance(value, dict):
        return _project_item(attribute, value, wanted, unwanted) or _DROP
    return value


def _project_item(attribute: Attribute, item: object, wanted: set | None, unwanted: set) -> dict:
    """Keep the sub-attributes of one complex value that the selection returns."""
    if not isinstance(item, dict):
        return {}
    kept = {}
    for key, value in item.items():
        sub = attribute.sub(key)
        if sub is not None and value is not None and _sub_returned(sub, wanted, unwanted):
            kept[sub.name] = value
    return kept


def _sub_returned(sub: Attribute, wanted: set | None, unwanted: set) -> bool:
    """Decide whether one sub-attribute is returned (RFC 7643 §2.2, RFC 7644 §3.9)."""
    if sub.returned in ("never", "always"):
        return sub.returned == "always"
    if sub.name in unwanted:
        return False
    if wanted is not None:
        return sub.name in wanted
    return sub.returned != "request"


def _selection(rtype: ResourceType, names: list[str]) -> _Selection:
    """Resolve attribute paths to {(urn, attribute): None | {sub, ...}}; unknown are dropped."""
    selection: _Selection = {}
    for name in names:
        for key, sub in _targets(rtype, name.strip()):
            if sub is None:
                selection[key] = None
            elif selection.get(key, set()) is not None:
                selection.setdefault(key, set()).add(sub)
    return selection


def _targets(rtype: ResourceType, name: str) -> list[tuple[_Key, str | None]]:
    """Return what one path names: an attribute, a sub-attribute or a whole schema."""
    schema = rtype.schema_by_urn(name)
    if schema is not None:  # a bare URN names every attribute of that schema
        attributes = schema.attributes
        if schema is rtype.schema:
            attributes += COMMON_ATTRIBUTES
        return [((schema.id, a.name), None) for a in attributes]
    try:
        resolved = rtype.resolve(parse_attr_path(name, KNOWN_URNS))
    except ValueError:
        return []
    if resolved is None:
        return []
    key = (resolved.schema.id, resolved.attribute.name)
    return [(key, resolved.sub.name if resolved.sub else None)]


def is_returned(rtype: ResourceType, name: str, attributes: list[str] | None, excluded: list[str] | None) -> bool:
    """Say whether a default-returned core attribute survives attributes/excludedAttributes.

    Lets a caller skip loading data nobody will see (e.g. Group members, RFC 7644 §3.9).
    Uses the same resolution as `project`: a bare schema URN names all its attributes, and
    excluding a sub-attribute (members.display) still returns the attribute.
    """
    key = (rtype.schema.id, rtype.schema.attribute(name).name)
    if attributes:
        return key in _selection(rtype, attributes)
    return _selection(rtype, excluded or []).get(key, set()) is not None


def check_search_request(body: object) -> dict:
    """Check a SearchRequest body (RFC 7644 §3.4.3) and return it as a parameter source."""
    if not isinstance(body, dict):
        raise InvalidSyntax("a SearchRequest must be a JSON object")
    if not declares(body.get("schemas"), SEARCH_REQUEST):  # required, as in every SCIM message (RFC 7644 §3.4.3)
        raise InvalidValue(f"a SearchRequest must declare schemas [{SEARCH_REQUEST!r}]")
    for key in ("attributes", "excludedAttributes"):
        value = _member(body, key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise InvalidValue(f"{key} must be a list of attribute names")
    for key in ("filter", "sortBy", "sortOrder"):
        if not isinstance(_member(body, key), (str, type(None))):
            raise InvalidValue(f"{key} must be a string")
    return body


def _member(body: dict, name: str) -> object:
    """Read a SearchRequest member as the views do, its name in any case (RFC 7644 §3.10)."""
    return textkey.get(body, name)
