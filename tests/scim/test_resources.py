"""Input normalisation and output projection of SCIM resources (RFC 7643 §2, RFC 7644 §3.9)."""

import pytest

from skilljar_scim.base.errors import InvalidSyntax, InvalidValue
from skilljar_scim.scim import resources as r
from skilljar_scim.scim import schemas as s

ENT = s.ENTERPRISE_USER
MS_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"


def user(**extra):
    return {"schemas": [s.USER], "userName": "bjensen", **extra}


@pytest.mark.parametrize(
    "rtype, body, expected",
    [
        pytest.param(s.USER_TYPE, user(), {"userName": "bjensen"}, id="minimal"),
        pytest.param(s.USER_TYPE, user(active="True"), {"userName": "bjensen", "active": True},
                     id="entra-true-string"),
        pytest.param(s.USER_TYPE, user(active="FALSE"),
                     {"userName": "bjensen", "active": False}, id="false-string"),
        pytest.param(s.USER_TYPE, user(active=False), {"userName": "bjensen", "active": False},
                     id="false-kept"),
        pytest.param(s.USER_TYPE, {"USERNAME": "b", "Name": {"GivenName": "Barbara"}},
                     {"userName": "b", "name": {"givenName": "Barbara"}}, id="case-insensitive"),
        pytest.param(s.USER_TYPE, user(**{ENT.lower(): {"Department": "Sales"}}),
                     {"userName": "bjensen", ENT: {"department": "Sales"}}, id="urn-key-case"),
        pytest.param(s.USER_TYPE, user(**{ENT: {"manager": "42"}}),
                     {"userName": "bjensen", ENT: {"manager": {"value": "42"}}},
                     id="entra-manager-string"),
        pytest.param(s.USER_TYPE, user(**{ENT: {"manager": {"value": "42", "displayName": "X"}}}),
                     {"userName": "bjensen", ENT: {"manager": {"value": "42"}}},
                     id="manager-displayName-readOnly"),
        pytest.param(s.USER_TYPE, user(**{f"{ENT}:employeeNumber": "7"}),
                     {"userName": "bjensen", ENT: {"employeeNumber": "7"}}, id="urn-qualified-key"),
        pytest.param(s.USER_TYPE, user(**{f"{s.USER}:displayName": "B"}),
                     {"userName": "bjensen", "displayName": "B"}, id="core-urn-qualified-key"),
        pytest.param(s.USER_TYPE,
                     {"schemas": ["urn:scim:schemas:core:2.0", s.USER], "userName": "b",
                      "urn:scim:schemas:extension:okta:1.0": {"x": 1}},
                     {"userName": "b"}, id="unknown-schemas-tolerated"),
        pytest.param(s.USER_TYPE,
                     user(displayName=None, title="", emails=[], nickName="n", name={},
                          **{ENT: {"department": None}}),
                     {"userName": "bjensen", "nickName": "n"}, id="nulls-and-empties-dropped"),
        pytest.param(s.USER_TYPE,
                     user(id="abc", meta={"created": "x"}, groups=[{"value": "g"}],
                          roles=[{"value": "admin"}]),
                     {"userName": "bjensen"}, id="readOnly-ignored"),
        pytest.param(s.USER_TYPE, user(externalId="ext-1", password="s3cret"),
                     {"userName": "bjensen", "externalId": "ext-1", "password": "s3cret"},
                     id="externalId-and-password"),
        pytest.param(s.USER_TYPE,
                     user(emails=[{"value": "a@x", "type": "work", "primary": "true"},
                                  {"value": "b@x", "primary": False}, None]),
                     {"userName": "bjensen",
                      "emails": [{"value": "a@x", "type": "work", "primary": True},
                                 {"value": "b@x", "primary": False}]}, id="multi-valued"),
        pytest.param(s.USER_TYPE, user(x509Certificates=[{"value": "TUlJ\nRERE"}]),
                     {"userName": "bjensen", "x509Certificates": [{"value": "TUlJ\nRERE"}]},
                     id="binary"),
        pytest.param(s.USER_TYPE, user(nosuch=1, name={"givenName": "B", "nosuch": 2}),
                     {"userName": "bjensen", "name": {"givenName": "B"}}, id="unknown-ignored"),
        pytest.param(s.GROUP_TYPE,
                     {"schemas": [s.GROUP, MS_GROUP], "displayName": "Admins",
                      "externalId": "e", MS_GROUP: {"x": 1},
                      "members": [{"value": "u1", "display": "Ann", "type": "User"}]},
                     {"displayName": "Admins", "externalId": "e",
                      "members": [{"value": "u1", "type": "User"}]}, id="entra-group"),
        pytest.param(s.GROUP_TYPE, {"DisplayName": "G", "members": []}, {"displayName": "G"},
                     id="group-empty-members"),
    ],
)
def test_normalise_returns_canonical_form(rtype, body, expected):
    assert r.normalise(rtype, body) == expected


@pytest.mark.parametrize(
    "rtype, body, error, words",
    [
        pytest.param(s.USER_TYPE, ["userName"], InvalidSyntax, "JSON object", id="not-object"),
        pytest.param(s.USER_TYPE, {"displayName": "B"}, InvalidValue, "userName", id="no-userName"),
        pytest.param(s.USER_TYPE, {"userName": ""}, InvalidValue, "userName", id="empty-userName"),
        pytest.param(s.GROUP_TYPE, {"members": []}, InvalidValue, "displayName",
                     id="no-displayName"),
        pytest.param(s.USER_TYPE, user(active="yes"), InvalidValue, "active", id="bad-boolean"),
        pytest.param(s.USER_TYPE, user(active=1), InvalidValue, "active", id="int-boolean"),
        pytest.param(s.USER_TYPE, {"userName": 5}, InvalidValue, "userName", id="int-string"),
        pytest.param(s.USER_TYPE, user(title="a\x00b"), InvalidValue, "title", id="nul"),
        pytest.param(s.USER_TYPE, user(emails={"value": "a@x"}), InvalidValue, "emails",
                     id="multi-not-list"),
        pytest.param(s.USER_TYPE, user(emails=["a@x"]), InvalidValue, "emails",
                     id="multi-of-strings"),
        pytest.param(s.USER_TYPE,
                     user(emails=[{"value": "a", "primary": True},
                                  {"value": "b", "primary": "True"}]),
                     InvalidValue, "primary", id="two-primaries"),
        pytest.param(s.USER_TYPE, user(name="Barbara"), InvalidValue, "name",
                     id="complex-not-object"),
        pytest.param(s.USER_TYPE, user(name={"givenName": ["B"]}), InvalidValue, "name.givenName",
                     id="sub-attribute-type"),
        pytest.param(s.USER_TYPE, user(**{ENT: "x"}), InvalidValue, ENT, id="extension-not-object"),
        pytest.param(s.USER_TYPE, user(**{ENT: {"manager": ["42"]}}), InvalidValue,
                     f"{ENT}:manager", id="manager-list"),
        pytest.param(s.USER_TYPE, user(x509Certificates=[{"value": "not base64!"}]),
                     InvalidValue, "x509Certificates.value", id="bad-binary"),
        pytest.param(s.USER_TYPE, user(USERNAME="other"), InvalidValue, "more than once",
                     id="duplicate-key"),
        pytest.param(s.GROUP_TYPE, {"displayName": "G", "members": [{"value": 3}]},
                     InvalidValue, "members.value", id="member-value-type"),
    ],
)
def test_normalise_rejects_invalid_bodies(rtype, body, error, words):
    with pytest.raises(error) as caught:
        r.normalise(rtype, body)
    assert type(caught.value) is error
    assert caught.value.status == 400
    assert caught.value.scim_type == error.scim_type
    assert words in caught.value.detail


def test_normalise_reports_ignored_names():
    ignored: list[str] = []
    body = user(nosuch=1, name={"bogus": 1}, **{MS_GROUP: {}, ENT: {"nope": 1}})
    r.normalise(s.USER_TYPE, body, ignored=ignored)
    assert ignored == ["nosuch", "name.bogus", MS_GROUP, f"{ENT}:nope"]


DATES = s.Attribute("when", type="dateTime")


@pytest.mark.parametrize(
    "attribute, value, expected",
    [
        (s.Attribute("n", type="integer"), 3, 3),
        (s.Attribute("d", type="decimal"), 2, 2),
        (s.Attribute("d", type="decimal"), 2.5, 2.5),
        (DATES, "2015-09-01T12:00:00Z", "2015-09-01T12:00:00Z"),
        (DATES, "2015-09-01T12:00:00.123+02:00", "2015-09-01T12:00:00.123+02:00"),
        (s.Attribute("r", type="reference"), "https://x/Users/1", "https://x/Users/1"),
        (s.Attribute("m", multi_valued=True), ["a", None, "b"], ["a", "b"]),
        (s.Attribute("m", multi_valued=True), [None, ""], None),
        (s.Attribute("s"), None, None),
    ],
)
def test_coerce_value_accepts_valid_values(attribute, value, expected):
    assert r.coerce_value(attribute, value, attribute.name) == expected


@pytest.mark.parametrize(
    "attribute, value",
    [
        (s.Attribute("n", type="integer"), True),
        (s.Attribute("n", type="integer"), 1.5),
        (s.Attribute("n", type="integer"), "3"),
        (s.Attribute("d", type="decimal"), False),
        (s.Attribute("d", type="decimal"), float("nan")),
        (DATES, "yesterday"),
        (DATES, 20150901),
        (s.Attribute("r", type="reference"), 7),
        (s.Attribute("m", multi_valued=True), "a"),
    ],
)
def test_coerce_value_rejects_invalid_values(attribute, value):
    with pytest.raises(InvalidValue, match=attribute.name):
        r.coerce_value(attribute, value, attribute.name)


# --- project -----------------------------------------------------------------------------

FULL_USER = {
    "schemas": [s.USER, ENT],
    "id": "u1",
    "externalId": "ext",
    "meta": {"resourceType": "User", "version": 'W/"1"'},
    "userName": "bjensen",
    "password": "hash-should-never-leave",
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "active": False,
    "emails": [{"value": "b@x", "type": "work", "primary": True}],
    "roles": [{"value": "global-admin", "display": "Global admin"}],
    ENT: {"department": "Sales", "manager": {"value": "m1", "displayName": "Boss"}},
}
ALWAYS = {"schemas": [s.USER], "id": "u1", "meta": FULL_USER["meta"]}


def _without(resource, *keys):
    return {k: v for k, v in resource.items() if k not in keys}


@pytest.mark.parametrize(
    "attributes, excluded, expected",
    [
        pytest.param(None, None, _without(FULL_USER, "password"), id="default"),
        pytest.param(["userName"], None, {**ALWAYS, "userName": "bjensen"}, id="attributes"),
        pytest.param(["USERNAME", "nosuch", "bad path!"], None,
                     {**ALWAYS, "userName": "bjensen"}, id="case-and-unknown"),
        pytest.param(["name.givenName"], None, {**ALWAYS, "name": {"givenName": "Barbara"}},
                     id="sub-attribute"),
        pytest.param(["name.givenName", "name"], None, {**ALWAYS, "name": FULL_USER["name"]},
                     id="sub-then-whole"),
        pytest.param(["emails.value"], None, {**ALWAYS, "emails": [{"value": "b@x"}]},
                     id="multi-valued-sub"),
        pytest.param(["active"], None, {**ALWAYS, "active": False}, id="false-kept"),
        pytest.param(["password", "id"], None, ALWAYS, id="never-and-always"),
        pytest.param([f"{ENT}:department"], None,
                     {**ALWAYS, "schemas": [s.USER, ENT], ENT: {"department": "Sales"}},
                     id="urn-qualified"),
        pytest.param([ENT.upper()], None,
                     {**ALWAYS, "schemas": [s.USER, ENT], ENT: FULL_USER[ENT]},
                     id="whole-extension"),
        pytest.param([f"{ENT}:manager.displayName"], None,
                     {**ALWAYS, "schemas": [s.USER, ENT],
                      ENT: {"manager": {"displayName": "Boss"}}},
                     id="extension-sub"),
        pytest.param(["externalId", "meta.created"], None, {**ALWAYS, "externalId": "ext"},
                     id="common"),
        pytest.param(None, ["emails", "name.familyName", "id", "meta"],
                     {**_without(FULL_USER, "password", "emails"),
                      "name": {"givenName": "Barbara"}}, id="excluded"),
        pytest.param(None, [ENT], {**_without(FULL_USER, "password", ENT), "schemas": [s.USER]},
                     id="excluded-extension"),
        pytest.param(None, [f"{ENT}:department", f"{ENT}:manager"],
                     {**_without(FULL_USER, "password", ENT), "schemas": [s.USER]},
                     id="extension-emptied"),
        pytest.param(["name"], ["name.givenName"], {**ALWAYS, "name": {"familyName": "Jensen"}},
                     id="both"),
    ],
)
def test_project_selects_attributes(attributes, excluded, expected):
    assert r.project(FULL_USER, s.USER_TYPE, attributes, excluded) == expected


def test_project_request_attribute_only_when_named():
    attribute = s.Attribute("secretish", returned="request", description="x")
    schema = s.Schema("urn:example:schema", "X", "x", (s.Attribute("a"), attribute))
    rtype = s.ResourceType("X", "/X", "x", schema)
    resource = {"id": "1", "a": "v", "secretish": "s"}
    assert r.project(resource, rtype) == {"schemas": [schema.id], "id": "1", "a": "v"}
    assert r.project(resource, rtype, ["secretish"]) == {
        "schemas": [schema.id], "id": "1", "secretish": "s"}


def test_project_group_members_sub_attributes():
    group = {"id": "g1", "displayName": "Admins",
             "members": [{"value": "u1", "display": "Ann", "$ref": "http://x/Users/u1"}]}
    projected = r.project(group, s.GROUP_TYPE, ["members.value"])
    assert projected == {"schemas": [s.GROUP], "id": "g1", "members": [{"value": "u1"}]}


def test_project_round_trips_normalised_input():
    body = user(emails=[{"value": "a@x", "primary": True}], **{ENT: {"manager": "42"}})
    canonical = {**r.normalise(s.USER_TYPE, body), "id": "u1"}
    assert r.project(canonical, s.USER_TYPE) == {
        "schemas": [s.USER, ENT], **canonical}


@pytest.mark.parametrize(
    "text, expected",
    [
        (None, None),
        ("", None),
        (" , ", None),
        ("userName", ["userName"]),
        ("userName, name.givenName ,emails", ["userName", "name.givenName", "emails"]),
        (f"{ENT}:manager.value,id", [f"{ENT}:manager.value", "id"]),
    ],
)
def test_parse_attribute_list_splits_on_commas(text, expected):
    assert r.parse_attribute_list(text) == expected
