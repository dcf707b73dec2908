"""OneLogin's provisioning traffic, replayed against the real app.

Request shapes are written from OneLogin's own pages:

- "Step 2. Implement RESTful SCIM APIs for Your App" (developers.onelogin.com/scim/
  implement-scim-api): the calls and their order: the initial connection (Get User by
  userName with a value known not to exist: an empty list, or 404, means the endpoint
  works), then per user Get User with userName filter, Create User, Get User by ID,
  Update User (PUT of the whole template), Get Groups, Create Group, Patch Group, Delete
  User, Get Users; bodies sent and expected as `application/json`.
- "Step 1. Define Your SCIM User Schema" (developers.onelogin.com/scim/define-user-schema)
  and OneLogin's knowledge-base article KB0013904 ("SCIM Provisioner with SAML (SCIM v2
  Enterprise)"): the body is the admin's SCIM JSON template with `{$parameters...}` and
  `{$user...}` filled in, so unset values arrive as "" and `schemas` may carry legacy
  URNs (`urn:scim:schemas:core:1.0`, `urn:scim:schemas:core:2.0`) and an extension object
  keyed by `urn:scim:schemas:extension:enterprise:1.0`; the v2 Enterprise template sends
  `manager` as `{"value", "displayName"}`.
- "Step 4. Test Your SCIM Implementation" (developers.onelogin.com/scim/test-your-scim):
  "When users are deleted in OneLogin": Delete, Suspend or Do Nothing.

Not shown in those pages, so modelled conservatively: Suspend is a PUT of the template
with `active: false`; Patch Group uses RFC 7644 member operations; the Update User PUT
may reach `/Users/{id}?` with an empty query string; a SCIM Base URL entered with a
trailing slash (as in OneLogin's examples) gives paths such as `/scim/v2//Users`.
"""

from __future__ import annotations

import pytest

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
NAME = "jane.doe@example.com"
LOOKUP = "/Users?filter=userName%20eq%20%22jane.doe%40example.com%22"


def _template(**changes) -> dict:
    """OneLogin's SCIM v2 Core template as it arrives, with one parameter left unset ("")."""
    return {
        "schemas": ["urn:scim:schemas:core:2.0", USER],
        "userName": NAME,
        "name": {"givenName": "Jane", "familyName": "Doe", "formatted": "Jane Doe"},
        "emails": [{"value": NAME, "type": "work", "primary": True}],
        "title": "",
        "displayName": "Jane Doe",
        **changes,
    }


def _enterprise_template(**changes) -> dict:
    """The SCIM v2 Enterprise template (KB0013904), manager filled from external_manager_id."""
    return _template(
        schemas=[USER, ENTERPRISE],
        title="Engineer",
        **{ENTERPRISE: {"organization": "Acme", "division": "", "department": "R&D",
                        "manager": {"value": "{manager}", "displayName": "Mark Boss"}}},
        **changes,
    )


@pytest.fixture
def provisioned(onelogin) -> dict:
    """A user given access: lookup by userName (none), create."""
    assert onelogin.listing(LOOKUP)["totalResults"] == 0
    return onelogin.send("POST", "/Users", _template(), 201)


@pytest.fixture
def group(onelogin) -> dict:
    return onelogin.send("POST", "/Groups", {"schemas": [GROUP], "displayName": "Sales"}, 201)


# --- connection and users ----------------------------------------------------------------


def test_onelogin_initial_connection_gets_an_empty_list(onelogin) -> None:
    body = onelogin.listing("/Users?filter=userName%20eq%20%22onelogin-connection-check%40example.com%22")
    assert (body["totalResults"], body["Resources"]) == (0, [])


def test_onelogin_create_user_from_the_template(onelogin, provisioned) -> None:
    assert provisioned["userName"] == NAME and provisioned["active"] is True
    assert provisioned["schemas"] == [USER] and "title" not in provisioned
    assert provisioned["name"]["formatted"] == "Jane Doe"
    assert onelogin.send("GET", f"/Users/{provisioned['id']}", status=200) == provisioned
    assert onelogin.listing(LOOKUP)["Resources"][0]["id"] == provisioned["id"]


def test_onelogin_legacy_urns_and_their_extension_object_are_ignored(onelogin) -> None:
    body = _template(schemas=["urn:scim:schemas:core:1.0", "urn:scim:schemas:extension:enterprise:1.0"],
                     **{"urn:scim:schemas:extension:enterprise:1.0": {
                         "department": "R&D", "manager": {"managerId": "", "displayName": " "}}})
    made = onelogin.send("POST", "/Users", body, 201)
    assert made["schemas"] == [USER] and ENTERPRISE not in made


def test_onelogin_enterprise_template_stores_manager_as_a_reference(onelogin, api) -> None:
    boss = api.create_user("mark.boss@example.com")["id"]
    body = _enterprise_template()
    body[ENTERPRISE]["manager"]["value"] = boss
    made = onelogin.send("POST", "/Users", body, 201)
    assert made[ENTERPRISE] == {"organization": "Acme", "department": "R&D", "manager": {"value": boss}}
    assert made["title"] == "Engineer" and ENTERPRISE in made["schemas"]


def test_onelogin_update_user_by_put_of_the_template(onelogin, provisioned) -> None:
    path = f"/Users/{provisioned['id']}?"  # OneLogin's Update User URL, empty query and all
    updated = onelogin.send("PUT", path, _template(title="Account Executive", id=None,
                                                   meta={"resourceType": "User"}), 200)
    assert updated["title"] == "Account Executive" and updated["id"] == provisioned["id"]
    # The template has no `active`: a PUT without it leaves the account active.
    assert updated["active"] is True
    # A parameter emptied in OneLogin arrives as "": the value is cleared.
    assert "title" not in onelogin.send("PUT", path, _template(), 200)


def test_onelogin_update_with_an_unchanged_template_keeps_the_version(onelogin, provisioned) -> None:
    again = onelogin.send("PUT", f"/Users/{provisioned['id']}?", _template(), 200)
    assert again["meta"]["version"] == provisioned["meta"]["version"]


def test_onelogin_suspend_and_restore_by_put(onelogin, provisioned) -> None:
    path = f"/Users/{provisioned['id']}?"
    suspended = onelogin.send("PUT", path, _template(active=False), 200)
    assert suspended["active"] is False
    assert onelogin.listing(LOOKUP)["Resources"][0]["active"] is False
    # A later template update without `active` does not quietly reactivate the account.
    assert onelogin.send("PUT", path, _template(title="x"), 200)["active"] is False
    assert onelogin.send("PUT", path, _template(active=True), 200)["active"] is True


def test_onelogin_password_is_never_echoed(onelogin) -> None:
    made = onelogin.send("POST", "/Users", _template(password="S3cret!pass"), 201)
    assert "password" not in made
    assert "password" not in onelogin.send("GET", f"/Users/{made['id']}", status=200)


def test_onelogin_delete_user_then_the_returning_user_gets_the_same_account(onelogin, provisioned) -> None:
    assert onelogin.send("DELETE", f"/Users/{provisioned['id']}", status=204) is None
    assert onelogin.send("GET", f"/Users/{provisioned['id']}").status_code == 404
    assert onelogin.listing(LOOKUP)["totalResults"] == 0
    back = onelogin.send("POST", "/Users", _template(), 201)
    assert back["id"] == provisioned["id"] and back["active"] is True


def test_onelogin_get_users_pages_and_hides_deleted_users(onelogin, api, provisioned) -> None:
    gone = api.create_user("gone@example.com")
    api.delete(f"/Users/{gone['id']}")
    for n in range(3):
        api.create_user(f"user{n}@example.com")
    body = onelogin.listing("/Users?startIndex=1&count=2&")
    assert (body["totalResults"], body["itemsPerPage"]) == (4, 2)
    rest = onelogin.listing("/Users?count=2&startIndex=3")
    ids = [u["id"] for u in body["Resources"] + rest["Resources"]]
    assert len(set(ids)) == 4 and gone["id"] not in ids


@pytest.mark.parametrize("query", [
    "filter=userName+eq+%22jane.doe%40example.com%22",
    "filter=userName%20eq%20%22JANE.DOE%40example.com%22&",
    "filter=userName%20eq%20%22jane.doe%40example.com%22&startIndex=1&count=100&",
    "startIndex=%201&count=100%20&filter=userName+eq+%22jane.doe%40example.com%22",
])
def test_onelogin_query_string_variants_find_the_user(onelogin, provisioned, query) -> None:
    assert [u["id"] for u in onelogin.listing(f"/Users?{query}")["Resources"]] == [provisioned["id"]]


def test_onelogin_base_url_entered_with_a_trailing_slash_still_works(onelogin, group) -> None:
    """OneLogin's examples show the SCIM Base URL as `https://host/scim/v2/`: paths get `//`."""
    assert onelogin.listing("//Users?filter=userName%20eq%20%22jane.doe%40example.com%22")["totalResults"] == 0
    made = onelogin.send("POST", "//Users", _template(), 201)
    assert onelogin.send("PUT", f"//Users/{made['id']}?", _template(title="CEO"), 200)["title"] == "CEO"
    onelogin.patch_ops(f"//Groups/{group['id']}", {"op": "add", "path": "members", "value": [{"value": made["id"]}]},
                       status=204)
    assert [m["value"] for m in onelogin.send("GET", f"//Groups/{group['id']}", status=200)["members"]] == [made["id"]]
    assert onelogin.send("DELETE", f"//Users/{made['id']}", status=204) is None


# --- groups ----------------------------------------------------------------------------------


def test_onelogin_get_groups_lists_what_can_be_assigned(onelogin, group) -> None:
    body = onelogin.listing("/Groups")
    assert [(g["id"], g["displayName"]) for g in body["Resources"]] == [(group["id"], "Sales")]


def test_onelogin_patch_group_adds_and_removes_members(onelogin, api, group, provisioned) -> None:
    other = api.create_user("other@example.com")["id"]
    path = f"/Groups/{group['id']}"
    onelogin.patch_ops(path, {"op": "add", "path": "members",
                              "value": [{"value": provisioned["id"]}, {"value": other}]}, status=204)
    onelogin.patch_ops(path, {"op": "add", "path": "members", "value": [{"value": provisioned["id"]}]}, status=204)
    members = onelogin.send("GET", path, status=200)["members"]
    assert sorted(m["value"] for m in members) == sorted([provisioned["id"], other])
    onelogin.patch_ops(path, {"op": "remove", "path": "members", "value": [{"value": other}]}, status=204)
    assert [m["value"] for m in onelogin.send("GET", path, status=200)["members"]] == [provisioned["id"]]
    onelogin.patch_ops(path, {"op": "remove", "path": f'members[value eq "{provisioned["id"]}"]'}, status=204)
    assert "members" not in onelogin.send("GET", path, status=200)


def test_onelogin_rename_and_delete_group(onelogin, group) -> None:
    path = f"/Groups/{group['id']}"
    assert onelogin.patch_ops(path, {"op": "replace", "value": {"displayName": "Sales EMEA"}}, status=204) is None
    assert onelogin.send("GET", path, status=200)["displayName"] == "Sales EMEA"
    assert onelogin.send("DELETE", path, status=204) is None
    assert onelogin.listing("/Groups")["totalResults"] == 0


def test_onelogin_group_rule_grants_the_mapped_role(onelogin, map_role, event_actions, group, provisioned) -> None:
    map_role("sales", "analytics-limited")  # mappings match displayName case-insensitively
    onelogin.patch_ops(f"/Groups/{group['id']}", {"op": "add", "path": "members", "value": [{"value": provisioned["id"]}]},
                       status=204)
    user = onelogin.send("GET", f"/Users/{provisioned['id']}", status=200)
    assert [r["value"] for r in user["roles"]] == ["analytics-limited"]
    onelogin.send("DELETE", f"/Users/{provisioned['id']}", status=204)
    actions = event_actions(user=provisioned["id"])
    assert actions[0] == "user.created" and actions[-1] in ("user.deprovisioned", "role.revoked")
    assert {"membership.added", "role.granted", "membership.removed", "role.revoked"} <= set(actions)


def test_onelogin_setup_guide_is_linked_and_its_commands_exist(check_guide) -> None:
    check_guide("onelogin.md")
