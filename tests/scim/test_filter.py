"""Tests for skilljar_scim.scim.filter: RFC 7644 §3.4.2.2 filters, parsed, checked, evaluated."""

from __future__ import annotations


import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skilljar_scim.base.errors import InvalidFilter
from skilljar_scim.scim import filter as scim_filter
from skilljar_scim.scim.filter import (
    And,
    Compare,
    Not,
    Or,
    Present,
    ValuePath,
    matches,
    matches_element,
    parse,
)
from skilljar_scim.scim.schemas import (
    ENTERPRISE_USER,
    GROUP_TYPE,
    USER,
    USER_TYPE,
    Attribute,
    AttrPath,
    ResourceType,
    Schema,
)

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"

BJENSEN = {
    "schemas": [USER, ENTERPRISE_USER],
    "id": "2819c223-7f76-453a-919d-413861904646",
    "externalId": "bjensen",
    "meta": {
        "resourceType": "User",
        "created": "2010-01-23T04:56:22Z",
        "lastModified": "2011-05-13T04:42:34Z",
        "version": 'W/"3694e05e9dff591"',
    },
    "userName": "bjensen",
    "name": {"formatted": "Ms. Barbara J Jensen, III", "familyName": "O'Malley",
             "givenName": "Barbara"},
    "displayName": "Babs Jensen",
    "title": "Tour Guide",
    "userType": "Employee",
    "active": True,
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    "ims": [{"value": "someaimhandle", "type": "aim"}],
    ENTERPRISE_USER: {
        "employeeNumber": "701984",
        "department": "Tour Operations",
        "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"},
    },
}

JSMITH = {
    "schemas": [USER],
    "id": "c3a26dd3-27a0-4dec-a2ac-ce211e105f97",
    "meta": {"resourceType": "User", "created": "2011-05-13T04:42:34Z",
             # +02:00: chronologically 2011-12-31T22:00Z, so string order would be wrong.
             "lastModified": "2012-01-01T00:00:00+02:00"},
    "userName": "jsmith",
    "userType": "Intern",
    "active": False,
    "emails": [{"value": "jsmith@example.org", "type": "work"}],
    "ims": [{"value": "jsmith@foo.com", "type": "xmpp"}],
}

RROE = {
    "schemas": [USER],
    "id": "a1b2c3",
    "meta": {"resourceType": "User", "created": "2009-01-01T00:00:00Z",
             "lastModified": "2010-01-01T00:00:00Z"},
    "userName": "rroe",
    "userType": "Contractor",
    "emails": [{"value": "rroe@example.net", "type": "home"}],
}

USERS = (BJENSEN, JSMITH, RROE)

ENGINEERING = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
    "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
    "displayName": "Engineering",
    "members": [
        {"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen"},
        {"value": "c3a26dd3-27a0-4dec-a2ac-ce211e105f97", "display": "John Smith"},
    ],
}

# A small resource type built from the dataclasses: types the real schemas lack
# (integer, decimal, multi-valued string, binary) and an extension with its own URN.
TEST_EXTENSION = "urn:example:params:scim:schemas:extension:test:2.0:User"
TEST_TYPE = ResourceType(
    "TestUser",
    "/TestUsers",
    "Test user",
    Schema(USER, "User", "Test core", (
        Attribute("userName"),
        Attribute("id", case_exact=True),
        Attribute("active", type="boolean"),
        Attribute("tags", multi_valued=True),
        Attribute("certificate", type="binary", case_exact=True),
    )),
    (Schema(TEST_EXTENSION, "Test", "Test extension", (
        Attribute("loginCount", type="integer"),
        Attribute("score", type="decimal"),
    )),),
)
WIDGET = {
    "userName": "widget",
    "tags": ["a", "B"],
    "certificate": "QUJD",
    TEST_EXTENSION: {"loginCount": 7, "score": 2.5},
}


def matching(text: str, rtype: ResourceType = USER_TYPE, resources=USERS) -> set[str]:
    """Return the userNames of the resources the filter matches."""
    node = parse(text, rtype)
    return {r.get("userName") or r.get("displayName") for r in resources if matches(node, r)}


def resolved(text: str, rtype: ResourceType = USER_TYPE):
    """Resolve an attribute path the way the parser must."""
    urn, _, rest = text.rpartition(":") if text.startswith("urn:") else (None, "", text)
    name, _, sub = rest.partition(".")
    return rtype.resolve(AttrPath(urn, name, sub or None))


def assert_invalid_filter(text: str, rtype: ResourceType = USER_TYPE, **kwargs) -> InvalidFilter:
    """Assert that parsing fails with exactly InvalidFilter (400 invalidFilter)."""
    with pytest.raises(InvalidFilter) as caught:
        parse(text, rtype, **kwargs)
    assert type(caught.value) is InvalidFilter
    assert caught.value.scim_type == "invalidFilter"
    assert caught.value.status == 400
    return caught.value


# --- The RFC's own examples (RFC 7644 §3.4.2.2) ----------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "bjensen"', {"bjensen"}),
        ("name.familyName co \"O'Malley\"", {"bjensen"}),
        ('userName sw "J"', {"jsmith"}),
        ('urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"', {"jsmith"}),
        ("title pr", {"bjensen"}),
        ('meta.lastModified gt "2011-05-13T04:42:34Z"', {"jsmith"}),
        ('meta.lastModified ge "2011-05-13T04:42:34Z"', {"bjensen", "jsmith"}),
        ('meta.lastModified lt "2011-05-13T04:42:34Z"', {"rroe"}),
        ('meta.lastModified le "2011-05-13T04:42:34Z"', {"bjensen", "rroe"}),
        ('title pr and userType eq "Employee"', {"bjensen"}),
        ('title pr or userType eq "Intern"', {"bjensen", "jsmith"}),
        ('schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"',
         {"bjensen"}),
        ('userType eq "Employee" and (emails co "example.com" or '
         'emails.value co "example.org")', {"bjensen"}),
        ('userType ne "Employee" and not (emails co "example.com" or '
         'emails.value co "example.org")', {"rroe"}),
        ('userType eq "Employee" and (emails.type eq "work")', {"bjensen"}),
        ('userType eq "Employee" and emails[type eq "work" and '
         'value co "@example.com"]', {"bjensen"}),
        ('emails[type eq "work" and value co "@example.com"] or '
         'ims[type eq "xmpp" and value co "@foo.com"]', {"bjensen", "jsmith"}),
        ('userName Eq "john"', set()),
        ('Username eq "john"', set()),
    ],
)
def test_parse_rfc_examples_match_expected_users(text, expected):
    assert matching(text) == expected


# --- Shape of the tree: precedence and grouping ----------------------------------------


def test_parse_and_binds_tighter_than_or():
    node = parse('title pr or userType eq "x" and displayName pr', USER_TYPE)
    assert node == Or(
        Present(resolved("title")),
        And(Compare(resolved("userType"), "eq", "x"), Present(resolved("displayName"))),
    )


def test_parse_not_binds_tighter_than_and():
    node = parse("not (title pr) and displayName pr", USER_TYPE)
    assert node == And(Not(Present(resolved("title"))), Present(resolved("displayName")))


def test_parse_parentheses_override_precedence():
    node = parse('(title pr or userType eq "x") and displayName pr', USER_TYPE)
    assert node == And(
        Or(Present(resolved("title")), Compare(resolved("userType"), "eq", "x")),
        Present(resolved("displayName")),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Without precedence, (title pr or userType pr) and active eq false would be rroe-less.
        ('title pr or userType eq "Intern" and active eq false', {"bjensen", "jsmith"}),
        ('(title pr or userType eq "Intern") and active eq false', {"jsmith"}),
        ('not (title pr) and not (userType eq "Intern")', {"rroe"}),
        ('not (title pr or userType eq "Intern")', {"rroe"}),
    ],
)
def test_matches_honours_precedence(text, expected):
    assert matching(text) == expected


def test_parse_value_path_filter_resolves_sub_attributes():
    node = parse('emails[type eq "work" and value co "@example.com"]', USER_TYPE)
    emails = resolved("emails")
    assert node == ValuePath(emails, And(
        Compare(resolved("emails.type"), "eq", "work"),
        Compare(resolved("emails.value"), "co", "@example.com"),
    ))


def test_parse_bare_multi_valued_attribute_compares_its_value():
    assert parse('emails co "x"', USER_TYPE) == Compare(resolved("emails.value"), "co", "x")


def test_parse_extension_attribute_resolves_under_its_schema():
    node = parse(f'{ENTERPRISE_USER}:employeeNumber eq "701984"', USER_TYPE)
    assert node.path.schema.id == ENTERPRISE_USER
    assert node.path.attribute.name == "employeeNumber"
    assert node.text == f"{ENTERPRISE_USER}:employeeNumber"


def test_parse_node_equality_ignores_text_as_written():
    assert parse('USERNAME eq "x"', USER_TYPE) == parse('userName eq "x"', USER_TYPE)


def test_parse_long_chain_builds_shallow_tree():
    text = " or ".join(f'userName eq "u{i}"' for i in range(500))
    node = parse(text, USER_TYPE, max_length=100_000)

    def depth(n) -> int:
        return 1 + max(depth(n.left), depth(n.right)) if isinstance(n, (And, Or)) else 1

    assert depth(node) <= 10
    assert matches(node, {"userName": "U499"})
    assert not matches(node, {"userName": "u500"})


# --- Case-insensitivity (RFC 7644 §3.4.2.2, RFC 7643 §2.1) ------------------------------


@pytest.mark.parametrize(
    ("variant", "canonical"),
    [
        ('userName Eq "john"', 'userName eq "john"'),
        ('Username eq "john"', 'userName eq "john"'),
        ('USERNAME EQ "john"', 'userName eq "john"'),
        ("title PR", "title pr"),
        ("NOT (title pr) AND userType Pr", "not (title pr) and userType pr"),
        ("title pr OR userType pr", "title pr or userType pr"),
        ("active eq TRUE", "active eq true"),
        ("active eq False", "active eq false"),
        ("title eq NULL", "title eq null"),
        ('NAME.FAMILYNAME co "x"', 'name.familyName co "x"'),
        ('URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:userName eq "x"', 'userName eq "x"'),
        (f'{ENTERPRISE_USER.lower()}:EMPLOYEENUMBER eq "1"',
         f'{ENTERPRISE_USER}:employeeNumber eq "1"'),
        ('EMAILS[TYPE eq "work"]', 'emails[type eq "work"]'),
        ('META.lastmodified GT "2011-05-13T04:42:34Z"',
         'meta.lastModified gt "2011-05-13T04:42:34Z"'),
        ('ExternalId eq "x"', 'externalId eq "x"'),
    ],
)
def test_parse_names_operators_and_literals_are_case_insensitive(variant, canonical):
    assert parse(variant, USER_TYPE) == parse(canonical, USER_TYPE)


def test_parse_accepts_not_without_space_and_extra_whitespace():
    assert parse("not(title pr)", USER_TYPE) == parse("not (title pr)", USER_TYPE)
    assert parse('  userName\teq  "x"  ', USER_TYPE) == parse('userName eq "x"', USER_TYPE)


# --- Literals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "decoded"),
    [
        (r'"a\"b"', 'a"b'),
        (r'"a\\b"', "a\\b"),
        (r'"a\/b"', "a/b"),
        (r'"\b\f\n\r\t"', "\b\f\n\r\t"),
        (r'"\u00e9t\u00C9"', "étÉ"),
        (r'"\ud83d\ude00"', "\U0001F600"),
        ('"x]y) and (z"', "x]y) and (z"),
        ('""', ""),
        ('"caf\u00e9"', "café"),
    ],
)
def test_parse_decodes_json_string_escapes(literal, decoded):
    assert parse(f"userName eq {literal}", USER_TYPE).value == decoded


@pytest.mark.parametrize(
    ("literal", "value"),
    [("7", 7), ("-1", -1), ("0", 0), ("2.5", 2.5), ("2.5e0", 2.5), ("1E2", 100.0),
     ("-0.5e-1", -0.05)],
)
def test_parse_reads_json_numbers(literal, value):
    node = parse(f"{TEST_EXTENSION}:score eq {literal}", TEST_TYPE)
    assert node.value == value
    assert type(node.value) is type(value)


def test_parse_string_with_bracket_inside_value_path():
    node = parse('emails[value eq "a]b"]', USER_TYPE)
    assert matches(node, {"emails": [{"value": "A]B"}]})


# --- Case exactness (RFC 7643 §2.2) ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "BJENSEN"', {"bjensen"}),
        ('userName sw "BJ"', {"bjensen"}),
        ('emails.value eq "BJENSEN@EXAMPLE.COM"', {"bjensen"}),
        ('id eq "2819c223-7f76-453a-919d-413861904646"', {"bjensen"}),
        ('id eq "2819C223-7F76-453A-919D-413861904646"', set()),
        ('externalId eq "bjensen"', {"bjensen"}),
        ('externalId eq "BJensen"', set()),
        ('meta.version eq "w/\\"3694e05e9dff591\\""', set()),
        ('meta.version eq "W/\\"3694e05e9dff591\\""', {"bjensen"}),
        ('userName gt "JSMITH"', {"rroe"}),
    ],
)
def test_matches_honours_case_exact(text, expected):
    assert matching(text) == expected


# --- Semantics: ne, null, pr, multi-valued, types ---------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('title ne "Tour Guide"', {"jsmith", "rroe"}),  # absent counts as not equal
        ('title ne "tour guide"', {"jsmith", "rroe"}),
        ('emails.type ne "work"', {"rroe"}),  # ne is not (eq): no element equals
        ('emails[type ne "work"]', {"bjensen", "rroe"}),  # per element inside [ ]
        ("title eq null", {"jsmith", "rroe"}),
        ("title ne null", {"bjensen"}),
        ("active pr", {"bjensen", "jsmith"}),  # false is a value
        ("active eq true", {"bjensen"}),
        ('active eq "False"', {"jsmith"}),
        ("active ne true", {"jsmith", "rroe"}),
        ('emails.type eq "home"', {"bjensen", "rroe"}),  # any element
        ('emails[type eq "home" and value co "example.com"]', set()),  # same element
        ('emails.type eq "home" and emails.value co "example.com"', {"bjensen"}),
        # Entra ID's matching form: the sub-attribute applies to the selected element.
        ('emails[type eq "work"].value eq "BJENSEN@example.com"', {"bjensen"}),
        ('emails[type eq "home"].value co "example."', {"rroe"}),
        ('emails[type eq "work"].value pr', {"bjensen", "jsmith"}),
        ('name[givenName eq "barbara"]', {"bjensen"}),  # single complex value path
        ("name pr", {"bjensen"}),
        ("ims pr", {"bjensen", "jsmith"}),
        ('meta.created lt "2011-05-13T04:42:34.000Z"', {"bjensen", "rroe"}),
        ('meta.lastModified lt "2011-12-31T23:00:00Z"', {"bjensen", "jsmith", "rroe"}),
        ('meta.lastModified eq "2011-12-31T22:00:00Z"', {"jsmith"}),
        ('meta.resourceType eq "User"', {"bjensen", "jsmith", "rroe"}),
        (f'{ENTERPRISE_USER}:employeeNumber eq "701984"', {"bjensen"}),
        (f'{ENTERPRISE_USER}:manager.value sw "26118915"', {"bjensen"}),
        (f"{ENTERPRISE_USER}:department pr", {"bjensen"}),
        (f'{CORE}:name.familyName co "malley"', {"bjensen"}),
    ],
)
def test_matches_semantics(text, expected):
    assert matching(text) == expected


@pytest.mark.parametrize(
    ("resource", "present"),
    [
        ({"title": "x"}, True),
        ({"title": ""}, False),
        ({"title": None}, False),
        ({}, False),
    ],
)
def test_matches_pr_needs_non_empty_value(resource, present):
    assert matches(parse("title pr", USER_TYPE), resource) is present


@pytest.mark.parametrize(
    ("resource", "present"),
    [
        ({"emails": [{"value": "a@b.c"}]}, True),
        ({"emails": []}, False),
        ({"emails": [{}]}, False),
        ({"emails": [{"value": ""}]}, False),
        ({"emails": [{"type": "work"}]}, True),  # a non-empty node counts (RFC Table 3)
    ],
)
def test_matches_pr_on_multi_valued_complex(resource, present):
    assert matches(parse("emails pr", USER_TYPE), resource) is present


def test_matches_pr_on_complex_needs_a_non_empty_sub_attribute():
    node = parse("name pr", USER_TYPE)
    assert not matches(node, {"name": {}})
    assert not matches(node, {"name": {"givenName": ""}})
    assert matches(node, {"name": {"givenName": "B"}})


def test_matches_eq_null_is_not_present():
    assert matches(parse("title eq null", USER_TYPE), {"title": ""})
    assert not matches(parse("title ne null", USER_TYPE), {"title": ""})


def test_matches_reads_attribute_names_case_insensitively():
    node = parse('emails[type eq "work"]', USER_TYPE)
    assert matches(node, {"Emails": [{"Type": "work"}]})


def test_matches_wrong_stored_type_matches_nothing():
    assert not matches(parse('userName eq "1"', USER_TYPE), {"userName": 1})
    assert not matches(parse('meta.created gt "2000-01-01T00:00:00Z"', USER_TYPE),
                       {"meta": {"created": "not a date"}})
    assert matches(parse('userName ne "1"', USER_TYPE), {"userName": 1})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{TEST_EXTENSION}:loginCount eq 7", True),
        (f"{TEST_EXTENSION}:loginCount gt 6.5", True),
        (f"{TEST_EXTENSION}:loginCount lt 7", False),
        (f"{TEST_EXTENSION}:loginCount le 7", True),
        (f"{TEST_EXTENSION}:score ge 2.5", True),
        (f"{TEST_EXTENSION}:score gt 2.5e0", False),
        (f"{TEST_EXTENSION}:score ne 3", True),
        ('tags eq "b"', True),  # multi-valued simple: any element, caseExact false
        ('tags eq "c"', False),
        ("tags pr", True),
        ('certificate eq "QUJD"', True),
        ('certificate eq "qujd"', False),
        ('userName eq "WIDGET"', True),
    ],
)
def test_matches_numbers_multi_valued_strings_and_binary(text, expected):
    assert matches(parse(text, TEST_TYPE), WIDGET) is expected


def test_matches_group_members_value_path():
    node = parse('members[value eq "c3a26dd3-27a0-4dec-a2ac-ce211e105f97"]', GROUP_TYPE)
    assert matches(node, ENGINEERING)
    assert matching('displayName eq "engineering"', GROUP_TYPE, (ENGINEERING,)) == {
        "Engineering"}


# --- Value-path filters for PATCH (within=) ---------------------------------------------


def test_matches_element_evaluates_within_filter():
    members = resolved("members", GROUP_TYPE)
    node = parse('value eq "c3a26dd3-27a0-4dec-a2ac-ce211e105f97"', GROUP_TYPE, within=members)
    assert node == Compare(resolved("members.value", GROUP_TYPE), "eq",
                           "c3a26dd3-27a0-4dec-a2ac-ce211e105f97")
    assert [matches_element(node, m) for m in ENGINEERING["members"]] == [False, True]


def test_matches_element_with_logic_and_grouping():
    emails = resolved("emails")
    node = parse('type eq "work" or (TYPE eq "home" and value ew "@jensen.org")', USER_TYPE,
                 within=emails)
    assert [matches_element(node, e) for e in BJENSEN["emails"]] == [True, True]
    assert not matches_element(node, {"type": "home", "value": "x@example.com"})
    assert not matches_element(node, {})


@pytest.mark.parametrize(
    "text",
    [
        'emails[type eq "work"]',  # a nested value path
        'type[value eq "x"]',
        'emails.type eq "work"',  # paths are relative to the element
        f'{CORE}:emails.type eq "work"',
        'nosuch eq "x"',
        'type eq "work"]',
    ],
)
def test_parse_within_rejects_non_relative_paths(text):
    assert_invalid_filter(text, within=resolved("emails"))


@pytest.mark.parametrize("within", ["userName", "emails.value", "name.givenName"])
def test_parse_within_requires_complex_attribute(within):
    assert_invalid_filter('value eq "x"', within=resolved(within))


# --- Errors: every one is 400 invalidFilter ---------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        'nosuch eq "x"',
        'name.nosuch eq "x"',
        f'{ENTERPRISE_USER}:nosuch eq "x"',
        'urn:example:unknown:2.0:User:userName eq "x"',
        'emails[nosuch eq "x"]',
        '123 eq "x"',
        'user$name eq "x"',
        'name..familyName eq "x"',
        'userName xx "x"',
        'userName === "x"',
        'userName eq',
        "userName",
        'userName eq "x" garbage',
        'userName eq "x" and',
        'or userName eq "x"',
        'userName eq "x" or or title pr',
        'userName eq "x" "y"',
        "()",
        '(userName eq "x"',
        'userName eq "x")',
        "((title pr)",
        "(title pr))",
        'emails[type eq "work"',
        'emails type eq "work"]',
        'emails[type eq "work"]]',
        "emails[]",
        "[",
        "]",
        'title pr "x"',
        "title pr true",
        "title pr 1",
        "not title pr",
        "not",
        "not ()",
        'name eq "x"',  # complex without sub-attribute
        'meta eq "x"',
        f'{ENTERPRISE_USER}:manager eq "x"',
        "active gt true",  # RFC: ordering on Boolean SHALL be invalidFilter
        'active le "true"',
        'x509Certificates.value gt "QUJD"',  # ... and on Binary
        'active eq "yes"',
        "active eq 1",
        'active co "t"',
        'meta.lastModified gt "yesterday"',
        "meta.lastModified gt 5",
        'meta.created sw "2011"',
        'meta.created eq "2011-13-45T00:00:00Z"',
        "userName eq 5",
        "userName eq true",
        "userName gt null",
        "userName co null",
        'emails[type eq "work"].value',
        'userName[value eq "x"]',  # value path on a simple attribute
        'name.givenName[value eq "x"]',
        'emails[type eq "a" and type[value eq "b"]]',
        'userName eq "unterminated',
        'userName eq "bad \\x escape"',
        'userName eq "\\u12"',
        'userName eq "\\ud800"',  # unpaired surrogate
        "userName eq 'single'",
        "userName eq john",
        "userName eq 01",
        "userName eq .5",
        'title pr and and userType pr',
    ],
)
def test_parse_rejects_invalid_filter(text):
    assert_invalid_filter(text)


@pytest.mark.parametrize(
    "text",
    [
        f'{TEST_EXTENSION}:loginCount eq "7"',
        f"{TEST_EXTENSION}:loginCount co 7",
        f"{TEST_EXTENSION}:loginCount eq true",
        f"{TEST_EXTENSION}:score eq 1e999",
        f"{TEST_EXTENSION}:score lt null",
        'certificate ge "QUJD"',
        "loginCount eq 7",  # extension attributes need their URN
    ],
)
def test_parse_rejects_invalid_filter_on_test_types(text):
    assert_invalid_filter(text, TEST_TYPE)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('nosuch eq "x"', "nosuch"),
        ('name.nosuch eq "x"', "name.nosuch"),
        ('emails[nosuch eq "x"]', "nosuch"),
        (f'{ENTERPRISE_USER}:nosuch eq "x"', "nosuch"),
    ],
)
def test_parse_unknown_attribute_names_it(text, named):
    """The detail names the attribute so an IdP admin can fix the mapping."""
    error = assert_invalid_filter(text)
    assert named in error.detail
    assert "unknown attribute" in error.detail


def test_parse_rejects_input_over_max_length():
    text = 'userName eq "' + "a" * 5000 + '"'
    assert "4096" in assert_invalid_filter(text).detail
    assert_invalid_filter('userName eq "x"', max_length=10)


@pytest.mark.parametrize(
    "text",
    [
        "(" * 10_000 + "title pr" + ")" * 10_000,
        "not (" * 10_000 + "title pr" + ")" * 10_000,
        "(" * 10_000,
        "(((" * 3_000 + 'emails[type eq "x"]',
    ],
)
def test_parse_rejects_deep_nesting_quickly(text, monkeypatch):
    """Refused on reaching the depth limit, after as many tokens as that depth (counted, never timed)."""
    steps: list[int] = []
    real = scim_filter._Parser.advance
    monkeypatch.setattr(scim_filter._Parser, "advance", lambda self: steps.append(1) or real(self))
    error = assert_invalid_filter(text, max_length=1_000_000, max_depth=50)
    assert "deeper than 50" in error.detail
    assert len(steps) <= 2 * (50 + 1)  # "not (" takes two tokens a level; the rest of the input is never read
    steps.clear()
    assert_invalid_filter(text)  # and the default length limit refuses it too
    assert steps == []  # before any parsing


def test_parse_accepts_nesting_up_to_max_depth():
    assert parse("(" * 50 + "title pr" + ")" * 50, USER_TYPE) == Present(resolved("title"))
    assert_invalid_filter("(" * 51 + "title pr" + ")" * 51)
    assert parse("(" * 49 + 'emails[type eq "x"]' + ")" * 49, USER_TYPE)
    assert_invalid_filter("(" * 50 + 'emails[type eq "x"]' + ")" * 50)


# --- Properties --------------------------------------------------------------------------

FRAGMENTS = st.sampled_from([
    "(", ")", "[", "]", "not", "and", "or", "eq", "ne", "co", "gt", "pr", "userName",
    "emails", "type", "value", "title", "active", "name", "meta.lastModified",
    ".value", f"{ENTERPRISE_USER}:employeeNumber", '"x"', '"', "\\", '"\\u00e9"', "1",
    "1.5e3", "-0", "true", "null", '"2011-05-13T04:42:34Z"', "urn:", ":", ".", " ",
])


def check_parse_total(text: str) -> None:
    """parse returns a Node or raises InvalidFilter; a Node evaluates without error."""
    try:
        node = parse(text, USER_TYPE)
    except InvalidFilter:
        return
    assert isinstance(node, (Compare, Present, And, Or, Not, ValuePath))
    for resource in (*USERS, {}):
        assert matches(node, resource) in (True, False)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parse_arbitrary_text_returns_node_or_invalid_filter(text):
    check_parse_total(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(FRAGMENTS, max_size=25).map(" ".join))
def test_parse_token_soup_returns_node_or_invalid_filter(text):
    check_parse_total(text)
