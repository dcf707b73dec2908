"""GET /Users/{id}, GET /Users and POST /Users/.search (RFC 7644 §3.4.1-§3.4.3, §3.9).

Every filter case runs twice: as written (identity-provider lookups translate to SQL) and
wrapped in `not (not (...))`, which is never translated, so the Python evaluator answers;
both must give the expected users.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

import pytest

from skilljar_scim.base import clock

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
SCIM_JSON = "application/scim+json"

CREATED = {"ann": datetime(2024, 1, 1, 10, 0, 0), "bob": datetime(2024, 6, 1, 0, 0, 0),
           "cat": datetime(2025, 1, 1, 12, 30, 0)}


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def people(api, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict]:
    """Three users with known attributes, created at known times: ann, bob and cat."""
    now = [CREATED["ann"]]
    monkeypatch.setattr(clock, "utcnow", lambda: now[0])
    made = {"ann": api.create_user(
        "Ann.Lee@Example.com", externalId="EXT-ann", displayName="Lee, Ann", title="Engineer",
        name={"givenName": "Ann", "familyName": "Lee"},
        emails=[{"value": "zz-ann@home.example.org", "type": "home"},
                {"value": "ann@work.example.com", "type": "work", "primary": True}],
        **{ENTERPRISE: {"employeeNumber": "100", "department": "R&D", "manager": {"value": "boss-id"}}},
    )}
    now[0] = CREATED["bob"]
    made["bob"] = api.create_user(
        "bob@example.com", externalId="ext-bob", active=False, title="Manager", displayName="Bob Brown",
        name={"givenName": "Bob", "familyName": "brown"}, emails=[{"value": "bob@home.example.org", "type": "home"}],
        **{ENTERPRISE: {"employeeNumber": "200", "department": "Sales"}},
    )
    now[0] = CREATED["cat"]
    made["cat"] = api.create_user("Cat@Example.com", name={"familyName": "Cole"})
    return made


def listing(api, query: str = "", **kw) -> dict:
    response = api.get(f"/Users?{query}", **kw)
    body = response.get_json()
    assert response.status_code == 200, body
    assert response.mimetype == SCIM_JSON
    assert body["schemas"] == [LIST]
    assert body["itemsPerPage"] == len(body["Resources"])
    return body


def who(people: dict[str, dict], body: dict) -> list[str]:
    """Name the people in a ListResponse, in its order."""
    by_id = {user["id"]: name for name, user in people.items()}
    return [by_id[r["id"]] for r in body["Resources"]]


def filtered(api, people: dict, text: str) -> set[str]:
    body = listing(api, f"filter={quote(text)}")
    assert body["totalResults"] == len(body["Resources"])
    return set(who(people, body))


def search(api, **body):
    return api.post("/Users/.search", {"schemas": [SEARCH], **body})


# --- §3.4.1 GET by id -------------------------------------------------------------------------


def test_get_user_returns_resource_with_etag(api, people) -> None:
    ann = people["ann"]
    response = api.get(f"/Users/{ann['id']}")
    assert response.status_code == 200
    assert response.mimetype == SCIM_JSON
    assert response.get_json() == ann
    assert response.headers["ETag"] == ann["meta"]["version"]


@pytest.mark.parametrize("user_id", ["no-such-id", "00000000-0000-0000-0000-000000000000"])
def test_get_user_unknown_id_is_404(api, people, user_id: str) -> None:
    api.assert_error(api.get(f"/Users/{user_id}"), 404)


def test_get_user_id_is_case_exact(api, people) -> None:
    api.assert_error(api.get(f"/Users/{people['ann']['id'].upper()}"), 404)


def test_get_user_meta_dates_are_the_creation_time(api, people) -> None:
    meta = api.get(f"/Users/{people['bob']['id']}").get_json()["meta"]
    assert meta["created"] == meta["lastModified"] == "2024-06-01T00:00:00Z"


# --- §3.4.2.2 filtering ---------------------------------------------------------------------------

FILTERS = [
    # userName: caseExact false, every operator
    ('userName eq "ann.lee@example.com"', {"ann"}),
    ('USERNAME EQ "ANN.LEE@EXAMPLE.COM"', {"ann"}),
    ('username Eq "cat@example.com"', {"cat"}),
    ('userName ne "bob@example.com"', {"ann", "cat"}),
    ('userName co "EXAMPLE"', {"ann", "bob", "cat"}),
    ('userName co "lee@"', {"ann"}),
    ('userName sw "B"', {"bob"}),
    ('userName ew ".COM"', {"ann", "bob", "cat"}),
    ('userName gt "bob@example.com"', {"cat"}),
    ('userName ge "BOB@example.com"', {"bob", "cat"}),
    ('userName lt "bob@example.com"', {"ann"}),
    ('userName le "bob@example.com"', {"ann", "bob"}),
    ('userName pr', {"ann", "bob", "cat"}),
    ('userName eq "nobody@example.com"', set()),
    # externalId: caseExact true
    ('externalId eq "EXT-ann"', {"ann"}),
    ('externalId eq "ext-ann"', set()),
    ('externalId sw "ext"', {"bob"}),
    ('externalId ne "EXT-ann"', {"bob", "cat"}),
    ('externalId pr', {"ann", "bob"}),
    ('externalId eq null', {"cat"}),
    ('externalId ne null', {"ann", "bob"}),
    # booleans
    ('active eq true', {"ann", "cat"}),
    ('active eq false', {"bob"}),
    ('active ne true', {"bob"}),
    ('active eq "True"', {"ann", "cat"}),
    # other core attributes, absent values
    ('title eq "engineer" or title eq "MANAGER"', {"ann", "bob"}),
    ('title ne "Engineer"', {"bob", "cat"}),
    ('title pr', {"ann", "bob"}),
    ('displayName eq "lee, ann"', {"ann"}),
    ('displayName pr', {"ann", "bob"}),
    # sub-attributes
    ('name.familyName eq "LEE"', {"ann"}),
    ('name.familyName sw "b"', {"bob"}),
    ('name.givenName pr', {"ann", "bob"}),
    ('name pr', {"ann", "bob", "cat"}),
    ('NAME.FAMILYNAME co "o"', {"bob", "cat"}),
    # multi-valued
    ('emails.value eq "ANN@work.example.com"', {"ann"}),
    ('emails eq "bob@home.example.org"', {"bob"}),
    ('emails co "home.example.org"', {"ann", "bob"}),
    ('emails ew ".COM"', {"ann"}),
    ('emails.type eq "work"', {"ann"}),
    ('emails pr', {"ann", "bob"}),
    ('emails[type eq "work" and value co "@work"]', {"ann"}),
    ('emails[type eq "home"]', {"ann", "bob"}),
    ('emails[value eq "bob@home.example.org"]', {"bob"}),
    ('emails[type eq "work" or value sw "bob"]', {"ann", "bob"}),
    ('emails[not (type eq "home")]', {"ann"}),
    ('emails[primary eq true]', {"ann"}),
    # fully qualified names and the enterprise extension
    (f'{USER}:userName eq "bob@example.com"', {"bob"}),
    (f'{USER}:name.givenName eq "ann"', {"ann"}),
    (f'{ENTERPRISE}:department eq "sales"', {"bob"}),
    (f'{ENTERPRISE.upper()}:DEPARTMENT eq "r&d"', {"ann"}),
    (f'{ENTERPRISE}:employeeNumber gt "150"', {"bob"}),
    (f'{ENTERPRISE}:employeeNumber pr', {"ann", "bob"}),
    (f'{ENTERPRISE}:manager.value eq "boss-id"', {"ann"}),
    (f'{ENTERPRISE}:manager.value eq "BOSS-ID"', set()),
    (f'{ENTERPRISE}:department ne "Sales"', {"ann", "cat"}),
    (f'schemas eq "{ENTERPRISE}"', {"ann", "bob"}),
    # logic, precedence, parentheses
    ('active eq true and name.familyName pr', {"ann", "cat"}),
    ('active eq true and name.familyName sw "L"', {"ann"}),
    ('not (active eq true)', {"bob"}),
    ('not (title pr)', {"cat"}),
    ('userName sw "c" or userName sw "a" and title pr', {"ann", "cat"}),
    ('(userName sw "c" or userName sw "a") and title pr', {"ann"}),
    ('userName sw "a" OR userName sw "b" AND active eq false', {"ann", "bob"}),
    ('not (userName sw "a" or userName sw "b")', {"cat"}),
    ('((active eq true))', {"ann", "cat"}),
    ('emails[type eq "home"] and not (externalId pr)', set()),
    # meta and dates
    ('meta.resourceType eq "User"', {"ann", "bob", "cat"}),
    ('meta.created gt "2024-03-01T00:00:00Z"', {"bob", "cat"}),
    ('meta.created ge "2024-06-01T00:00:00Z"', {"bob", "cat"}),
    ('meta.created eq "2024-06-01T00:00:00Z"', {"bob"}),
    ('meta.created lt "2024-06-01T02:00:00+02:00"', {"ann"}),
    ('meta.created le "2024-06-01T02:00:00+02:00"', {"ann", "bob"}),
    ('meta.lastModified gt "2024-12-31T23:59:59Z"', {"cat"}),
    ('meta.created lt "2024-06-01T00:00:00.5Z"', {"ann", "bob"}),
    ('meta.created gt "2024-05-31T23:59:59.999Z"', {"bob", "cat"}),
    ('meta.created ge "2024-06-01T00:00:00.000Z"', {"bob", "cat"}),
    ('meta.created lt "2024-06-01"', {"ann"}),
    ('meta.lastModified lt "2000-01-01T00:00:00Z"', set()),
    ('meta.LASTMODIFIED ge "2024-01-01T10:00:00Z" and active eq false', {"bob"}),
]


@pytest.mark.parametrize(("text", "expected"), FILTERS)
def test_list_filter_selects_expected_users(api, people, text: str, expected: set) -> None:
    assert filtered(api, people, text) == expected, "as written (SQL where it translates)"
    assert filtered(api, people, f"not (not ({text}))") == expected, "Python fallback"


@pytest.mark.parametrize("wrap", ["{}", "not (not ({}))"])
def test_list_filter_id_is_case_exact(api, people, wrap: str) -> None:
    ann_id = people["ann"]["id"]
    assert filtered(api, people, wrap.format(f'id eq "{ann_id}"')) == {"ann"}
    assert filtered(api, people, wrap.format(f'id eq "{ann_id.upper()}"')) == set()
    assert filtered(api, people, wrap.format(f'id ne "{ann_id}"')) == {"bob", "cat"}


@pytest.mark.parametrize("wrap", ["{}", "not (not ({}))"])
def test_list_filter_groups_value_finds_members(api, people, wrap: str) -> None:
    group = api.create_group("Engineering", members=[people["cat"]["id"]])
    assert filtered(api, people, wrap.format(f'groups.value eq "{group["id"]}"')) == {"cat"}
    assert filtered(api, people, wrap.format('groups.display eq "engineering"')) == {"cat"}


def test_list_filter_matching_nothing_is_empty_list(api, people) -> None:
    body = listing(api, "filter=" + quote('userName eq "nobody"'))
    assert body == {"schemas": [LIST], "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []}


def test_list_without_users_is_empty_list(api) -> None:
    assert listing(api) == {"schemas": [LIST], "totalResults": 0, "startIndex": 1, "itemsPerPage": 0,
                            "Resources": []}


@pytest.mark.parametrize(
    "text",
    [
        "userName eq",
        'userName zz "x"',
        'userName eq "unterminated',
        'favouriteColour eq "blue"',
        'name.nickname eq "x"',
        f'{ENTERPRISE}:shoeSize eq "x"',
        'urn:example:unknown:2.0:User:userName eq "x"',
        'userName eq "x" and',
        '(userName eq "x"',
        'userName eq "x")',
        'emails[type eq "work"',
        'active gt true',
        'active eq "maybe"',
        'meta.created gt "yesterday"',
        'userName co 5',
        'name eq "Ann"',
        'not userName eq "x"',
        'userName pr "x"',
    ],
)
def test_list_invalid_filter_is_400_invalid_filter(api, people, text: str) -> None:
    api.assert_error(api.get(f"/Users?filter={quote(text)}"), 400, "invalidFilter")


def test_list_filter_longer_than_limit_is_invalid_filter(api, people) -> None:
    text = " or ".join(['userName eq "x"'] * 400)
    api.assert_error(search(api, filter=text), 400, "invalidFilter")


def test_list_blank_filter_lists_everyone(api, people) -> None:
    assert listing(api, "filter=%20")["totalResults"] == 3


# --- §3.4.2.4 paging ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "start", "names"),
    [
        ("startIndex=1&count=2", 1, ["ann", "bob"]),
        ("startIndex=2&count=1", 2, ["bob"]),
        ("startIndex=3&count=10", 3, ["cat"]),
        ("startIndex=4", 4, []),
        ("startIndex=0&count=1", 1, ["ann"]),
        ("startIndex=-7&count=2", 1, ["ann", "bob"]),
        ("count=0", 1, []),
        ("count=-3", 1, []),
        ("startIndex=2&count=0", 2, []),
        ("startIndex=99999999999999999999999", 99999999999999999999999, []),
        ("STARTINDEX=2&COUNT=1", 2, ["bob"]),
        ("", 1, ["ann", "bob", "cat"]),
    ],
)
@pytest.mark.parametrize("wrap", ["", "filter=" + quote('not (userName eq "x")') + "&"])
def test_list_paging_is_one_based_and_clamped(api, people, query: str, start: int, names: list,
                                              wrap: str) -> None:
    body = listing(api, f"{wrap}sortBy=userName&{query}")
    assert body["totalResults"] == 3
    assert body["startIndex"] == start
    assert body["itemsPerPage"] == len(names)
    assert who(people, body) == names


@pytest.mark.parametrize("query", ["startIndex=abc", "count=ten", "count=1.5", "startIndex=1e3"])
def test_list_non_numeric_paging_is_invalid_value(api, people, query: str) -> None:
    api.assert_error(api.get(f"/Users?{query}"), 400, "invalidValue")


# --- §3.4.2.3 sorting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort_by", "ascending"),
    [
        ("userName", ["ann", "bob", "cat"]),  # case-insensitive: "Cat" after "bob"
        ("USERNAME", ["ann", "bob", "cat"]),
        (f"{USER}:userName", ["ann", "bob", "cat"]),
        ("meta.created", ["ann", "bob", "cat"]),
        ("meta.lastModified", ["ann", "bob", "cat"]),
        ("name.familyName", ["bob", "cat", "ann"]),  # brown, Cole, Lee: case-insensitive, in Python
        ("externalId", ["ann", "bob", "cat"]),  # caseExact: "EXT-ann" < "ext-bob"; absent last
        ("title", ["ann", "bob", "cat"]),  # absent last
        ("displayName", ["bob", "ann", "cat"]),  # "Bob Brown", "Lee, Ann", absent (not a derived name)
        ("emails.value", ["ann", "bob", "cat"]),  # ann's primary email, not her first
        ("emails", ["ann", "bob", "cat"]),  # a multi-valued attribute sorts by its primary value
        ("emails.type", ["bob", "ann", "cat"]),  # ann's primary is "work", bob's only one "home"
        (f"{ENTERPRISE}:employeeNumber", ["ann", "bob", "cat"]),
    ],
)
def test_list_sort_orders_by_attribute(api, people, sort_by: str, ascending: list[str]) -> None:
    up = listing(api, f"sortBy={quote(sort_by)}")
    down = listing(api, f"sortBy={quote(sort_by)}&sortOrder=descending")
    assert who(people, up) == ascending
    # RFC 7644 §3.4.2.3: resources without a value are last ascending and first descending.
    assert who(people, down) == list(reversed(ascending))


def test_list_sort_order_is_case_insensitive(api, people) -> None:
    assert who(people, listing(api, "sortBy=userName&sortOrder=DESCENDING")) == ["cat", "bob", "ann"]


@pytest.mark.parametrize(
    ("query", "scim_type"),
    [
        ("sortBy=shoeSize", "invalidValue"),
        ("sortBy=name.shoeSize", "invalidValue"),
        ("sortBy=name", "invalidValue"),  # complex: name a sub-attribute (RFC 7644 §3.4.2.3)
        ("sortBy=meta", "invalidValue"),
        ("sortBy=addresses", "invalidValue"),
        ("sortBy=userName&sortOrder=sideways", "invalidValue"),
    ],
)
def test_list_bad_sort_is_400(api, people, query: str, scim_type: str) -> None:
    api.assert_error(api.get(f"/Users?{query}"), 400, scim_type)


def test_list_sort_filter_and_page_together(api, people) -> None:
    query = f"filter={quote('emails pr or name.familyName pr')}&sortBy=name.familyName&sortOrder=descending"
    body = listing(api, f"{query}&startIndex=2&count=1")
    assert body["totalResults"] == 3 and who(people, body) == ["cat"]


# --- §3.4.2.5 / §3.9 attributes and excludedAttributes ---------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("attributes=userName", {"schemas": [USER], "id": None, "userName": "Ann.Lee@Example.com"}),
        ("attributes=USERNAME,name.familyName",
         {"schemas": [USER], "id": None, "userName": "Ann.Lee@Example.com", "name": {"familyName": "Lee"}}),
        ("attributes=emails.value",
         {"schemas": [USER], "id": None,
          "emails": [{"value": "zz-ann@home.example.org"}, {"value": "ann@work.example.com"}]}),
        (f"attributes={ENTERPRISE}:department",
         {"schemas": [USER, ENTERPRISE], "id": None, ENTERPRISE: {"department": "R&D"}}),
        (f"attributes={USER}:title", {"schemas": [USER], "id": None, "title": "Engineer"}),
        ("attributes=password,userName", {"schemas": [USER], "id": None, "userName": "Ann.Lee@Example.com"}),
        ("attributes=id", {"schemas": [USER], "id": None}),
    ],
)
def test_get_user_attributes_narrows_response(api, people, query: str, expected: dict) -> None:
    ann = people["ann"]
    body = api.get(f"/Users/{ann['id']}?{query}").get_json()
    assert {k: v for k, v in body.items() if k != "meta"} == {**expected, "id": ann["id"]}


@pytest.mark.parametrize(
    ("query", "gone", "kept"),
    [
        ("excludedAttributes=emails,name", {"emails", "name"}, {"userName", "title", ENTERPRISE}),
        (f"excludedAttributes={ENTERPRISE}", {ENTERPRISE}, {"userName", "emails"}),
        (f"excludedAttributes={ENTERPRISE}:department", set(), {ENTERPRISE}),
        ("excludedAttributes=EMAILS", {"emails"}, {"name"}),
        ("excludedAttributes=id", set(), {"id"}),  # returned "always" (RFC 7643 §3.1)
    ],
)
def test_get_user_excluded_attributes_removes_them(api, people, query: str, gone: set, kept: set) -> None:
    body = api.get(f"/Users/{people['ann']['id']}?{query}").get_json()
    assert not gone & set(body) and kept <= set(body)
    if ENTERPRISE in gone:
        assert body["schemas"] == [USER]
    if query.endswith(":department"):
        assert "department" not in body[ENTERPRISE] and body[ENTERPRISE]["employeeNumber"] == "100"


def test_list_attributes_apply_to_every_resource(api, people) -> None:
    body = listing(api, "attributes=userName&sortBy=userName")
    assert [set(r) - {"meta"} for r in body["Resources"]] == [{"schemas", "id", "userName"}] * 3


def test_list_excluded_attributes_apply_to_every_resource(api, people) -> None:
    body = listing(api, "excludedAttributes=name,emails")
    assert all("name" not in r and "emails" not in r and "userName" in r for r in body["Resources"])


# --- §3.4.3 POST /Users/.search ---------------------------------------------------------------------


def test_search_post_filters_sorts_pages_and_selects(api, people) -> None:
    response = search(api, filter='userName sw "a" or userName sw "b" or userName sw "c"', sortBy="userName",
                      sortOrder="descending", startIndex=2, count=1, attributes=["userName"])
    body = response.get_json()
    assert response.status_code == 200, body
    assert response.mimetype == SCIM_JSON
    assert body["schemas"] == [LIST] and body["totalResults"] == 3 and body["startIndex"] == 2
    assert body["itemsPerPage"] == 1 and who(people, body) == ["bob"]
    assert set(body["Resources"][0]) - {"meta"} == {"schemas", "id", "userName"}


def test_search_post_excluded_attributes(api, people) -> None:
    body = search(api, filter='userName eq "bob@example.com"', excludedAttributes=["emails", ENTERPRISE]).get_json()
    assert who(people, body) == ["bob"]
    assert "emails" not in body["Resources"][0] and ENTERPRISE not in body["Resources"][0]


def test_search_post_without_filter_lists_everyone(api, people) -> None:
    body = search(api).get_json()
    assert body["totalResults"] == 3


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}, "invalidValue"),
        ({"schemas": [SEARCH], "filter": "userName eq"}, "invalidFilter"),
        ({"schemas": [SEARCH], "filter": 42}, "invalidValue"),
        ({"schemas": [SEARCH], "count": "many"}, "invalidValue"),
        ({"schemas": [SEARCH], "attributes": "userName"}, "invalidValue"),
    ],
)
def test_search_post_bad_request_is_400(api, people, body: dict, scim_type: str) -> None:
    api.assert_error(api.post("/Users/.search", body), 400, scim_type)


@pytest.mark.parametrize(("text", "who"), [('userName eq "MAX@EXAMPLE.COM"', "max"), ('userName sw "max@"', "max"),
                                           ('userName eq "MA\u0301X@example.com"', "accented"),
                                           ('userName co "Ｍａ"', "wide"), ('userName eq "ｍａｘ@EXAMPLE.com"', "wide")])
@pytest.mark.parametrize("wrap", ["{}", "not (not ({}))"])
def test_list_filter_username_compares_as_uniqueness_does(api, text: str, who: str, wrap: str) -> None:
    # userName is unique by base/textkey.key: any letter case or canonically equivalent form is
    # the same name; a compatibility look-alike (full-width "ｍａｘ") is another name.
    users = {"max": api.create_user("Max@Example.com"), "wide": api.create_user("ｍａｘ@example.com"),
             "accented": api.create_user("m\u00e1x@example.com")}
    for same in ("max@EXAMPLE.COM", "ＭＡＸ@example.com", "MA\u0301X@example.com"):
        api.assert_error(api.post("/Users", {"schemas": [USER], "userName": same}), 409, "uniqueness")
    found = listing(api, "filter=" + quote(wrap.format(text)))["Resources"]
    assert [r["id"] for r in found] == [users[who]["id"]]
