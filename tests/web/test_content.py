"""Content handling: media types (RFC 7644 §3.1, §8.1), URLs and query strings, attribute-name case (RFC 7643 §2.1)."""

from __future__ import annotations

import json

import pytest

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CONTENT_TYPES = [
    "application/scim+json", "application/json", "application/scim+json; charset=utf-8",
    "application/json; charset=UTF-8", "application/scim+json;charset=utf-8", None,
]


def _send(api, method: str, path: str, body, content_type: str | None):
    """Send `body` as JSON with this Content-Type, or with none at all."""
    headers = {"Authorization": f"Bearer {api.token}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return api.client.open(api.base + path, method=method, headers=headers, data=data)


def _names(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [r["userName"] for r in response.get_json()["Resources"]]


@pytest.fixture
def people(api) -> list[dict]:
    return [api.create_user(f"user{i}@example.com", displayName=f"Ann Lee {i}") for i in range(3)]


# --- Media types ------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_content_type_post_is_accepted(api, content_type) -> None:
    response = _send(api, "POST", "/Users", {"schemas": [USER], "userName": "ct@example.com"}, content_type)
    assert response.status_code == 201, response.get_json(force=True)
    assert response.get_json(force=True)["userName"] == "ct@example.com"


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_content_type_put_and_patch_are_accepted(api, content_type) -> None:
    user = api.create_user()
    put = _send(api, "PUT", f"/Users/{user['id']}", {"userName": user["userName"], "title": "A"}, content_type)
    assert (put.status_code, put.get_json(force=True)["title"]) == (200, "A")
    ops = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "B"}]}
    patched = _send(api, "PATCH", f"/Users/{user['id']}", ops, content_type)
    assert (patched.status_code, patched.get_json(force=True)["title"]) == (200, "B")


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_content_type_search_is_accepted(api, people, content_type) -> None:
    body = {"schemas": [SEARCH], "filter": 'userName eq "user1@example.com"'}
    assert _names(_send(api, "POST", "/Users/.search", body, content_type)) == ["user1@example.com"]


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/Users", 200), ("POST", "/Users", 201), ("GET", "/ServiceProviderConfig", 200),
    ("GET", "/Schemas", 200), ("GET", "/Nope", 404), ("DELETE", "/Users", 405),
])
def test_content_type_of_responses_is_scim_json(api, method, path, status) -> None:
    response = api.request(method, path, {"userName": "resp@example.com"} if method == "POST" else None)
    assert response.status_code == status
    assert response.mimetype == "application/scim+json"
    assert json.loads(response.get_data())


def test_content_type_unicode_round_trips_as_utf8(api) -> None:
    user = api.create_user("zoë@example.com", displayName="Zoë Ångström 山田 😀")
    response = api.get(f"/Users/{user['id']}")
    assert response.get_json()["displayName"] == "Zoë Ångström 山田 😀"
    assert "Zoë".encode() in response.get_data()


def test_content_type_utf8_byte_order_mark_is_accepted(api) -> None:
    data = b"\xef\xbb\xbf" + json.dumps({"userName": "bom@example.com"}).encode()
    response = _send(api, "POST", "/Users", data, "application/scim+json")
    assert (response.status_code, response.get_json()["userName"]) == (201, "bom@example.com")


# --- Query strings ----------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    'filter=userName+eq+"user1@example.com"',
    'filter=userName%20eq%20%22user1%40example.com%22',
    'filter=userName eq "user1@example.com"',
    'filter=userName+eq+"user1@example.com"&',
    '&filter=userName+eq+"user1@example.com"&&',
    'FILTER=userName+eq+"user1@example.com"',
])
def test_content_query_string_spellings(api, people, query) -> None:
    assert _names(api.get(f"/Users?{query}")) == ["user1@example.com"]


def test_content_query_plus_in_value_is_a_space(api, people) -> None:
    assert len(_names(api.get('/Users?filter=displayName+sw+"Ann+Lee"'))) == 3
    assert _names(api.get('/Users?filter=userName+eq+"user1%2Bx@example.com"')) == []


@pytest.mark.parametrize("query", ["startIndex=2&count=1", "startIndex=%202%20&count=1", "startIndex=2&count=1&"])
def test_content_paging_from_query_strings(api, people, query) -> None:
    page = api.get(f"/Users?{query}&sortBy=userName")
    assert _names(page) == ["user1@example.com"]
    assert (page.get_json()["startIndex"], page.get_json()["itemsPerPage"]) == (2, 1)


@pytest.mark.parametrize(("start", "count"), [("2", "1"), (2, 1), (" 2", "1 ")])
def test_content_paging_from_search_body_strings(api, people, start, count) -> None:
    body = {"schemas": [SEARCH], "startIndex": start, "count": count, "sortBy": "userName"}
    page = api.post("/Users/.search", body)
    assert _names(page) == ["user1@example.com"]
    assert page.get_json()["startIndex"] == 2


@pytest.mark.parametrize("value", ["two", "1.5", "true"])
def test_content_paging_non_integer_is_400(api, value) -> None:
    api.assert_error(api.get(f"/Users?count={value}"), 400, "invalidValue")


# --- URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/Users/", "/Users?", "/Users/?", "/Groups/", "/ServiceProviderConfig/",
                                  "/Schemas/", "/ResourceTypes/", "/ResourceTypes/User/"])
def test_content_trailing_slash_or_question_mark_on_collections(api, path) -> None:
    response = api.get(path)
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "application/scim+json"


@pytest.mark.parametrize("suffix", ["", "/", "?", "/?"])
def test_content_trailing_slash_or_question_mark_on_resources(api, suffix) -> None:
    user = api.create_user()
    response = api.get(f"/Users/{user['id']}{suffix}")
    assert (response.status_code, response.get_json()["id"]) == (200, user["id"])


def test_content_post_to_collection_with_trailing_slash(api) -> None:
    response = api.post("/Users/", {"userName": "slash@example.com"})
    assert (response.status_code, response.get_json()["userName"]) == (201, "slash@example.com")


def test_content_schema_urn_with_trailing_slash(api) -> None:
    assert api.get(f"/Schemas/{USER}/").get_json()["id"] == USER


# --- Attribute names are case-insensitive (RFC 7643 §2.1) -------------------------------


def test_content_attribute_names_in_body_are_case_insensitive(api) -> None:
    body = {"SCHEMAS": [USER], "USERNAME": "case@example.com", "Name": {"GivenName": "Ann", "FAMILYNAME": "Lee"},
            "Emails": [{"VALUE": "case@example.com", "Primary": True, "tYpE": "work"}], "ACTIVE": True,
            ENTERPRISE.upper(): {"EmployeeNumber": "42", "Manager": {"Value": "boss"}}}
    response = api.post("/Users", body)
    assert response.status_code == 201, response.get_json()
    got = api.get(f"/Users/{response.get_json()['id']}").get_json()
    assert got["userName"] == "case@example.com"
    assert got["name"] == {"givenName": "Ann", "familyName": "Lee"}
    assert got["emails"] == [{"value": "case@example.com", "primary": True, "type": "work"}]
    assert got[ENTERPRISE] == {"employeeNumber": "42", "manager": {"value": "boss"}}
    assert set(got["schemas"]) == {USER, ENTERPRISE}


def test_content_urn_qualified_attribute_names_are_case_insensitive(api) -> None:
    body = {f"{USER.upper()}:userName": "urn@example.com", f"{ENTERPRISE}:Department": "R&D"}
    response = api.post("/Users", body)
    assert response.status_code == 201, response.get_json()
    assert (response.get_json()["userName"], response.get_json()[ENTERPRISE]) == ("urn@example.com", {"department": "R&D"})


@pytest.mark.parametrize("body", [
    {"userName": "a@example.com", "USERNAME": "b@example.com"},
    {"userName": "a@example.com", f"{USER}:userName": "b@example.com"},
    {"userName": "a@example.com", "name": {"givenName": "A", "GIVENNAME": "B"}},
    {"userName": "a@example.com", "emails": [{"value": "a@example.com", "Value": "b@example.com"}]},
    {"userName": "a@example.com", ENTERPRISE: {"department": "A"}, f"{ENTERPRISE}:Department": "B"},
])
def test_content_same_attribute_in_two_cases_is_400(api, body) -> None:
    api.assert_error(api.post("/Users", body), 400, "invalidValue")
    assert api.get("/Users").get_json()["totalResults"] == 0


def test_content_attribute_names_in_patch_paths_are_case_insensitive(api) -> None:
    user = api.create_user(name={"givenName": "Ann"})
    ops = [{"op": "replace", "path": "NAME.GIVENNAME", "value": "Bo"}, {"OP": "Add", "Path": "Title", "Value": "X"}]
    response = api.ops(f"/Users/{user['id']}", *ops)
    assert response.status_code == 200, response.get_json()
    assert (response.get_json()["name"], response.get_json()["title"]) == ({"givenName": "Bo"}, "X")


def test_content_attribute_names_in_filters_and_projections_are_case_insensitive(api, people) -> None:
    page = api.get('/Users?filter=USERNAME+eq+"user2@example.com"&attributes=USERNAME')
    assert _names(page) == ["user2@example.com"]
    assert set(page.get_json()["Resources"][0]) == {"schemas", "id", "userName", "meta"}
