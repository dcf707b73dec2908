"""PATCH (RFC 7644 §3.5.2): message parsing, path grammar, applying ops, member changes."""

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skilljar_scim.base import errors
from skilljar_scim.scim import patch
from skilljar_scim.scim import schemas as s

ENT = s.ENTERPRISE_USER
PATCH_OP = s.PATCH_OP

USER = {
    "schemas": [s.USER, ENT],
    "id": "u1",
    "externalId": "ext-1",
    "userName": "bjensen@example.com",
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "displayName": "Babs",
    "active": True,
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@home.example", "type": "home"},
    ],
    "addresses": [{"type": "work", "formatted": "1 Main St", "locality": "Springfield"}],
    "groups": [{"value": "g1", "display": "Admins", "type": "direct"}],
    "meta": {"resourceType": "User", "created": "2024-01-01T00:00:00Z", "version": 'W/"1"'},
    ENT: {"employeeNumber": "701984", "manager": {"value": "m1", "displayName": "Boss"}},
}

BARE_USER = {"schemas": [s.USER], "id": "u2", "userName": "plain@example.com"}

GROUP = {
    "schemas": [s.GROUP],
    "id": "g1",
    "displayName": "Admins",
    "meta": {"resourceType": "Group", "version": 'W/"3"'},
}


def _body(*ops, **extra):
    return {"schemas": [PATCH_OP], "Operations": list(ops), **extra}


def _run(resource, *ops, rtype=s.USER_TYPE):
    return patch.apply(resource, patch.parse(_body(*ops), rtype), rtype)


def _assert_scim_error(exc_info, cls, scim_type):
    assert isinstance(exc_info.value, cls)
    assert exc_info.value.scim_type == scim_type
    assert exc_info.value.status == 400


WORK, HOME = ("bjensen@example.com", "work"), ("babs@home.example", "home")
OTHER, NEW_WORK = ("o@x.example", "other"), ("w@x.example", "work")


def _email(doc, kind):
    return next(e for e in doc["emails"] if e.get("type") == kind)


# --- parse: the message ----------------------------------------------------------------


@pytest.mark.parametrize("op", ["add", "Add", "ADD", "replace", "Replace", "rEpLaCe"])
def test_parse_op_in_any_case(op):
    [operation] = patch.parse(_body({"op": op, "path": "title", "value": "VP"}), s.USER_TYPE)
    assert operation.op == op.lower()
    assert operation.path.attribute.name == "title"


def test_parse_message_keys_and_schema_urn_in_any_case():
    body = {"SCHEMAS": [PATCH_OP.upper()],
            "operations": [{"OP": "Remove", "Path": "title"}]}
    [operation] = patch.parse(body, s.USER_TYPE)
    assert (operation.op, operation.path.text, operation.value) == ("remove", "title", None)


@pytest.mark.parametrize(
    "body",
    [
        [],
        "patch",
        {"Operations": [{"op": "add", "path": "title", "value": "x"}]},
        {"schemas": [s.USER], "Operations": [{"op": "add", "path": "title", "value": "x"}]},
        {"schemas": PATCH_OP, "Operations": [{"op": "add", "path": "title", "value": "x"}]},
        {"schemas": [PATCH_OP]},
        {"schemas": [PATCH_OP], "Operations": []},
        {"schemas": [PATCH_OP], "Operations": {"op": "add"}},
        _body("add"),
        _body({"op": "move", "path": "title", "value": "x"}),
        _body({"op": None, "path": "title", "value": "x"}),
        _body({"path": "title", "value": "x"}),
        _body({"op": "add", "path": "title"}),
        _body({"op": "replace", "path": "title"}),
    ],
    ids=["list", "string", "no-schemas", "wrong-schema", "schemas-not-list", "no-operations",
         "empty-operations", "operations-not-list", "op-not-object", "unknown-op", "null-op",
         "missing-op", "add-without-value", "replace-without-value"],
)
def test_parse_malformed_message_is_invalid_syntax(body):
    with pytest.raises(errors.BadRequest) as exc_info:
        patch.parse(body, s.USER_TYPE)
    _assert_scim_error(exc_info, errors.InvalidSyntax, "invalidSyntax")


def test_parse_more_than_max_operations_is_too_many():
    ops = [{"op": "add", "path": "title", "value": str(n)} for n in range(4)]
    assert len(patch.parse(_body(*ops[:3]), s.USER_TYPE, max_operations=3)) == 3
    with pytest.raises(errors.BadRequest) as exc_info:
        patch.parse(_body(*ops), s.USER_TYPE, max_operations=3)
    _assert_scim_error(exc_info, errors.TooMany, "tooMany")


@pytest.mark.parametrize("operation", [
    {"op": "remove"},
    {"op": "Remove", "path": ""},
    {"op": "remove", "path": None, "value": {"title": "x"}},
])
def test_parse_remove_without_path_is_no_target(operation):
    with pytest.raises(errors.BadRequest) as exc_info:
        patch.parse(_body(operation), s.USER_TYPE)
    _assert_scim_error(exc_info, errors.NoTarget, "noTarget")


def test_parse_keeps_value_and_order():
    ops = patch.parse(_body(
        {"op": "replace", "value": {"displayName": "x"}},
        {"op": "remove", "path": "title"},
        {"op": "add", "path": "nickName", "value": None},
    ), s.USER_TYPE)
    assert [(o.op, o.path and o.path.text, o.value) for o in ops] == [
        ("replace", None, {"displayName": "x"}), ("remove", "title", None),
        ("add", "nickName", None)]


@pytest.mark.parametrize("value", ["x", ["displayName"], 3])
def test_parse_pathless_value_not_object_is_invalid_value(value):
    with pytest.raises(errors.BadRequest) as exc_info:
        patch.parse(_body({"op": "replace", "value": value}), s.USER_TYPE)
    _assert_scim_error(exc_info, errors.InvalidValue, "invalidValue")


@pytest.mark.parametrize("value", [
    {"nickname2": "x"},
    {"name.nosuch": "x"},
    {f"{ENT}:nosuch": "x"},
    {ENT: {"nosuch": "x"}},
    {"members": []},
])
def test_parse_pathless_value_unknown_key_is_invalid_path(value):
    with pytest.raises(errors.BadRequest) as exc_info:
        patch.parse(_body({"op": "add", "value": value}), s.USER_TYPE)
    _assert_scim_error(exc_info, errors.InvalidPath, "invalidPath")


# --- parse_path: the grammar -----------------------------------------------------------


@pytest.mark.parametrize(
    "text, rtype, expected",
    [
        ("title", s.USER_TYPE, (s.USER, "title", None, False)),
        ("name.givenName", s.USER_TYPE, (s.USER, "name", "givenName", False)),
        ("NAME.GIVENNAME", s.USER_TYPE, (s.USER, "name", "givenName", False)),
        (f"{s.USER}:userName", s.USER_TYPE, (s.USER, "userName", None, False)),
        (f"{s.USER}:name.familyName", s.USER_TYPE, (s.USER, "name", "familyName", False)),
        (f"{ENT}:manager", s.USER_TYPE, (ENT, "manager", None, False)),
        (f"{ENT.lower()}:Manager.Value", s.USER_TYPE, (ENT, "manager", "value", False)),
        (f"{ENT}:employeeNumber", s.USER_TYPE, (ENT, "employeeNumber", None, False)),
        ("id", s.USER_TYPE, (s.USER, "id", None, False)),
        ("meta.lastModified", s.USER_TYPE, (s.USER, "meta", "lastModified", False)),
        ('emails[type eq "work"]', s.USER_TYPE, (s.USER, "emails", None, True)),
        ('emails[type eq "work"].value', s.USER_TYPE, (s.USER, "emails", "value", True)),
        ('Emails[Type EQ "work"].Value', s.USER_TYPE, (s.USER, "emails", "value", True)),
        ('addresses[type eq "work"].formatted', s.USER_TYPE,
         (s.USER, "addresses", "formatted", True)),
        ('emails[value eq "a]b[c"]', s.USER_TYPE, (s.USER, "emails", None, True)),
        ('emails[value eq "q\\"]"]', s.USER_TYPE, (s.USER, "emails", None, True)),
        ('emails[type eq "work" and not (primary eq false)]', s.USER_TYPE,
         (s.USER, "emails", None, True)),
        ("  emails  ", s.USER_TYPE, (s.USER, "emails", None, False)),
        ("members", s.GROUP_TYPE, (s.GROUP, "members", None, False)),
        ('members[value eq "2819c223"]', s.GROUP_TYPE, (s.GROUP, "members", None, True)),
        ('members[value eq "2819c223"].display', s.GROUP_TYPE,
         (s.GROUP, "members", "display", True)),
    ],
)
def test_parse_path_resolves_canonical_names(text, rtype, expected):
    path = patch.parse_path(text, rtype)
    sub = path.sub.name if path.sub else None
    assert (path.resolved.schema.id, path.attribute.name, sub, path.filter is not None) == expected


@pytest.mark.parametrize(
    "text",
    [
        "", "   ", 7, None, "nosuch", "name.nosuch", "name.givenName.x", "emails..value",
        "1title", "title!", "urn:example:unknown:2.0:User:title", f"{s.GROUP}:displayName",
        "members", "schemas", 'emails[type eq "work"', 'emails]', 'emails[type eq "work"]x',
        'emails[type eq "work"].', 'emails[type eq "work"].nosuch', 'emails[]', 'emails[  ]',
        'emails[type eq "a"][value eq "b"]', 'emails[type eq "a" and x[y eq "b"]]',
        'name[givenName eq "x"]', 'title[value eq "x"]', 'name.givenName[value eq "x"]',
        'nosuch[value eq "x"]',
    ],
)
def test_parse_path_malformed_or_unknown_is_invalid_path(text):
    with pytest.raises(errors.BadRequest) as exc_info:
        patch.parse_path(text, s.USER_TYPE)
    _assert_scim_error(exc_info, errors.InvalidPath, "invalidPath")


@pytest.mark.parametrize("text", [
    'emails[nosuch eq "x"]', 'emails[type zz "work"]', 'emails[type eq]',
    'emails[primary gt true]', 'emails[type eq "work" and]', 'emails[(type eq "work"]',
])
def test_parse_path_bad_filter_is_invalid_filter(text):
    with pytest.raises(errors.BadRequest) as exc_info:
        patch.parse_path(text, s.USER_TYPE)
    _assert_scim_error(exc_info, errors.InvalidFilter, "invalidFilter")


# --- apply: single-valued and complex attributes ---------------------------------------------


@pytest.mark.parametrize(
    "ops, read, expected",
    [
        ([{"op": "add", "path": "title", "value": "VP"}], lambda d: d["title"], "VP"),
        ([{"op": "replace", "path": "displayName", "value": "B"}],
         lambda d: d["displayName"], "B"),
        ([{"op": "Replace", "path": "active", "value": "False"}], lambda d: d["active"], False),
        ([{"op": "replace", "path": "active", "value": "false"},
          {"op": "replace", "path": "active", "value": "True"}], lambda d: d["active"], True),
        ([{"op": "replace", "value": {"active": "False"}}], lambda d: d["active"], False),
        ([{"op": "replace", "path": "name.givenName", "value": "Babs"}],
         lambda d: d["name"], {"givenName": "Babs", "familyName": "Jensen"}),
        ([{"op": "replace", "path": "name", "value": {"givenName": "B"}}],
         lambda d: d["name"], {"givenName": "B", "familyName": "Jensen"}),
        ([{"op": "add", "path": "name", "value": {"middleName": "J"}}],
         lambda d: d["name"], {"givenName": "Barbara", "familyName": "Jensen", "middleName": "J"}),
        ([{"op": "replace", "path": "name", "value": {"givenName": None}}],
         lambda d: d["name"], {"familyName": "Jensen"}),
        ([{"op": "remove", "path": "name.familyName"}],
         lambda d: d["name"], {"givenName": "Barbara"}),
        ([{"op": "remove", "path": "name.givenName"}, {"op": "remove", "path": "name.familyName"}],
         lambda d: "name" in d, False),
        ([{"op": "remove", "path": "displayName"}], lambda d: "displayName" in d, False),
        ([{"op": "remove", "path": "nickName"}], lambda d: "nickName" in d, False),
        ([{"op": "replace", "path": "displayName", "value": None}],
         lambda d: "displayName" in d, False),
        ([{"op": "replace", "path": "displayName", "value": ""}],
         lambda d: "displayName" in d, False),
        ([{"op": "replace", "value": {"displayName": None}}], lambda d: "displayName" in d, False),
        ([{"op": "replace", "path": "externalId", "value": "ext-2"}],
         lambda d: d["externalId"], "ext-2"),
        ([{"op": "replace", "path": "password", "value": "s3cret!"}],
         lambda d: d["password"], "s3cret!"),
    ],
    ids=["add-scalar", "replace-scalar", "bool-string", "bool-string-true", "pathless-bool",
         "sub-attribute", "complex-merge-replace", "complex-merge-add", "complex-null-sub",
         "remove-sub", "remove-last-sub", "remove-attribute", "remove-absent", "replace-null",
         "replace-empty-string", "pathless-null", "external-id", "write-only"],
)
def test_apply_single_valued(ops, read, expected):
    assert read(_run(USER, *ops)) == expected


@pytest.mark.parametrize(
    "value, read, expected",
    [
        ({"name.givenName": "Bee", f"{ENT}:employeeNumber": "42"},
         lambda d: (d["name"]["givenName"], d[ENT]["employeeNumber"]), ("Bee", "42")),
        ({ENT: {"department": "Sales", "manager": {"value": "m2"}}},
         lambda d: (d[ENT]["department"], d[ENT]["manager"]["value"]), ("Sales", "m2")),
        ({"DisplayName": "x", "NAME.GIVENNAME": "y", "userNAME": "z@example.com"},
         lambda d: (d["displayName"], d["name"]["givenName"], d["userName"]),
         ("x", "y", "z@example.com")),
        ({f"{ENT.upper()}:Department": "Ops"}, lambda d: d[ENT]["department"], "Ops"),
        ({f"{s.USER}:title": "CTO"}, lambda d: d["title"], "CTO"),
        ({f"{ENT}:manager.value": "m3"}, lambda d: d[ENT]["manager"]["value"], "m3"),
        ({"schemas": ["urn:whatever"], "title": "T"}, lambda d: (d["title"], d["schemas"]),
         ("T", [s.USER, ENT])),
    ],
    ids=["dotted-and-urn-keys", "extension-object", "keys-any-case", "urn-any-case",
         "core-urn-key", "urn-dotted-key", "schemas-ignored"],
)
def test_apply_pathless_value_keys_are_paths(value, read, expected):
    for op in ("add", "replace"):
        assert read(_run(USER, {"op": op, "value": value})) == expected


@pytest.mark.parametrize("path, value", [
    (f"{ENT}:manager", "m2"),
    (f"{ENT}:manager", {"value": "m2"}),
    (f"{ENT}:manager.value", "m2"),
])
def test_apply_manager_accepts_bare_id(path, value):
    doc = _run(USER, {"op": "Replace", "path": path, "value": value})
    assert doc[ENT]["manager"]["value"] == "m2"
    assert doc[ENT]["employeeNumber"] == "701984"


def test_apply_remove_manager_despite_read_only_display_name():
    doc = _run(USER, {"op": "Remove", "path": f"{ENT}:manager"})
    assert doc[ENT] == {"employeeNumber": "701984"}


def test_apply_emptying_extension_drops_it_and_its_urn():
    doc = _run(USER, {"op": "remove", "path": f"{ENT}:manager"},
               {"op": "remove", "path": f"{ENT}:employeeNumber"})
    assert ENT not in doc
    assert doc["schemas"] == [s.USER]


def test_apply_first_extension_attribute_adds_its_urn():
    doc = _run(BARE_USER, {"op": "add", "path": f"{ENT}:department", "value": "R&D"})
    assert doc[ENT] == {"department": "R&D"}
    assert doc["schemas"] == [s.USER, ENT]


@pytest.mark.parametrize("operation", [
    {"op": "replace", "path": "active", "value": "yes"},
    {"op": "replace", "path": "active", "value": 1},
    {"op": "replace", "path": "title", "value": 5},
    {"op": "replace", "path": "name", "value": "Barbara"},
    {"op": "replace", "path": "emails", "value": "a@example.com"},
    {"op": "add", "path": "emails", "value": [{"value": 3}]},
    {"op": "replace", "path": 'emails[type eq "work"].primary', "value": "maybe"},
    {"op": "replace", "value": {"active": "nope"}},
])
def test_apply_ill_typed_value_is_invalid_value(operation):
    with pytest.raises(errors.BadRequest) as exc_info:
        _run(USER, operation)
    _assert_scim_error(exc_info, errors.InvalidValue, "invalidValue")


# --- apply: multi-valued attributes -------------------------------------------------------


@pytest.mark.parametrize(
    "resource, ops, expected",
    [
        (USER, [{"op": "add", "path": "emails", "value": [{"value": OTHER[0], "type": "other"}]}],
         [WORK, HOME, OTHER]),
        (USER, [{"op": "add", "path": "emails",
                 "value": [{"value": "BJensen@Example.com", "type": "WORK"}]}],
         [WORK, HOME]),
        (USER, [{"op": "add", "path": "emails", "value": {"value": OTHER[0], "type": "other"}}],
         [WORK, HOME, OTHER]),
        (USER, [{"op": "replace", "path": "emails",
                 "value": [{"value": "n@x.example", "type": "work"}]}],
         [("n@x.example", "work")]),
        (USER, [{"op": "replace", "value": {"emails": [{"value": "n@x.example", "type": "work"}]}}],
         [("n@x.example", "work")]),
        (USER, [{"op": "replace", "path": 'emails[type eq "work"].value', "value": "w@x.example"}],
         [("w@x.example", "work"), HOME]),
        (USER, [{"op": "replace", "path": 'emails[type eq "home"]',
                 "value": {"value": "h2@x.example", "type": "home"}}],
         [WORK, ("h2@x.example", "home")]),
        (USER, [{"op": "remove", "path": 'emails[type eq "home"]'}],
         [WORK]),
        (USER, [{"op": "remove", "path": 'emails[value ew "example.com"]'}],
         [HOME]),
        (USER, [{"op": "remove", "path": 'emails[type eq "work"].value'}],
         [HOME]),
        (USER, [{"op": "Remove", "path": "emails", "value": [{"value": "BABS@home.example"}]}],
         [WORK]),
        (USER, [{"op": "remove", "path": "emails", "value": [{"value": "absent@x.example"}]}],
         [WORK, HOME]),
        (USER, [{"op": "replace", "path": 'emails[type eq "work"].value', "value": None}],
         [HOME]),
        (BARE_USER, [{"op": "Add", "path": 'emails[type eq "work"].value', "value": "w@x.example"}],
         [NEW_WORK]),
        (BARE_USER, [{"op": "replace", "path": 'emails[type eq "work"].value',
                      "value": "w@x.example"}],
         [NEW_WORK]),
        (USER, [{"op": "add", "path": 'emails[type eq "other"].value', "value": OTHER[0]}],
         [WORK, HOME, OTHER]),
        (BARE_USER, [{"op": "replace", "path": 'emails[type eq "work"]',
                      "value": {"value": "w@x.example"}}],
         [NEW_WORK]),
        (BARE_USER, [{"op": "replace", "path": "emails.value", "value": "w@x.example"}],
         [("w@x.example", None)]),
        (BARE_USER, [{"op": "Add", "path": 'emails[type eq "work"].value', "value": ""}], []),
        (BARE_USER, [{"op": "replace", "path": 'emails[type eq "work"].value', "value": None}], []),
        (USER, [{"op": "remove", "path": "emails"}], []),
        (USER, [{"op": "replace", "path": "emails", "value": []}], []),
    ],
    ids=["add-appends", "add-skips-duplicate", "add-lone-element", "replace-list",
         "pathless-replace-list", "filter-replace-sub", "filter-replace-element",
         "filter-remove", "filter-remove-ew", "filter-remove-value-removes-element",
         "remove-by-value", "remove-absent-by-value", "filter-null-clears",
         "filter-add-creates", "filter-replace-creates", "filter-add-creates-beside",
         "filter-replace-element-creates", "sub-without-filter-creates", "entra-empty-add",
         "null-on-nothing", "remove-all", "replace-empty"],
)
def test_apply_multi_valued(resource, ops, expected):
    doc = _run(resource, *ops)
    assert [(e["value"], e.get("type")) for e in doc.get("emails", [])] == expected


def test_apply_filter_create_uses_every_equality_term():
    doc = _run(BARE_USER, {"op": "add", "value": "+1 555 0100",
                           "path": 'phoneNumbers[type eq "mobile" and primary eq true].value'})
    assert doc["phoneNumbers"] == [{"type": "mobile", "primary": True, "value": "+1 555 0100"}]


def test_apply_filter_replace_sub_of_complex_element_creates_and_updates():
    doc = _run(USER, {"op": "replace", "path": 'addresses[type eq "work"].formatted',
                      "value": "2 Side St"},
               {"op": "replace", "path": 'addresses[type eq "home"].locality', "value": "Shelby"})
    assert doc["addresses"] == [
        {"type": "work", "formatted": "2 Side St", "locality": "Springfield"},
        {"type": "home", "locality": "Shelby"},
    ]


def test_apply_filter_remove_sub_attribute_keeps_element():
    doc = _run(USER, {"op": "remove", "path": 'addresses[type eq "work"].formatted'})
    assert doc["addresses"] == [{"type": "work", "locality": "Springfield"}]


def test_apply_filter_add_merges_into_matching_element():
    doc = _run(USER, {"op": "add", "path": 'emails[type eq "home"]', "value": {"display": "Home"}})
    assert _email(doc, "home") == {"value": "babs@home.example", "type": "home", "display": "Home"}


@pytest.mark.parametrize("resource, operation", [
    (USER, {"op": "remove", "path": 'emails[type eq "other"]'}),
    (USER, {"op": "remove", "path": 'emails[type eq "other"].value'}),
    (BARE_USER, {"op": "remove", "path": 'emails[type eq "work"]'}),
    (BARE_USER, {"op": "replace", "path": 'emails[type eq "work" or type eq "home"].value',
                 "value": "x@x.example"}),
    (BARE_USER, {"op": "replace", "path": 'emails[value co "x"].type', "value": "work"}),
    (BARE_USER, {"op": "replace", "path": 'emails[type eq "work"]',
                 "value": {"type": "home", "value": "h@x.example"}}),
])
def test_apply_filter_without_target_is_no_target(resource, operation):
    with pytest.raises(errors.BadRequest) as exc_info:
        _run(resource, operation)
    _assert_scim_error(exc_info, errors.NoTarget, "noTarget")


@pytest.mark.parametrize(
    "ops, expected",
    [
        ([{"op": "add", "path": "emails",
           "value": [{"value": "n@x.example", "type": "other", "primary": True}]}],
         {"work": False, "home": None, "other": True}),
        ([{"op": "replace", "path": 'emails[type eq "home"].primary', "value": "True"}],
         {"work": False, "home": True}),
        ([{"op": "add", "path": 'emails[type eq "other"]',
           "value": {"value": "n@x.example", "primary": "true"}}],
         {"work": False, "home": None, "other": True}),
        ([{"op": "add", "path": "emails",
           "value": [{"value": "babs@home.example", "type": "home", "primary": True}]}],
         {"work": False, "home": True}),
        ([{"op": "replace", "path": 'emails[type eq "work"].primary', "value": False}],
         {"work": False, "home": None}),
        ([{"op": "add", "path": "emails", "value": [{"value": "n@x.example", "type": "other"}]}],
         {"work": True, "home": None, "other": None}),
    ],
    ids=["add-primary", "string-true", "filter-create-primary", "merge-into-existing",
         "unset-primary", "non-primary-add"],
)
def test_apply_primary_stays_unique(ops, expected):
    doc = _run(USER, *ops)
    assert {e["type"]: e.get("primary") for e in doc["emails"]} == expected


def test_apply_two_primaries_is_invalid_value():
    value = [{"value": "a@x.example", "primary": True}, {"value": "b@x.example", "primary": True}]
    with pytest.raises(errors.BadRequest) as exc_info:
        _run(USER, {"op": "replace", "path": "emails", "value": value})
    _assert_scim_error(exc_info, errors.InvalidValue, "invalidValue")


# --- apply: mutability and required ---------------------------------------------------------


@pytest.mark.parametrize(
    "resource, operation, rtype",
    [
        (USER, {"op": "replace", "path": "id", "value": "u9"}, s.USER_TYPE),
        (USER, {"op": "remove", "path": "id"}, s.USER_TYPE),
        (USER, {"op": "replace", "value": {"id": "u9", "displayName": "x"}}, s.USER_TYPE),
        (GROUP, {"op": "replace", "value": {"id": "g9", "displayName": "x"}}, s.GROUP_TYPE),
        (USER, {"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"},
         s.USER_TYPE),
        (USER, {"op": "replace", "value": {"meta": {"version": 'W/"9"'}}}, s.USER_TYPE),
        (USER, {"op": "remove", "path": "meta"}, s.USER_TYPE),
        (USER, {"op": "add", "path": "groups", "value": [{"value": "g2"}]}, s.USER_TYPE),
        (USER, {"op": "remove", "path": "groups"}, s.USER_TYPE),
        (USER, {"op": "remove", "path": 'groups[value eq "g1"]'}, s.USER_TYPE),
        (USER, {"op": "replace", "path": 'groups[value eq "g1"].display', "value": "x"},
         s.USER_TYPE),
        (BARE_USER, {"op": "add", "path": "roles", "value": [{"value": "global-admin"}]},
         s.USER_TYPE),
        (USER, {"op": "replace", "path": f"{ENT}:manager.displayName", "value": "Chief"},
         s.USER_TYPE),
        (USER, {"op": "remove", "path": f"{ENT}:manager.displayName"}, s.USER_TYPE),
    ],
    ids=["replace-id", "remove-id", "pathless-other-id", "okta-rename-other-id",
         "meta-sub", "pathless-meta", "remove-meta", "add-groups", "remove-groups",
         "remove-filtered-groups", "groups-sub", "add-roles", "manager-display-name",
         "remove-manager-display-name"],
)
def test_apply_read_only_change_is_mutability(resource, operation, rtype):
    with pytest.raises(errors.BadRequest) as exc_info:
        _run(resource, operation, rtype=rtype)
    _assert_scim_error(exc_info, errors.Mutability, "mutability")


@pytest.mark.parametrize(
    "resource, value, rtype",
    [
        (GROUP, {"id": "g1", "displayName": "Renamed"}, s.GROUP_TYPE),
        (GROUP, {"schemas": [s.GROUP], "id": "g1", "displayName": "Renamed",
                 "meta": {"resourceType": "Group"}}, s.GROUP_TYPE),
        (USER, {"id": "u1", "displayName": "Renamed",
                "groups": [{"value": "g1", "display": "Admins", "type": "direct"}]}, s.USER_TYPE),
    ],
    ids=["okta-group-rename", "with-schemas-and-meta", "unchanged-groups"],
)
def test_apply_read_only_resent_unchanged_is_ignored(resource, value, rtype):
    for op in ("replace", "add"):
        doc = _run(resource, {"op": op, "value": value}, rtype=rtype)
        assert doc == {**resource, "displayName": "Renamed"}


def test_apply_read_only_path_with_current_value_is_ignored():
    assert _run(USER, {"op": "replace", "path": "id", "value": "u1"}) == USER


@pytest.mark.parametrize("resource, operation, rtype", [
    (USER, {"op": "remove", "path": "userName"}, s.USER_TYPE),
    (USER, {"op": "replace", "path": "userName", "value": ""}, s.USER_TYPE),
    (USER, {"op": "replace", "value": {"userName": None}}, s.USER_TYPE),
    (GROUP, {"op": "remove", "path": "displayName"}, s.GROUP_TYPE),
])
def test_apply_clearing_required_is_invalid_value(resource, operation, rtype):
    with pytest.raises(errors.BadRequest) as exc_info:
        _run(resource, operation, rtype=rtype)
    _assert_scim_error(exc_info, errors.InvalidValue, "invalidValue")


# --- apply: atomicity ---------------------------------------------------------------------


def test_apply_never_changes_its_input():
    before = copy.deepcopy(USER)
    doc = _run(USER, {"op": "replace", "path": "name.givenName", "value": "B"},
               {"op": "add", "path": "emails",
                "value": [{"value": "n@x.example", "primary": True}]},
               {"op": "remove", "path": f"{ENT}:manager"})
    assert USER == before
    assert doc != before


@pytest.mark.parametrize("failing", [
    {"op": "replace", "path": "id", "value": "u9"},
    {"op": "remove", "path": 'emails[type eq "fax"]'},
    {"op": "replace", "path": "active", "value": "perhaps"},
    {"op": "remove", "path": "userName"},
])
def test_apply_failing_operation_leaves_input_unchanged(failing):
    resource = copy.deepcopy(USER)
    ops = patch.parse(_body(
        {"op": "replace", "path": "displayName", "value": "Changed"},
        {"op": "remove", "path": 'emails[type eq "home"]'},
        {"op": "add", "path": f"{ENT}:department", "value": "Ops"},
        failing,
    ), s.USER_TYPE)
    with pytest.raises(errors.BadRequest):
        patch.apply(resource, ops, s.USER_TYPE)
    assert resource == USER


# --- split_members ------------------------------------------------------------------------


def _split(*ops):
    return patch.split_members(patch.parse(_body(*ops), s.GROUP_TYPE), s.GROUP_TYPE)


@pytest.mark.parametrize(
    "operation, expected",
    [
        ({"op": "Add", "path": "members", "value": [{"value": "id1"}, {"value": "id2"}]},
         patch.MemberChange("add", ("id1", "id2"))),
        ({"op": "add", "path": "members",
          "value": [{"value": "id1", "display": "Ann"}, {"value": "id1"}]},
         patch.MemberChange("add", ("id1",))),
        ({"op": "add", "path": "members", "value": {"value": "id1"}},
         patch.MemberChange("add", ("id1",))),
        ({"op": "Remove", "path": "members", "value": [{"value": "id1"}]},
         patch.MemberChange("remove", ("id1",))),
        ({"op": "remove", "path": 'members[value eq "id1"]'},
         patch.MemberChange("remove", ("id1",))),
        ({"op": "remove", "path": 'members[value eq "id1" or value eq "id2" or value eq "id3"]'},
         patch.MemberChange("remove", ("id1", "id2", "id3"))),
        ({"op": "remove", "path": 'Members[VALUE Eq "id1"]'},
         patch.MemberChange("remove", ("id1",))),
        ({"op": "remove", "path": "members"}, patch.MemberChange("remove_all", ())),
        ({"op": "replace", "path": "members", "value": [{"value": "id3"}]},
         patch.MemberChange("replace", ("id3",))),
        ({"op": "replace", "path": "members", "value": []}, patch.MemberChange("replace", ())),
        ({"op": "replace", "path": "members", "value": None}, patch.MemberChange("replace", ())),
        ({"op": "add", "path": f"{s.GROUP}:members", "value": [{"value": "id1"}]},
         patch.MemberChange("add", ("id1",))),
    ],
    ids=["entra-add", "add-dedupes", "add-lone-object", "entra-remove", "okta-remove",
         "remove-or", "remove-any-case", "remove-all", "okta-replace", "replace-empty",
         "replace-null", "urn-path"],
)
def test_split_members_idp_shapes(operation, expected):
    assert _split(operation) == ([expected], [])


def test_split_members_pathless_value_keeps_other_attributes():
    changes, rest = _split({"op": "replace", "value": {
        "id": "g1", "displayName": "x", "members": [{"value": "id1"}, {"value": "id2"}]}})
    assert changes == [patch.MemberChange("replace", ("id1", "id2"))]
    assert [(o.op, o.path, o.value) for o in rest] == [
        ("replace", None, {"id": "g1", "displayName": "x"})]
    assert patch.apply(GROUP, rest, s.GROUP_TYPE)["displayName"] == "x"


def test_split_members_pathless_value_of_only_members_leaves_no_operation():
    changes, rest = _split({"op": "add", "value": {"Members": [{"value": "id1"}]}})
    assert (changes, rest) == ([patch.MemberChange("add", ("id1",))], [])


def test_split_members_keeps_order_of_both_lists():
    changes, rest = _split(
        {"op": "add", "path": "members", "value": [{"value": "a"}]},
        {"op": "replace", "path": "displayName", "value": "One"},
        {"op": "remove", "path": 'members[value eq "b"]'},
        {"op": "replace", "path": "externalId", "value": "e1"},
        {"op": "remove", "path": "members"},
    )
    assert changes == [patch.MemberChange("add", ("a",)), patch.MemberChange("remove", ("b",)),
                       patch.MemberChange("remove_all")]
    assert [o.path.text for o in rest] == ["displayName", "externalId"]


def test_split_members_on_user_type_changes_nothing():
    ops = patch.parse(_body({"op": "add", "path": "title", "value": "x"}), s.USER_TYPE)
    assert patch.split_members(ops, s.USER_TYPE) == ([], ops)


@pytest.mark.parametrize(
    "operation, cls, scim_type",
    [
        ({"op": "remove", "path": 'members[display eq "Ann"]'},
         errors.InvalidFilter, "invalidFilter"),
        ({"op": "remove", "path": 'members[value ne "id1"]'},
         errors.InvalidFilter, "invalidFilter"),
        ({"op": "remove", "path": 'members[value eq "id1" and type eq "User"]'},
         errors.InvalidFilter, "invalidFilter"),
        ({"op": "remove", "path": 'members[value sw "id"]'}, errors.InvalidFilter, "invalidFilter"),
        ({"op": "remove", "path": 'members[not (value eq "id1")]'},
         errors.InvalidFilter, "invalidFilter"),
        ({"op": "remove", "path": 'members[value eq ""]'}, errors.InvalidFilter, "invalidFilter"),
        ({"op": "add", "path": 'members[value eq "id1"]', "value": [{"value": "id1"}]},
         errors.NoTarget, "noTarget"),
        ({"op": "replace", "path": 'members[value eq "id1"]', "value": {"value": "id2"}},
         errors.NoTarget, "noTarget"),
        ({"op": "replace", "path": 'members[value eq "id1"].display', "value": "x"},
         errors.NoTarget, "noTarget"),
        ({"op": "remove", "path": "members.value"}, errors.NoTarget, "noTarget"),
        ({"op": "add", "path": "members", "value": [{"value": ""}]},
         errors.InvalidValue, "invalidValue"),
        ({"op": "add", "path": "members", "value": [{"value": 7}]},
         errors.InvalidValue, "invalidValue"),
        ({"op": "add", "path": "members", "value": [{"display": "Ann"}]},
         errors.InvalidValue, "invalidValue"),
        ({"op": "add", "path": "members", "value": ["id1"]}, errors.InvalidValue, "invalidValue"),
        ({"op": "remove", "path": "members", "value": [{"value": None}]},
         errors.InvalidValue, "invalidValue"),
        ({"op": "replace", "value": {"members": [{"value": "   "}]}},
         errors.InvalidValue, "invalidValue"),
    ],
)
def test_split_members_unsupported_shapes_are_refused(operation, cls, scim_type):
    with pytest.raises(errors.BadRequest) as exc_info:
        _split(operation)
    _assert_scim_error(exc_info, cls, scim_type)


# --- properties ---------------------------------------------------------------------------

_PATHS = [None, "title", "active", "name", "name.givenName", "userName", "id", "emails",
          'emails[type eq "work"]', 'emails[type eq "work"].value',
          'emails[type eq "home"].primary',
          "emails.primary", "groups", "meta.version", f"{ENT}:manager", f"{ENT}:employeeNumber",
          'addresses[type eq "home"].locality']
_VALUES = [None, "", "x@example.com", "True", "False", True, 3, [], {},
           {"givenName": "G"}, {"value": "v@example.com", "type": "work", "primary": True},
           [{"value": "a@example.com", "primary": "true"}, {"value": "b@example.com"}],
           {"title": "T", "id": "u1"}, {"displayName": None, "active": "false"}]
_OPERATIONS = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "Replace", "remove"])},
    optional={"path": st.sampled_from(_PATHS), "value": st.sampled_from(_VALUES)},
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_OPERATIONS, min_size=1, max_size=6))
def test_apply_any_operations_fail_cleanly_or_keep_invariants(ops):
    resource = copy.deepcopy(USER)
    try:
        doc = patch.apply(resource, patch.parse(_body(*ops), s.USER_TYPE), s.USER_TYPE)
    except errors.BadRequest:
        doc = None
    assert resource == USER
    if doc is not None:
        assert doc["userName"] and doc["id"] == "u1" and doc["meta"] == USER["meta"]
        assert sum(1 for e in doc.get("emails", []) if e.get("primary") is True) <= 1


def test_copied_shares_no_object_or_array_with_the_json_it_copies():
    original = {"emails": [{"value": "a@example.com", "primary": True}], "name": {"givenName": "A"}, "n": 1.5,
                "active": None, "x": [[1, {"y": "z"}]]}
    copy = patch.copied(original)
    assert copy == original
    copy["emails"][0]["value"], copy["name"]["givenName"], copy["x"][0][1]["y"] = "b", "B", "w"
    copy["emails"].append({}), copy["x"][0].append(2)
    assert original == {"emails": [{"value": "a@example.com", "primary": True}], "name": {"givenName": "A"},
                        "n": 1.5, "active": None, "x": [[1, {"y": "z"}]]}
