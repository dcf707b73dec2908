"""POST /Users over HTTP (RFC 7644 §3.3): create, read back, uniqueness, meta, errors."""

from __future__ import annotations

import dataclasses
import re

import pytest

from skilljar_scim.store.models import User

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
SCIM_JSON = "application/scim+json"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

FULL = {
    "schemas": [USER, ENTERPRISE],
    "externalId": "Ext-0001",
    "userName": "Barbara.Jensen@Example.COM",
    "name": {"formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen", "givenName": "Barbara",
             "middleName": "Jane", "honorificPrefix": "Ms.", "honorificSuffix": "III"},
    "displayName": "Babs Jensen",
    "nickName": "Babs",
    "profileUrl": "https://login.example.com/bjensen",
    "title": "Tour Guide",
    "userType": "Employee",
    "preferredLanguage": "en-US",
    "locale": "en-US",
    "timezone": "America/Los_Angeles",
    "active": True,
    "emails": [{"value": "BJensen@Example.com", "type": "work", "primary": True},
               {"value": "babs@jensen.org", "type": "home"}],
    "phoneNumbers": [{"value": "555-555-5555", "type": "work"}],
    "addresses": [{"streetAddress": "100 Universal City Plaza", "locality": "Hollywood", "region": "CA",
                   "postalCode": "91608", "country": "US", "type": "work", "primary": True}],
    "entitlements": [{"value": "Premium"}],
    ENTERPRISE: {"employeeNumber": "701984", "costCenter": "4130", "organization": "Universal Studios",
                 "division": "Theme Park", "department": "Tour Operations",
                 "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}},
}


def post_user(api, body: dict, path: str = "/Users", **kw):
    return api.post(path, {"schemas": [USER], **body}, **kw)


def stored(user_id: str) -> User:
    return User.get_by_id(user_id)


# --- §3.3 the created resource ---------------------------------------------------------------


def test_create_returns_201_with_resource_location_and_etag(api) -> None:
    response = post_user(api, {"userName": "alice@example.com"})
    body = response.get_json()
    assert response.status_code == 201, body
    assert response.mimetype == SCIM_JSON
    assert body["schemas"] == [USER]
    assert body["userName"] == "alice@example.com"
    assert re.fullmatch(r"[0-9a-f-]{36}", body["id"])
    assert response.headers["Location"] == body["meta"]["location"]
    assert response.headers["ETag"] == body["meta"]["version"]


def test_create_meta_has_type_times_location_and_version(api) -> None:
    body = api.create_user("alice@example.com")
    meta = body["meta"]
    assert set(meta) == {"resourceType", "created", "lastModified", "location", "version"}
    assert meta["resourceType"] == "User"
    assert ISO_Z.match(meta["created"]) and meta["created"] == meta["lastModified"]
    assert meta["location"] == f"http://127.0.0.1:8080/scim/v2/Users/{body['id']}"
    assert meta["version"].startswith('W/"')


def test_create_reads_back_every_attribute_exactly_as_written(api) -> None:
    created = post_user(api, FULL).get_json()
    got = api.get(f"/Users/{created['id']}").get_json()
    for resource in (created, got):
        assert {k: v for k, v in resource.items() if k not in ("id", "meta", "schemas")} == {
            k: v for k, v in FULL.items() if k != "schemas"
        }
        assert sorted(resource["schemas"]) == sorted([USER, ENTERPRISE])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("emails", [{"value": "Mixed.Case@Example.COM"}]),
        ("name", {"givenName": "ÉLODIE"}),
        ("phoneNumbers", [{"value": "+1 555 0100"}]),
        ("addresses", [{"locality": "Zürich"}]),
    ],
)
def test_create_invents_no_sub_attributes_and_keeps_case(api, field: str, value) -> None:
    created = api.create_user("alice@example.com", **{field: value})
    assert created[field] == value
    assert api.get(f"/Users/{created['id']}").get_json()[field] == value


def test_create_keeps_username_case(api) -> None:
    created = api.create_user("Alice.Smith@Example.COM")
    assert created["userName"] == "Alice.Smith@Example.COM"
    assert api.get(f"/Users/{created['id']}").get_json()["userName"] == "Alice.Smith@Example.COM"


def test_create_ignores_read_only_and_unknown_attributes(api) -> None:
    body = {"userName": "alice@example.com", "id": "chosen-by-client", "meta": {"version": 'W/"99"'},
            "groups": [{"value": "g1"}], "favouriteColour": "blue"}
    created = post_user(api, body).get_json()
    assert created["id"] != "chosen-by-client"
    assert "groups" not in created and "favouriteColour" not in created
    assert created["meta"]["version"] != 'W/"99"'


def test_create_password_is_accepted_but_never_returned_nor_stored_in_clear(api) -> None:
    created = api.create_user("alice@example.com", password="S3cret-Pa55!")
    assert "password" not in created
    assert "password" not in api.get(f"/Users/{created['id']}").get_json()
    row = stored(created["id"])
    assert row.password_hash.startswith("$argon2id$") and "S3cret-Pa55!" not in row.password_hash
    assert "S3cret-Pa55!" not in row.attributes


@pytest.mark.parametrize(
    ("query", "present", "absent"),
    [
        ("attributes=userName", {"id", "userName", "schemas"}, {"name", "emails", "displayName"}),
        ("excludedAttributes=emails,name", {"id", "userName", "displayName"}, {"name", "emails"}),
        ("attributes=name.givenName", {"id", "name"}, {"userName", "emails"}),
    ],
)
def test_create_response_honours_attribute_selection(api, query: str, present: set, absent: set) -> None:
    body = {"userName": "alice@example.com", "displayName": "Alice",
            "name": {"givenName": "Alice", "familyName": "Smith"}, "emails": [{"value": "a@example.com"}]}
    response = post_user(api, body, f"/Users?{query}")
    created = response.get_json()
    assert response.status_code == 201, created
    assert present <= set(created) and not absent & set(created)
    if query == "attributes=name.givenName":
        assert created["name"] == {"givenName": "Alice"}


# --- §3.3 errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ({"displayName": "No userName"}, "invalidValue"),
        ({"userName": ""}, "invalidValue"),
        ({"userName": 42}, "invalidValue"),
        ({"userName": "a@example.com", "active": "yes"}, "invalidValue"),
        ({"userName": "a@example.com", "emails": {"value": "a@example.com"}}, "invalidValue"),
        ({"userName": "a@example.com", "emails": [{"value": "a@x.com", "primary": True},
                                                  {"value": "b@x.com", "primary": True}]}, "invalidValue"),
        ({"userName": "a@example.com", "name": "Alice"}, "invalidValue"),
        ({"userName": "a@example.com", ENTERPRISE: "not an object"}, "invalidValue"),
    ],
)
def test_create_invalid_body_is_400(api, body: dict, scim_type: str) -> None:
    api.assert_error(post_user(api, body), 400, scim_type)
    assert api.get("/Users").get_json()["totalResults"] == 0


@pytest.mark.parametrize("raw", ["", "{not json", "[1, 2]", '"alice"'])
def test_create_malformed_json_is_invalid_syntax(api, raw: str) -> None:
    api.assert_error(api.post("/Users", data=raw), 400, "invalidSyntax")


# --- uniqueness (RFC 7644 §3.3: 409 uniqueness) -------------------------------------------------


@pytest.mark.parametrize(
    "second",
    [
        {"userName": "alice@example.com"},
        {"userName": "ALICE@Example.com"},
        {"userName": "bob@example.com", "externalId": "ext-1"},
    ],
)
def test_create_existing_active_user_is_409_uniqueness(api, second: dict) -> None:
    first = api.create_user("alice@example.com", externalId="ext-1")
    api.assert_error(post_user(api, second), 409, "uniqueness")
    listed = api.get("/Users").get_json()
    assert [r["id"] for r in listed["Resources"]] == [first["id"]]


def test_create_external_id_is_case_exact_for_uniqueness(api) -> None:
    api.create_user("alice@example.com", externalId="ext-1")
    created = api.create_user("bob@example.com", externalId="EXT-1")
    assert created["externalId"] == "EXT-1"


# --- returning people (DESIGN: Users) -----------------------------------------------------------


@pytest.mark.parametrize("how", ["deleted", "deactivated"])
def test_create_returning_person_is_201_with_the_same_id_and_location(api, how) -> None:
    """The rules are tests/domain/test_users.py's; here the HTTP answer: 201, same id, Location, new ETag."""
    first = api.create_user("alice@example.com", externalId="ext-1")
    if how == "deleted":
        assert api.delete(f"/Users/{first['id']}").status_code == 204
    else:
        api.ops(f"/Users/{first['id']}", {"op": "replace", "path": "active", "value": False})
    response = post_user(api, {"userName": "Alice@Example.com", "displayName": "Alice Again"})
    again = response.get_json()
    assert response.status_code == 201, again
    assert again["id"] == first["id"] and response.headers["Location"] == again["meta"]["location"]
    assert again["active"] is True and response.headers["ETag"] != first["meta"]["version"]


# --- meta.location (RFC 7644 §3.1, RFC 7643 §3.1) ------------------------------------------------


def test_create_location_ignores_the_host_header(api) -> None:
    response = post_user(api, {"userName": "alice@example.com"}, headers={"Host": "evil.example.org:8443"})
    body = response.get_json()
    assert body["meta"]["location"] == f"http://127.0.0.1:8080/scim/v2/Users/{body['id']}"  # server.host and port
    assert response.headers["Location"] == body["meta"]["location"]


def test_create_location_uses_configured_public_base_url(api, settings) -> None:
    from skilljar_scim.web.app import create_app

    server = dataclasses.replace(settings.server, public_base_url="https://scim.example.com/")
    public = create_app(dataclasses.replace(settings, server=server))
    response = public.test_client().post(
        "/scim/v2/Users", json={"schemas": [USER], "userName": "alice@example.com"},
        headers={"Authorization": f"Bearer {api.token}", "Host": "internal:8080"},
    )
    body = response.get_json()
    assert response.status_code == 201, body
    assert body["meta"]["location"] == f"https://scim.example.com/scim/v2/Users/{body['id']}"
    assert response.headers["Location"] == body["meta"]["location"]
