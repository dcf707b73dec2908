"""Okta's provisioning traffic, replayed against the real app.

Request shapes (method, path, query string, body) are written from Okta's own pages:

- "SCIM 2.0 Protocol Reference" (developer.okta.com/docs/reference/scim/scim-20/): the
  userName lookup `?filter=userName%20eq%20"..."&startIndex=1&count=100`, Create User
  (with `password`, `groups: []`, `locale`), Retrieve Users/Groups paged with
  `startIndex=1&count=100`, Update User by PUT of the whole user (`id`, `meta`, `groups`,
  `emails[].display`), deactivation by PATCH `{"op": "replace", "value": {"active": false}}`
  (OIN) or by PUT with `active: false` (App Integration Wizard apps), Create Group with
  `members: []`, group rename by PATCH whose value carries the group's `id`, membership by
  `remove members[value eq "..."]` + `add members`, full push by `replace members`, and
  DELETE of a pushed group. Okta never sends DELETE for users.
- "Test your SCIM API" (developer.okta.com/docs/guides/scim-provisioning-integration-prepare/
  main/#test-your-scim-api): the Okta SCIM 2.0 SPEC test suite (first page with
  `count=1&startIndex=1`, unknown userName -> 200 and totalResults 0, unknown id -> 404
  with a SCIM error body, create, duplicate -> 409, upper-cased userName lookup, GET
  /Groups), sent as `application/scim+json; charset=utf-8` with `+` for spaces.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
NAME = "test.user@okta.local"
LOOKUP = "/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100"


def _okta_user(**changes) -> dict:
    """The Create User body of Okta's protocol reference."""
    return {
        "schemas": [USER],
        "userName": NAME,
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": True, "value": NAME, "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
        **changes,
    }


def _put_body(user_id: str, **changes) -> dict:
    """The whole user Okta PUTs after reading it back (protocol reference, Update User)."""
    return {
        "schemas": [USER],
        "id": user_id,
        "userName": NAME,
        "name": {"givenName": "Another", "middleName": "Excited", "familyName": "User"},
        "emails": [{"primary": True, "value": NAME, "type": "work", "display": NAME}],
        "active": True,
        "groups": [],
        "meta": {"resourceType": "User"},
        **changes,
    }


@pytest.fixture
def created(okta) -> dict:
    """Assign a user to the app: look up by userName (no match), then create."""
    found = okta.listing(LOOKUP)
    assert (found["totalResults"], found["Resources"]) == (0, [])
    return okta.send("POST", "/Users", _okta_user(), 201)


@pytest.fixture
def pushed_group(okta) -> dict:
    """Push a group: Okta creates it empty (protocol reference, Create Groups)."""
    body = {"schemas": [GROUP], "displayName": "Test SCIMv2", "members": []}
    return okta.send("POST", "/Groups", body, 201)


def _member_ids(okta, group_id: str) -> set[str]:
    return {m["value"] for m in okta.send("GET", f"/Groups/{group_id}", status=200).get("members", [])}


# --- Users -------------------------------------------------------------------------------


def test_okta_user_lookup_with_no_match_is_an_empty_list_response(okta) -> None:
    body = okta.listing(LOOKUP)
    assert (body["totalResults"], body["itemsPerPage"], body["startIndex"], body["Resources"]) == (0, 0, 1, [])


def test_okta_create_user_returns_it_without_the_password(okta, created) -> None:
    assert created["userName"] == NAME and created["active"] is True
    assert created["name"] == {"givenName": "Test", "familyName": "User"}
    assert created["externalId"] == "00ujl29u0le5T6Aj10h7" and created["locale"] == "en-US"
    assert "password" not in created and "groups" not in created
    assert okta.send("GET", f"/Users/{created['id']}", status=200) == created


def test_okta_lookup_finds_the_created_user(okta, created) -> None:
    body = okta.listing(LOOKUP)
    assert body["totalResults"] == 1 and body["Resources"][0]["id"] == created["id"]


def test_okta_create_existing_user_is_409_uniqueness(okta, api, created) -> None:
    response = okta.send("POST", "/Users", _okta_user())
    api.assert_error(response, 409, "uniqueness")


def test_okta_update_by_put_of_the_whole_user(okta, created) -> None:
    okta.send("GET", f"/Users/{created['id']}", status=200)
    updated = okta.send("PUT", f"/Users/{created['id']}", _put_body(created["id"]), 200)
    assert updated["name"] == {"givenName": "Another", "middleName": "Excited", "familyName": "User"}
    assert updated["emails"] == [{"primary": True, "value": NAME, "type": "work", "display": NAME}]
    assert updated["id"] == created["id"] and updated["active"] is True


def test_okta_deactivate_and_reactivate_by_patch(okta, created) -> None:
    path = f"/Users/{created['id']}"
    off = okta.patch_ops(path, {"op": "replace", "value": {"active": False}})
    assert off["active"] is False
    # A deactivated user is still found: Okta looks it up and reactivates it.
    found = okta.listing(LOOKUP)
    assert found["totalResults"] == 1 and found["Resources"][0]["active"] is False
    assert okta.send("GET", path, status=200)["active"] is False
    on = okta.patch_ops(path, {"op": "replace", "value": {"active": True}})
    assert on["active"] is True and on["id"] == created["id"]


def test_okta_aiw_app_deactivates_and_reactivates_by_put(okta, created) -> None:
    path = f"/Users/{created['id']}"
    off = okta.send("PUT", path, _put_body(created["id"], active=False), 200)
    assert off["active"] is False
    assert okta.listing(LOOKUP)["Resources"][0]["active"] is False
    on = okta.send("PUT", path, _put_body(created["id"], active=True), 200)
    assert on["active"] is True


def test_okta_password_sync_by_patch_is_never_echoed(okta, created) -> None:
    body = okta.patch_ops(f"/Users/{created['id']}", {"op": "replace", "value": {"password": "n3wPassw0rd"}})
    assert "password" not in body
    assert "password" not in okta.send("GET", f"/Users/{created['id']}", status=200)


def test_okta_import_pages_users_with_start_index_and_count(okta, api) -> None:
    for n in range(5):
        api.create_user(f"user{n}@okta.local")
    first = okta.listing("/Users?startIndex=1&count=2")
    second = okta.listing("/Users?startIndex=3&count=2")
    assert (first["totalResults"], first["itemsPerPage"], second["startIndex"]) == (5, 2, 3)
    names = [r["userName"] for r in first["Resources"] + second["Resources"]]
    assert len(set(names)) == 4
    assert okta.listing("/Users?startIndex=1&count=100")["itemsPerPage"] == 5


def test_okta_user_removed_from_the_app_then_reassigned_keeps_its_account(okta, created) -> None:
    """Okta never DELETEs: unassigning deactivates, reassigning finds and reactivates."""
    path = f"/Users/{created['id']}"
    okta.patch_ops(path, {"op": "replace", "value": {"active": False}})
    found = okta.listing(LOOKUP)["Resources"]
    assert [u["id"] for u in found] == [created["id"]]
    assert okta.patch_ops(path, {"op": "replace", "value": {"active": True}})["active"] is True


def test_okta_returning_user_after_deletion_gets_the_same_account(okta, api, created) -> None:
    api.delete(f"/Users/{created['id']}")  # deprovisioned here (Okta itself never deletes)
    assert okta.listing(LOOKUP)["totalResults"] == 0
    again = okta.send("POST", "/Users", _okta_user(), 201)
    assert again["id"] == created["id"] and again["active"] is True


# --- The Okta SCIM 2.0 SPEC test ("Test your SCIM API") --------------------------------


def test_okta_spec_suite_runs_clean(api, okta) -> None:
    """The SPEC suite's requests in order, as the Runscope/Postman collection sends them."""
    okta.content_type = "application/scim+json; charset=utf-8"
    okta.headers = {"Accept": "application/scim+json", "Accept-Charset": "utf-8"}
    api.create_user("existing@example.com", name={"givenName": "Ex", "familyName": "Isting"},
                    emails=[{"value": "existing@example.com", "type": "work", "primary": True}])
    first = okta.listing("/Users?count=1&startIndex=1")
    entity = first["Resources"][0]
    assert entity["id"] and entity["name"]["familyName"] and entity["emails"][0]["value"]
    assert okta.send("GET", f"/Users/{entity['id']}", status=200)["id"] == entity["id"]
    random_name = "Runscope300Hfluaklab151@example.com"
    query = urlencode({"filter": f'userName eq "{random_name}"'})  # `+` for spaces
    assert okta.listing(f"/Users?{query}")["totalResults"] == 0
    missing = okta.send("GET", "/Users/010101001010101011001010101011")
    body = api.assert_error(missing, 404)
    assert body["schemas"] == [ERROR]
    new = {"schemas": [USER], "userName": random_name, "active": True,
           "name": {"givenName": "Runscope300", "familyName": "Hfluaklab151"},
           "emails": [{"primary": True, "value": random_name, "type": "work"}],
           "displayName": "Runscope300 Hfluaklab151"}
    made = okta.send("POST", "/Users", new, 201)
    assert made["active"] is True and made["schemas"] == [USER] and made["userName"] == random_name
    assert okta.send("GET", f"/Users/{made['id']}", status=200)["name"]["givenName"] == "Runscope300"
    api.assert_error(okta.send("POST", "/Users", new), 409, "uniqueness")
    upper = urlencode({"filter": f'userName eq "{random_name.upper()}"'})
    assert [u["id"] for u in okta.listing(f"/Users?{upper}")["Resources"]] == [made["id"]]
    assert okta.listing("/Groups")["totalResults"] == 0


# --- Groups (Group Push) -----------------------------------------------------------------


def test_okta_push_group_then_list_and_read_it(okta, pushed_group) -> None:
    assert pushed_group["displayName"] == "Test SCIMv2" and "members" not in pushed_group
    listed = okta.listing("/Groups?startIndex=1&count=100")
    assert [g["id"] for g in listed["Resources"]] == [pushed_group["id"]]
    assert okta.send("GET", f"/Groups/{pushed_group['id']}", status=200)["displayName"] == "Test SCIMv2"


def test_okta_rename_sends_the_group_id_in_the_value(okta, pushed_group) -> None:
    path = f"/Groups/{pushed_group['id']}"
    okta.patch_ops(path, {"op": "replace", "value": {"id": pushed_group["id"], "displayName": "Test SCIMv20"}}, status=204)
    renamed = okta.send("GET", path, status=200)
    assert renamed["displayName"] == "Test SCIMv20" and renamed["id"] == pushed_group["id"]
    # Okta repeats the rename with every membership update: an unchanged name is fine.
    okta.patch_ops(path, {"op": "replace", "value": {"id": pushed_group["id"], "displayName": "Test SCIMv20"}}, status=204)
    assert okta.send("GET", path, status=200)["displayName"] == "Test SCIMv20"


def test_okta_membership_remove_and_add_in_one_patch(okta, api, pushed_group, created) -> None:
    other = api.create_user("other@okta.local")
    path = f"/Groups/{pushed_group['id']}"
    okta.patch_ops(path, {"op": "add", "path": "members", "value": [{"value": other["id"], "display": "other@okta.local"}]},
                   status=204)
    okta.patch_ops(
        path,
        {"op": "remove", "path": f'members[value eq "{other["id"]}"]'},
        {"op": "add", "path": "members", "value": [{"value": created["id"], "display": NAME}]},
        status=204,
    )
    assert _member_ids(okta, pushed_group["id"]) == {created["id"]}
    # Adding a member already there is a no-op.
    okta.patch_ops(path, {"op": "add", "path": "members", "value": [{"value": created["id"], "display": NAME}]}, status=204)
    assert _member_ids(okta, pushed_group["id"]) == {created["id"]}


def test_okta_full_push_replaces_the_members(okta, api, pushed_group, created) -> None:
    others = [api.create_user(f"m{n}@okta.local")["id"] for n in range(3)]
    path = f"/Groups/{pushed_group['id']}"
    okta.patch_ops(path, {"op": "add", "path": "members", "value": [{"value": i} for i in others]}, status=204)
    okta.patch_ops(path, {"op": "replace", "path": "members",
                          "value": [{"value": created["id"], "display": NAME}, {"value": others[0], "display": "m0"}]},
                   status=204)
    assert _member_ids(okta, pushed_group["id"]) == {created["id"], others[0]}


def test_okta_aiw_app_updates_a_group_by_put(okta, pushed_group, created) -> None:
    body = {"schemas": [GROUP], "id": pushed_group["id"], "displayName": "Test SCIMv2",
            "members": [{"value": created["id"], "display": NAME}]}
    updated = okta.send("PUT", f"/Groups/{pushed_group['id']}", body, 200)
    assert [m["value"] for m in updated["members"]] == [created["id"]]


def test_okta_unlink_pushed_group_deletes_it(okta, pushed_group, created) -> None:
    okta.patch_ops(f"/Groups/{pushed_group['id']}", {"op": "add", "path": "members", "value": [{"value": created["id"]}]},
                   status=204)
    assert okta.send("DELETE", f"/Groups/{pushed_group['id']}", status=204) is None
    assert okta.send("GET", f"/Groups/{pushed_group['id']}").status_code == 404
    assert okta.send("GET", f"/Users/{created['id']}", status=200)["active"] is True


def test_okta_pushed_group_grants_its_mapped_role(okta, map_role, event_actions, pushed_group, created) -> None:
    map_role("Test SCIMv2", "api-admin")
    okta.patch_ops(f"/Groups/{pushed_group['id']}", {"op": "add", "path": "members", "value": [{"value": created["id"]}]},
                   status=204)
    user = okta.send("GET", f"/Users/{created['id']}", status=200)
    assert [r["value"] for r in user["roles"]] == ["api-admin"]
    assert user["groups"][0]["display"] == "Test SCIMv2"
    okta.patch_ops(f"/Users/{created['id']}", {"op": "replace", "value": {"active": False}})
    assert "roles" not in okta.send("GET", f"/Users/{created['id']}", status=200)
    actions = event_actions(user=created["id"])
    assert actions[:1] == ["user.created"] and "user.deactivated" in actions
    assert {"role.granted", "role.revoked"} <= set(event_actions())


def test_okta_setup_guide_is_linked_and_its_commands_exist(check_guide) -> None:
    check_guide("okta.md")
