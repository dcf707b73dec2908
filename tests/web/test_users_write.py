"""PUT, PATCH and DELETE /Users/{id} over HTTP (RFC 7644 §3.5.1, §3.5.2, §3.6)."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote

import argon2
import pytest

from skilljar_scim.base import clock
from skilljar_scim.domain import passwords
from skilljar_scim.store.models import User

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
SCIM_JSON = "application/scim+json"


# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def ann(api) -> dict:
    """A user with a name, two emails, a title and enterprise attributes."""
    return api.create_user(
        "ann@example.com", externalId="ext-ann", displayName="Ann Lee", title="Engineer",
        name={"givenName": "Ann", "familyName": "Lee"},
        emails=[{"value": "ann@work.example.com", "type": "work", "primary": True},
                {"value": "ann@home.example.org", "type": "home"}],
        **{ENTERPRISE: {"department": "R&D", "employeeNumber": "100"}},
    )


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch):
    """Move the clock on by a minute whenever called, so lastModified visibly changes."""
    now = [datetime(2025, 1, 1, 9, 0, 0)]
    monkeypatch.setattr(clock, "utcnow", lambda: now[0])

    def tick() -> None:
        now[0] += timedelta(minutes=1)

    return tick


def fetch(api, user_id: str) -> dict:
    response = api.get(f"/Users/{user_id}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ok(response, status: int = 200) -> dict:
    body = response.get_json()
    assert response.status_code == status, body
    assert response.mimetype == SCIM_JSON
    assert response.headers["ETag"] == body["meta"]["version"]
    return body


def op(kind: str, path: str | None = None, value=...) -> dict:
    """Build one PATCH operation; `value` left out unless given (None sends JSON null)."""
    operation = {"op": kind}
    if path is not None:
        operation["path"] = path
    if value is not ...:
        operation["value"] = value
    return operation


def password_matches(stored_hash: str, password: str) -> bool:
    """Check a stored hash against a password: Argon2id at the current parameters (domain/passwords.py)."""
    try:
        return passwords.is_current(stored_hash) and argon2.PasswordHasher().verify(stored_hash, password)
    except argon2.exceptions.VerifyMismatchError:
        return False


def put(api, user_id: str, body: dict, **kw):
    return api.put(f"/Users/{user_id}", {"schemas": [USER], **body}, **kw)


# --- §3.5.1 PUT -----------------------------------------------------------------------------------


def test_put_replaces_every_attribute(api, later, ann) -> None:
    later()
    body = {"userName": "Ann.Lee@Example.com", "displayName": "Ann L.", "emails": [{"value": "a@x.org"}]}
    replaced = ok(put(api, ann["id"], body))
    assert {k: v for k, v in replaced.items() if k not in ("id", "meta", "schemas")} == {**body, "active": True}
    assert replaced["schemas"] == [USER]
    assert fetch(api, ann["id"]) == replaced
    assert replaced["meta"]["version"] != ann["meta"]["version"]
    assert replaced["meta"]["created"] == ann["meta"]["created"]
    assert replaced["meta"]["lastModified"] > ann["meta"]["lastModified"]


@pytest.mark.parametrize("sent_id", ["same", ""])
def test_put_body_id_equal_to_url_is_accepted(api, ann, sent_id: str) -> None:
    user_id = ann["id"] if sent_id == "same" else sent_id
    replaced = ok(put(api, ann["id"], {"id": user_id, "userName": "ann@example.com", "title": "Boss"}))
    assert replaced["id"] == ann["id"] and replaced["title"] == "Boss"


def test_put_body_id_different_from_url_is_mutability(api, ann) -> None:
    response = put(api, ann["id"], {"id": "another-id", "userName": "ann@example.com"})
    api.assert_error(response, 400, "mutability")
    assert fetch(api, ann["id"]) == ann


def test_put_ignores_read_only_meta_and_groups(api, ann) -> None:
    body = {"userName": "ann@example.com", "meta": {"created": "2000-01-01T00:00:00Z"}, "groups": [{"value": "g"}]}
    replaced = ok(put(api, ann["id"], body))
    assert replaced["meta"]["created"] == ann["meta"]["created"] and "groups" not in replaced


@pytest.mark.parametrize("user_name", ["bob@example.com", "BOB@Example.COM"])
def test_put_taking_another_users_username_is_409(api, ann, user_name: str) -> None:
    api.create_user("bob@example.com")
    api.assert_error(put(api, ann["id"], {"userName": user_name}), 409, "uniqueness")
    assert fetch(api, ann["id"]) == ann


def test_put_taking_another_users_external_id_is_409(api, ann) -> None:
    api.create_user("bob@example.com", externalId="ext-bob")
    api.assert_error(put(api, ann["id"], {"userName": "ann@example.com", "externalId": "ext-bob"}), 409, "uniqueness")
    assert fetch(api, ann["id"]) == ann


def test_put_changing_only_username_case_is_allowed(api, ann) -> None:
    assert ok(put(api, ann["id"], {"userName": "ANN@example.com"}))["userName"] == "ANN@example.com"


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ({"displayName": "No userName"}, "invalidValue"),
        ({"userName": "ann@example.com", "active": "maybe"}, "invalidValue"),
        ({"userName": "ann@example.com", "name": {"givenName": 7}}, "invalidValue"),
    ],
)
def test_put_invalid_body_is_400_and_changes_nothing(api, ann, body: dict, scim_type: str) -> None:
    api.assert_error(put(api, ann["id"], body), 400, scim_type)
    assert fetch(api, ann["id"]) == ann


def test_put_unknown_user_is_404(api) -> None:
    api.assert_error(put(api, "no-such-id", {"userName": "x@example.com"}), 404)


def test_put_password_is_write_only_and_hashed(api, ann) -> None:
    replaced = ok(put(api, ann["id"], {"userName": "ann@example.com", "password": "Tr0ub4dor&3"}))
    assert "password" not in replaced and "password" not in fetch(api, ann["id"])
    row = User.get_by_id(ann["id"])
    assert "Tr0ub4dor&3" not in row.password_hash and "Tr0ub4dor&3" not in row.attributes
    assert password_matches(row.password_hash, "Tr0ub4dor&3")


def test_put_response_honours_attributes(api, ann) -> None:
    response = api.put(f"/Users/{ann['id']}?attributes=userName", {"userName": "ann@example.com", "title": "X"})
    body = ok(response)
    assert set(body) - {"meta"} == {"schemas", "id", "userName"}


# --- §3.5.2 PATCH -----------------------------------------------------------------------------------

PATCHES = [
    # (operations, attributes expected afterwards: None = absent)
    ([op("add", "title", "Lead")], {"title": "Lead"}),
    ([op("replace", "title", "Lead")], {"title": "Lead"}),
    ([op("remove", "title")], {"title": None}),
    ([op("Replace", "TITLE", "Lead")], {"title": "Lead"}),
    ([op("add", value={"nickName": "Annie", "name": {"middleName": "J"}})],
     {"nickName": "Annie", "name": {"givenName": "Ann", "familyName": "Lee", "middleName": "J"}}),
    ([op("replace", value={"displayName": "A. Lee", "active": False})], {"displayName": "A. Lee", "active": False}),
    ([op("replace", value={"active": "False"})], {"active": False}),
    ([op("replace", "name.familyName", "Smith")], {"name": {"givenName": "Ann", "familyName": "Smith"}}),
    ([op("remove", "name.givenName")], {"name": {"familyName": "Lee"}}),
    ([op("remove", "name")], {"name": None}),
    ([op("replace", "name", {"formatted": "Ann Lee"})],
     {"name": {"givenName": "Ann", "familyName": "Lee", "formatted": "Ann Lee"}}),
    ([op("replace", "userName", "Ann.Lee@Example.com")], {"userName": "Ann.Lee@Example.com"}),
    ([op("replace", "emails[type eq \"work\"].value", "ann@new.example.com")],
     {"emails": [{"value": "ann@new.example.com", "type": "work", "primary": True},
                 {"value": "ann@home.example.org", "type": "home"}]}),
    ([op("remove", "emails[type eq \"home\"]")],
     {"emails": [{"value": "ann@work.example.com", "type": "work", "primary": True}]}),
    ([op("remove", "emails[value co \"example\"]")], {"emails": None}),
    ([op("replace", "emails[type eq \"other\"].value", "ann@other.example.net")],  # Entra ID creates it
     {"emails": [{"value": "ann@work.example.com", "type": "work", "primary": True},
                 {"value": "ann@home.example.org", "type": "home"},
                 {"type": "other", "value": "ann@other.example.net"}]}),
    ([op("add", "emails", [{"value": "ANN@work.example.com", "type": "work"}])],  # no duplicate
     {"emails": [{"value": "ann@work.example.com", "type": "work", "primary": True},
                 {"value": "ann@home.example.org", "type": "home"}]}),
    ([op("add", "emails", [{"value": "ann@new.example.com", "type": "other"}])],
     {"emails": [{"value": "ann@work.example.com", "type": "work", "primary": True},
                 {"value": "ann@home.example.org", "type": "home"},
                 {"value": "ann@new.example.com", "type": "other"}]}),
    ([op("add", "emails", [{"value": "ann@new.example.com", "type": "other", "primary": True}])],  # one primary
     {"emails": [{"value": "ann@work.example.com", "type": "work", "primary": False},
                 {"value": "ann@home.example.org", "type": "home"},
                 {"value": "ann@new.example.com", "type": "other", "primary": True}]}),
    ([op("replace", "emails[type eq \"home\"].primary", True)],
     {"emails": [{"value": "ann@work.example.com", "type": "work", "primary": False},
                 {"value": "ann@home.example.org", "type": "home", "primary": True}]}),
    ([op("replace", "emails", [{"value": "only@example.com"}])], {"emails": [{"value": "only@example.com"}]}),
    ([op("remove", "emails", [{"value": "ann@home.example.org"}])],
     {"emails": [{"value": "ann@work.example.com", "type": "work", "primary": True}]}),
    ([op("add", "phoneNumbers", [{"value": "+1 555 0100", "type": "work"}])],
     {"phoneNumbers": [{"value": "+1 555 0100", "type": "work"}]}),
    ([op("replace", f"{ENTERPRISE}:department", "Ops")], {ENTERPRISE: {"department": "Ops", "employeeNumber": "100"}}),
    ([op("remove", f"{ENTERPRISE}:department")], {ENTERPRISE: {"employeeNumber": "100"}}),
    ([op("remove", f"{ENTERPRISE}:department"), op("remove", f"{ENTERPRISE}:employeeNumber")], {ENTERPRISE: None}),
    ([op("add", f"{ENTERPRISE}:manager", {"value": "boss-1"})],
     {ENTERPRISE: {"department": "R&D", "employeeNumber": "100", "manager": {"value": "boss-1"}}}),
    ([op("replace", f"{ENTERPRISE.upper()}:COSTCENTER", "4130")],
     {ENTERPRISE: {"department": "R&D", "employeeNumber": "100", "costCenter": "4130"}}),
    ([op("add", value={ENTERPRISE: {"division": "Parks"}})],
     {ENTERPRISE: {"department": "R&D", "employeeNumber": "100", "division": "Parks"}}),
    ([op("replace", value={f"{ENTERPRISE}:department": "Ops", "name.givenName": "Annie"})],
     {ENTERPRISE: {"department": "Ops", "employeeNumber": "100"}, "name": {"givenName": "Annie", "familyName": "Lee"}}),
    ([op("replace", value={"schemas": [USER, ENTERPRISE], "title": "Schemas ignored"})], {"title": "Schemas ignored"}),
    ([op("remove", "title"), op("add", "title", "Back")], {"title": "Back"}),
]


@pytest.mark.parametrize(("operations", "expected"), PATCHES)
def test_patch_applies_operations(api, ann, operations: list, expected: dict) -> None:
    patched = ok(api.ops(f"/Users/{ann['id']}", *operations))
    assert fetch(api, ann["id"]) == patched
    for name, value in expected.items():
        assert patched.get(name) == value, name
    untouched = set(ann) - set(expected) - {"meta", "schemas"}
    assert {k: patched.get(k) for k in untouched} == {k: ann[k] for k in untouched}
    assert (ENTERPRISE in patched["schemas"]) == (ENTERPRISE in patched)
    changed = {k: v for k, v in patched.items() if k != "meta"} != {k: v for k, v in ann.items() if k != "meta"}
    assert (patched["meta"]["version"] != ann["meta"]["version"]) == changed


def test_patch_same_id_in_value_is_no_change(api, ann) -> None:
    patched = ok(api.ops(f"/Users/{ann['id']}", op("replace", value={"id": ann["id"], "title": "Engineer"})))
    assert patched == ann


def test_patch_found_email_is_searchable_by_new_value(api, ann) -> None:
    ok(api.ops(f"/Users/{ann['id']}", op("replace", 'emails[type eq "work"].value', "moved@example.com")))
    for text in ('emails.value eq "MOVED@example.com"', 'emails[value eq "moved@example.com"]'):
        body = api.get("/Users?filter=" + quote(text)).get_json()
        assert [r["id"] for r in body["Resources"]] == [ann["id"]]
    old = api.get("/Users?filter=" + quote('emails.value eq "ann@work.example.com"')).get_json()
    assert old["totalResults"] == 0


@pytest.mark.parametrize(
    ("operations", "status", "scim_type"),
    [
        ([op("replace", "id", "another")], 400, "mutability"),
        ([op("replace", value={"id": "another"})], 400, "mutability"),
        ([op("replace", "meta.created", "2000-01-01T00:00:00Z")], 400, "mutability"),
        ([op("add", "groups", [{"value": "g-1"}])], 400, "mutability"),
        ([op("add", "roles", [{"value": "global-admin"}])], 400, "mutability"),
        ([op("replace", "favouriteColour", "blue")], 400, "invalidPath"),
        ([op("replace", "name.nickname", "x")], 400, "invalidPath"),
        ([op("replace", "emails[type eq \"work\"", "x")], 400, "invalidPath"),
        ([op("replace", "emails[type eq \"work\"].shoeSize", "x")], 400, "invalidPath"),
        ([op("replace", "title[value eq \"x\"]", "x")], 400, "invalidPath"),
        ([op("replace", f"{ENTERPRISE}:shoeSize", "x")], 400, "invalidPath"),
        ([op("replace", value={"shoeSize": 44})], 400, "invalidPath"),
        ([op("remove", "emails[type eq \"fax\"]")], 400, "noTarget"),
        ([op("remove")], 400, "noTarget"),
        ([op("replace", "active", "maybe")], 400, "invalidValue"),
        ([op("replace", "name.givenName", 7)], 400, "invalidValue"),
        ([op("replace", "emails", [{"value": "a@x.org", "primary": True}, {"value": "b@x.org", "primary": True}])],
         400, "invalidValue"),
        ([op("remove", "userName")], 400, "invalidValue"),
        ([op("replace", "userName", None)], 400, "invalidValue"),
        ([op("replace", "title", {"nested": "object"})], 400, "invalidValue"),
        ([op("move", "title", "x")], 400, "invalidSyntax"),
        ([op("add", "title")], 400, "invalidSyntax"),
        ([op("replace", "emails[shoeSize eq \"x\"].value", "x")], 400, "invalidFilter"),
    ],
)
def test_patch_invalid_operation_is_400_and_changes_nothing(api, ann, operations, status, scim_type) -> None:
    api.assert_error(api.ops(f"/Users/{ann['id']}", *operations), status, scim_type)
    assert fetch(api, ann["id"]) == ann


@pytest.mark.parametrize(
    "failing",
    [
        op("remove", 'emails[type eq "fax"]'),  # noTarget, found only while applying
        op("replace", "id", "another"),  # mutability
        op("remove", "userName"),  # required
        op("replace", "active", "maybe"),  # invalidValue
    ],
)
def test_patch_is_atomic_when_a_later_operation_fails(api, ann, failing: dict) -> None:
    response = api.ops(f"/Users/{ann['id']}", op("replace", "displayName", "Changed"),
                       op("add", "emails", [{"value": "new@example.com"}]), failing)
    assert response.status_code == 400, response.get_json()
    after = fetch(api, ann["id"])
    assert after == ann
    assert after["meta"]["version"] == ann["meta"]["version"]
    body = api.get("/Users?filter=" + quote('emails.value eq "new@example.com"')).get_json()
    assert body["totalResults"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"Operations": [op("replace", "title", "x")]},
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []},
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": {"op": "add"}},
        [op("replace", "title", "x")],
    ],
)
def test_patch_malformed_message_is_invalid_syntax(api, ann, body) -> None:
    api.assert_error(api.patch(f"/Users/{ann['id']}", body), 400, "invalidSyntax")
    assert fetch(api, ann["id"]) == ann


def test_patch_message_keys_and_urn_match_in_any_case(api, ann) -> None:
    body = {"SCHEMAS": ["urn:ietf:params:scim:api:messages:2.0:patchop"],
            "operations": [{"OP": "REPLACE", "PATH": "title", "VALUE": "Lead"}]}
    assert ok(api.patch(f"/Users/{ann['id']}", body))["title"] == "Lead"


def test_patch_unknown_user_is_404(api) -> None:
    api.assert_error(api.ops("/Users/no-such-id", op("replace", "title", "x")), 404)


def test_patch_username_to_another_users_is_409(api, ann) -> None:
    api.create_user("bob@example.com")
    api.assert_error(api.ops(f"/Users/{ann['id']}", op("replace", "userName", "Bob@example.com")), 409, "uniqueness")
    assert fetch(api, ann["id"]) == ann


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("attributes=title", {"schemas", "id", "title"}),
        ("attributes=name.familyName,userName", {"schemas", "id", "name", "userName"}),
        ("excludedAttributes=emails,name," + ENTERPRISE,
         {"schemas", "id", "userName", "externalId", "displayName", "title", "active"}),
    ],
)
def test_patch_response_honours_attribute_selection(api, ann, query: str, names: set) -> None:
    body = ok(api.ops(f"/Users/{ann['id']}?{query}", op("replace", "title", "Lead")))
    assert set(body) - {"meta"} == names
    assert fetch(api, ann["id"])["title"] == "Lead"


def test_patch_password_is_write_only_and_hashed(api, ann) -> None:
    patched = ok(api.ops(f"/Users/{ann['id']}", op("replace", "password", "n3w-Secret")))
    assert "password" not in patched
    row = User.get_by_id(ann["id"])
    assert password_matches(row.password_hash, "n3w-Secret") and "n3w-Secret" not in row.attributes
    assert patched["meta"]["version"] != ann["meta"]["version"]


# --- §3.6 DELETE --------------------------------------------------------------------------------------


def test_delete_is_204_without_body(api, ann) -> None:
    response = api.delete(f"/Users/{ann['id']}")
    assert response.status_code == 204
    assert response.data == b""


def test_delete_hides_user_from_every_read(api, ann) -> None:
    bob = api.create_user("bob@example.com")
    assert api.delete(f"/Users/{ann['id']}").status_code == 204
    api.assert_error(api.get(f"/Users/{ann['id']}"), 404)
    listed = api.get("/Users").get_json()
    assert listed["totalResults"] == 1 and [r["id"] for r in listed["Resources"]] == [bob["id"]]
    for text in ('userName eq "ann@example.com"', f'id eq "{ann["id"]}"', 'emails.value eq "ann@work.example.com"',
                 'not (userName eq "bob@example.com")', 'title pr'):
        found = api.get("/Users?filter=" + quote(text)).get_json()
        assert found["totalResults"] == 0 and found["Resources"] == [], text
    searched = api.post("/Users/.search", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                                           "filter": 'userName eq "ann@example.com"'}).get_json()
    assert searched["totalResults"] == 0


@pytest.mark.parametrize("method", ["DELETE", "PUT", "PATCH"])
def test_delete_then_write_is_404(api, ann, method: str) -> None:
    api.delete(f"/Users/{ann['id']}")
    bodies = {"PUT": {"userName": "ann@example.com"},
              "PATCH": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [op("replace", "title", "x")]}}
    api.assert_error(api.request(method, f"/Users/{ann['id']}", bodies.get(method)), 404)


def test_delete_drops_group_memberships(api, ann) -> None:
    group = api.create_group("Engineering", members=[ann["id"]])
    assert fetch(api, ann["id"])["groups"][0]["value"] == group["id"]
    api.delete(f"/Users/{ann['id']}")
    assert "members" not in api.get(f"/Groups/{group['id']}").get_json()


def test_delete_unknown_user_is_404(api) -> None:
    api.assert_error(api.delete("/Users/no-such-id"), 404)


def test_delete_keeps_the_data(api, ann) -> None:
    api.delete(f"/Users/{ann['id']}")
    row = User.get_by_id(ann["id"])
    assert row.deprovisioned_at is not None and row.user_name == "ann@example.com"


def test_passwords_are_hashed_before_the_request_takes_the_write_lock(api, ann, monkeypatch) -> None:
    """A write view runs in the write transaction: its passwords are hashed before it begins (web/http.before_lock)."""
    from skilljar_scim.store import models

    depths: list[int] = []
    real = passwords.hash_password
    monkeypatch.setattr(passwords, "hash_password",
                        lambda plain: depths.append(models.database.obj.transaction_depth()) or real(plain))
    created = api.create_user("pat@example.com", password="first-Pa55")
    ok(put(api, ann["id"], {"userName": "ann@example.com", "password": "second-Pa55"}))
    ok(api.ops(f"/Users/{ann['id']}", op("replace", "password", "third-Pa55")))
    assert depths == [0, 0, 0]
    assert password_matches(User.get_by_id(created["id"]).password_hash, "first-Pa55")
    assert password_matches(User.get_by_id(ann["id"]).password_hash, "third-Pa55")
    api.assert_error(api.ops(f"/Users/{ann['id']}", *[op("replace", "password", f"p{n}") for n in range(11)]),
                     400, "tooMany")
    assert depths == [0, 0, 0]  # refused before hashing anything


def test_create_and_replace_validate_the_body_before_the_request_takes_the_write_lock(api, ann, monkeypatch) -> None:
    """Checking a User document is the costly part of a create or PUT: other writers never wait on it."""
    from skilljar_scim.scim import resources
    from skilljar_scim.store import models

    depths: list[int] = []
    real = resources.normalise
    monkeypatch.setattr(resources, "normalise",
                        lambda *args: depths.append(models.database.obj.transaction_depth()) or real(*args))
    created = api.create_user("pat@example.com")
    ok(put(api, ann["id"], {"userName": "ann@example.com", "title": "Engineer"}))
    assert depths == [0, 0]
    assert User.get_by_id(created["id"]).user_name == "pat@example.com"
    assert "Engineer" in User.get_by_id(ann["id"]).attributes
    api.assert_error(api.post("/Users", {"schemas": [USER], "userName": 7}), 400, "invalidValue")
    assert depths == [0, 0, 0]  # refused before any transaction began


def test_create_works_out_what_it_stores_before_the_request_takes_the_write_lock(api, ann, monkeypatch) -> None:
    """A create's stored JSON, keys and derived columns need no store: only the writing waits for the lock.

    So do a PUT's when it sends `active`; without it, `active` is the stored user's, read under the lock.
    """
    from skilljar_scim.domain import users
    from skilljar_scim.store import models

    depths: list[int] = []
    real = users._columns
    monkeypatch.setattr(users, "_columns", lambda data: depths.append(models.database.obj.transaction_depth())
                        or real(data))
    created = api.create_user("Pat@Example.com", emails=[{"value": "Pat@Example.com", "primary": True}],
                              name={"givenName": "Pat", "familyName": "Lee"})
    assert depths == [0]
    row = User.get_by_id(created["id"])
    assert (row.user_name_key, row.display_name, row.primary_email, row.active) == (
        "pat@example.com", "Pat Lee", "Pat@Example.com", True)
    assert created == api.get(f"/Users/{created['id']}").get_json()
    ok(put(api, ann["id"], {"userName": "ann@example.com", "active": False}))  # it sends active: known
    assert depths == [0, 0] and User.get_by_id(ann["id"]).active is False
    ok(put(api, ann["id"], {"userName": "ann@example.com", "title": "x"}))  # it does not: the stored user's
    assert depths == [0, 0, 1] and User.get_by_id(ann["id"]).active is False
