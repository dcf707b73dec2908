"""Microsoft Entra ID's provisioning traffic, replayed against the real app.

Request shapes are written from Microsoft's own pages:

- "Tutorial: Develop and plan provisioning for a SCIM endpoint in Microsoft Entra ID"
  (learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups):
  Test Connection (a userName that does not exist must give 200 and an empty
  ListResponse), Create User (enterprise URN, `meta`, `roles: []`; Example 2 with nulls
  and the malformed `...enterprise:2.0User` URN), Get User, Get User by query (by
  `userName` and by `externalId`), Update User [Multi-valued] (`Replace`
  `emails[type eq "work"].value`), [Single-valued] (`Replace userName`), Disable User,
  Delete User, Example 5 (manager as `[{"$ref", "value"}]`), Create Group (with the
  `http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group` URN), Get
  Group and Get Group by displayName with `excludedAttributes=members`, Update Group
  [Non-member attributes] / [Add Members] / [Remove Members], Delete Group, and the
  attribute table (`phoneNumbers[type eq "mobile"].value`, `addresses[type eq
  "work"].formatted`, enterprise `employeeNumber`, `manager`).
- "Known issues and resolutions with SCIM 2.0 protocol compliance of the Microsoft Entra
  user provisioning service" (.../application-provisioning-config-problem-scim-compatibility):
  the requests sent without and with the `aadOptscim062020` flag: `active` as "False",
  `Add` of a single-valued string, several `Replace` operations versus one path-less
  `replace` whose value has dotted and extension-URN keys, and member removal as
  `path: "members"` with a value list versus `members[value eq "..."]`.

Entra puts `+` for spaces in the filter (as in Microsoft's SCIM validator traffic) and
joins conditions with `and`; it only uses `eq` and `and`.
"""

from __future__ import annotations

import uuid

import pytest

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ADSCIM_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
USER_NAME = "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee"
EXTERNAL_ID = "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"
WORK_EMAIL = "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"


def _q(value: str) -> str:
    """Quote a filter value the way Entra's requests put it in the URL: `%22value%22`."""
    return "%22" + value.replace("@", "%40") + "%22"


def _by_user_name(name: str) -> str:
    return f"/Users?filter=userName+eq+{_q(name)}"


def _create_body() -> dict:
    """The Create User request of the tutorial."""
    return {
        "schemas": [USER, ENTERPRISE],
        "externalId": EXTERNAL_ID,
        "userName": USER_NAME,
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": WORK_EMAIL}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
    }


@pytest.fixture
def user(entra) -> dict:
    """Match by userName (no result), then create."""
    assert entra.listing(_by_user_name(USER_NAME))["totalResults"] == 0
    return entra.send("POST", "/Users", _create_body(), 201)


@pytest.fixture
def group(entra) -> dict:
    """The tutorial's Create Group: created empty, with Entra's ADSCIM schema URN."""
    body = {"schemas": [GROUP, ADSCIM_GROUP], "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName", "meta": {"resourceType": "Group"}}
    return entra.send("POST", "/Groups", body, 201)


def _members(entra, group_id: str) -> set[str]:
    return {m["value"] for m in entra.send("GET", f"/Groups/{group_id}", status=200).get("members", [])}


# --- Test Connection and matching ---------------------------------------------------------


@pytest.mark.parametrize("attribute", ["userName", "externalId"])
def test_entra_test_connection_gets_200_and_an_empty_list(entra, attribute) -> None:
    body = entra.listing(f"/Users?filter={attribute}+eq+{_q(str(uuid.uuid4()))}")
    assert (body["totalResults"], body["Resources"], body["startIndex"]) == (0, [], 1)


def test_entra_create_user_then_get_it(entra, user) -> None:
    assert user["userName"] == USER_NAME and user["externalId"] == EXTERNAL_ID
    assert user["active"] is True and user["emails"][0]["value"] == WORK_EMAIL
    assert "roles" not in user and user["meta"]["resourceType"] == "User"
    assert entra.send("GET", f"/Users/{user['id']}", status=200)["id"] == user["id"]


def test_entra_get_unknown_user_is_404_with_a_scim_error(entra, api) -> None:
    api.assert_error(entra.send("GET", "/Users/5171a35d82074e068ce2"), 404)


def test_entra_create_user_example_2_with_nulls_and_a_malformed_urn(entra) -> None:
    body = {
        "schemas": [USER, "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
        "externalId": "jyoung", "userName": "jyoung@testuser.com", "active": True,
        "addresses": None, "displayName": "Joy Young",
        "emails": [{"type": "work", "value": "jyoung@Contoso.com", "primary": True}],
        "meta": {"resourceType": "User"}, "name": {"familyName": "Young", "givenName": "Joy"},
        "phoneNumbers": None, "preferredLanguage": None, "title": None, "department": None, "manager": None,
    }
    made = entra.send("POST", "/Users", body, 201)
    assert made["displayName"] == "Joy Young"
    assert not {"addresses", "phoneNumbers", "preferredLanguage", "title"} & set(made)


@pytest.mark.parametrize("query", [
    f"userName+eq+{_q(USER_NAME)}",
    f"externalId+eq+{_q(EXTERNAL_ID)}",
    f"userName+eq+{_q(USER_NAME)}+and+externalId+eq+{_q(EXTERNAL_ID)}",
    f"emails[type+eq+%22work%22].value+eq+{_q(WORK_EMAIL)}",
    f"userName%20eq%20{_q(USER_NAME.upper())}",
])
def test_entra_matching_queries_find_the_user(entra, user, query) -> None:
    body = entra.listing(f"/Users?filter={query}")
    assert [r["id"] for r in body["Resources"]] == [user["id"]]


def test_entra_and_filter_with_a_wrong_external_id_matches_nothing(entra, user) -> None:
    body = entra.listing(f"/Users?filter=userName+eq+{_q(USER_NAME)}+and+externalId+eq+{_q('nope')}")
    assert body["totalResults"] == 0


# --- Updating users --------------------------------------------------------------------------


def test_entra_update_multi_valued_properties(entra, user) -> None:
    body = entra.patch_ops(
        f"/Users/{user['id']}",
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "updatedEmail@microsoft.com"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
    )
    assert body["emails"] == [{"value": "updatedEmail@microsoft.com", "type": "work", "primary": True}]
    assert body["name"]["familyName"] == "updatedFamilyName" and body["name"]["givenName"] == "givenName"


def test_entra_update_single_valued_user_name(entra, user) -> None:
    new = "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    body = entra.patch_ops(f"/Users/{user['id']}", {"op": "Replace", "path": "userName", "value": new})
    assert body["userName"] == new
    assert entra.listing(_by_user_name(new))["Resources"][0]["id"] == user["id"]


def test_entra_replace_several_attributes_without_the_flag(entra, user) -> None:
    body = entra.patch_ops(
        f"/Users/{user['id']}",
        {"op": "Replace", "path": "displayName", "value": "Pvlo"},
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "TestBcwqnm@test.microsoft.com"},
        {"op": "Replace", "path": "name.givenName", "value": "Gtfd"},
        {"op": "Replace", "path": "name.familyName", "value": "Pkqf"},
        {"op": "Replace", "path": "externalId", "value": "Eqpj"},
        {"op": "Replace", "path": f"{ENTERPRISE}:employeeNumber", "value": "Eqpj"},
    )
    assert (body["displayName"], body["name"]["givenName"], body["externalId"]) == ("Pvlo", "Gtfd", "Eqpj")
    assert body[ENTERPRISE] == {"employeeNumber": "Eqpj"} and ENTERPRISE in body["schemas"]


def test_entra_replace_several_attributes_with_the_flag(entra, user) -> None:
    body = entra.patch_ops(
        f"/Users/{user['id']}",
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "TestMhvaes@test.microsoft.com"},
        {"op": "replace", "value": {"displayName": "Bjfe", "name.givenName": "Kkom", "name.familyName": "Unua",
                                    f"{ENTERPRISE}:employeeNumber": "Aklq"}},
    )
    assert body["emails"][0]["value"] == "TestMhvaes@test.microsoft.com"
    assert body["name"] == {"formatted": "givenName familyName", "givenName": "Kkom", "familyName": "Unua"}
    assert (body["displayName"], body[ENTERPRISE]["employeeNumber"]) == ("Bjfe", "Aklq")


@pytest.mark.parametrize("op", ["Add", "add"])
def test_entra_add_a_single_valued_string(entra, user, op) -> None:
    body = entra.patch_ops(f"/Users/{user['id']}", {"op": op, "path": "nickName", "value": "Babs"})
    assert body["nickName"] == "Babs"


@pytest.mark.parametrize("op", ["Add", "Replace", "add", "replace"])
@pytest.mark.parametrize(("path", "value", "element"), [
    ('emails[type eq "work"].value', "new@testuser.com", {"type": "work", "value": "new@testuser.com"}),
    ('addresses[type eq "work"].formatted', "1 Main St, Springfield",
     {"type": "work", "formatted": "1 Main St, Springfield"}),
    ('phoneNumbers[type eq "mobile"].value', "+1 555 0100", {"type": "mobile", "value": "+1 555 0100"}),
])
def test_entra_value_filtered_path_creates_the_missing_element(entra, api, op, path, value, element) -> None:
    bare = api.create_user("bare@testuser.com")
    attribute = path.split("[")[0]
    body = entra.patch_ops(f"/Users/{bare['id']}", {"op": op, "path": path, "value": value})
    assert body[attribute] == [element]
    # Sent again (Entra retries), it updates that element instead of adding another.
    again = entra.patch_ops(f"/Users/{bare['id']}", {"op": op, "path": path, "value": value})
    assert again[attribute] == [element]
    changed = entra.patch_ops(f"/Users/{bare['id']}", {"op": op, "path": path, "value": "changed"})
    assert [e for e in changed[attribute] if e["type"] == element["type"]] == [
        {**element, path.rsplit(".", 1)[1]: "changed"}]


def test_entra_value_filtered_path_updates_the_matching_element_only(entra, user) -> None:
    body = entra.patch_ops(f"/Users/{user['id']}",
                           {"op": "Add", "path": 'emails[type eq "other"].value', "value": "alias@testuser.com"},
                           {"op": "Replace", "path": 'addresses[type eq "work"].postalCode', "value": "98052"})
    assert body["emails"] == [{"value": WORK_EMAIL, "type": "work", "primary": True},
                              {"type": "other", "value": "alias@testuser.com"}]
    assert body["addresses"] == [{"type": "work", "postalCode": "98052"}]


def test_entra_null_and_empty_values_clear_attributes(entra, user) -> None:
    path = f"/Users/{user['id']}"
    entra.patch_ops(path, {"op": "Add", "value": {"title": "Boss", "nickName": "B", "preferredLanguage": "en"}})
    body = entra.patch_ops(path, {"op": "Replace", "value": {"title": None}},
                           {"op": "Replace", "path": "nickName", "value": ""},
                           {"op": "Remove", "path": "preferredLanguage"})
    assert not {"title", "nickName", "preferredLanguage"} & set(body)


def test_entra_work_email_is_created_when_the_user_has_none(entra, api) -> None:
    bare = api.create_user("noemail@testuser.com")
    body = entra.patch_ops(f"/Users/{bare['id']}",
                           {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "new@testuser.com"})
    assert body["emails"] == [{"type": "work", "value": "new@testuser.com"}]


@pytest.mark.parametrize("value", [
    "{id}",
    {"value": "{id}"},
    [{"$ref": "http://example.com/scim/Users/{id}", "value": "{id}"}],
])
@pytest.mark.parametrize("path", [f"{ENTERPRISE}:manager", "manager"])
def test_entra_manager_is_accepted_in_every_shape_and_returned_complex(entra, api, user, path, value) -> None:
    boss = api.create_user("boss@testuser.com")["id"]
    if isinstance(value, str):
        sent = value.format(id=boss)
    elif isinstance(value, dict):
        sent = {"value": boss}
    else:
        sent = [{"$ref": f"http://example.com/scim/Users/{boss}", "value": boss}]
    body = entra.patch_ops(f"/Users/{user['id']}", {"op": "Add", "path": path, "value": sent})
    assert body[ENTERPRISE]["manager"]["value"] == boss
    assert isinstance(entra.send("GET", f"/Users/{user['id']}", status=200)[ENTERPRISE]["manager"], dict)
    cleared = entra.patch_ops(f"/Users/{user['id']}", {"op": "Remove", "path": f"{ENTERPRISE}:manager"})
    assert ENTERPRISE not in cleared


def test_entra_manager_on_create_as_a_bare_id(entra, api) -> None:
    boss = api.create_user("boss@testuser.com")["id"]
    body = {**_create_body(), ENTERPRISE: {"employeeNumber": "100009", "manager": boss}}
    made = entra.send("POST", "/Users", body, 201)
    assert made[ENTERPRISE] == {"employeeNumber": "100009", "manager": {"value": boss}}


# --- Disable, enable, delete, return -------------------------------------------------------------


@pytest.mark.parametrize(("off", "on"), [("False", "True"), (False, True)], ids=["without-flag", "with-flag"])
def test_entra_disable_and_enable_user(entra, user, off, on) -> None:
    path = f"/Users/{user['id']}"
    disabled = entra.patch_ops(path, {"op": "Replace", "path": "active", "value": off})
    assert disabled["active"] is False
    # A disabled user is still returned, by id and by filter, with `active`.
    assert entra.send("GET", path, status=200)["active"] is False
    found = entra.listing(_by_user_name(USER_NAME))["Resources"]
    assert [(u["id"], u["active"]) for u in found] == [(user["id"], False)]
    enabled = entra.patch_ops(path, {"op": "Replace", "path": "active", "value": on})
    assert enabled["active"] is True


def test_entra_primary_sent_as_a_string_is_stored_as_a_boolean(entra, user) -> None:
    body = entra.patch_ops(f"/Users/{user['id']}", {"op": "Add", "path": "emails",
                                                     "value": [{"type": "home", "value": "h@x.com", "primary": "True"}]})
    assert {e["type"]: e["primary"] for e in body["emails"]} == {"work": False, "home": True}


def test_entra_delete_user_then_the_returning_user_gets_the_same_account(entra, user, group) -> None:
    entra.patch_ops(f"/Groups/{group['id']}", {"op": "Add", "path": "members", "value": [{"value": user["id"]}]}, status=204)
    assert entra.send("DELETE", f"/Users/{user['id']}", status=204) is None
    assert entra.send("GET", f"/Users/{user['id']}").status_code == 404
    assert entra.listing(_by_user_name(USER_NAME))["totalResults"] == 0
    assert _members(entra, group["id"]) == set()
    back = entra.send("POST", "/Users", _create_body(), 201)
    assert back["id"] == user["id"] and back["active"] is True and "groups" not in back


# --- Groups ---------------------------------------------------------------------------------------


def test_entra_create_group_tolerates_its_schema_urn(entra, group) -> None:
    assert group["schemas"] == [GROUP] and group["displayName"] == "displayName"
    assert group["externalId"] == "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159" and "members" not in group


def test_entra_get_group_excluding_members(entra, api, group, user) -> None:
    api.ops(f"/Groups/{group['id']}", {"op": "add", "path": "members", "value": [{"value": user["id"]}]})
    one = entra.send("GET", f"/Groups/{group['id']}?excludedAttributes=members", status=200)
    assert one["displayName"] == "displayName" and "members" not in one
    found = entra.listing(f"/Groups?excludedAttributes=members&filter=displayName+eq+{_q('displayName')}")
    assert [g["id"] for g in found["Resources"]] == [group["id"]]
    assert "members" not in found["Resources"][0]
    assert entra.listing(f"/Groups?excludedAttributes=members&filter=displayName+eq+{_q('other')}")["totalResults"] == 0


def test_entra_checks_membership_with_a_members_filter(entra, api, group, user) -> None:
    query = f"/Groups?excludedAttributes=members&filter=id+eq+{_q(group['id'])}+and+members.value+eq+{_q(user['id'])}"
    assert entra.listing(query)["totalResults"] == 0
    api.ops(f"/Groups/{group['id']}", {"op": "add", "path": "members", "value": [{"value": user["id"]}]})
    assert entra.listing(query)["totalResults"] == 1


def test_entra_update_group_non_member_attributes(entra, group) -> None:
    new = "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    assert entra.patch_ops(f"/Groups/{group['id']}", {"op": "Replace", "path": "displayName", "value": new},
                           status=204) is None
    assert entra.send("GET", f"/Groups/{group['id']}", status=200)["displayName"] == new


def test_entra_adds_members_in_batches(entra, api, group) -> None:
    ids = [api.create_user(f"u{n}@testuser.com")["id"] for n in range(6)]
    path = f"/Groups/{group['id']}"
    entra.patch_ops(path, {"op": "Add", "path": "members", "value": [{"$ref": None, "value": ids[0]}]}, status=204)
    entra.patch_ops(path,
                    {"op": "Add", "path": "members", "value": [{"value": i} for i in ids[1:4]]},
                    {"op": "Add", "path": "members", "value": [{"value": i} for i in ids[3:]]}, status=204)
    assert _members(entra, group["id"]) == set(ids)
    # Adding members already there is a no-op.
    entra.patch_ops(path, {"op": "Add", "path": "members", "value": [{"value": i} for i in ids[:2]]}, status=204)
    assert _members(entra, group["id"]) == set(ids)


@pytest.mark.parametrize("form", ["without-flag", "with-flag"])
def test_entra_remove_members_removes_only_the_named_ones(entra, api, group, form) -> None:
    ids = [api.create_user(f"u{n}@testuser.com")["id"] for n in range(4)]
    path = f"/Groups/{group['id']}"
    entra.patch_ops(path, {"op": "Add", "path": "members", "value": [{"value": i} for i in ids]}, status=204)
    if form == "without-flag":
        entra.patch_ops(path, {"op": "Remove", "path": "members",
                               "value": [{"$ref": None, "value": ids[0]}, {"value": ids[1]}]}, status=204)
    else:
        entra.patch_ops(path, {"op": "remove", "path": f'members[value eq "{ids[0]}"]'},
                        {"op": "remove", "path": f'members[value eq "{ids[1]}"]'}, status=204)
    assert _members(entra, group["id"]) == set(ids[2:])


def test_entra_delete_group(entra, group, user) -> None:
    entra.patch_ops(f"/Groups/{group['id']}", {"op": "Add", "path": "members", "value": [{"value": user["id"]}]}, status=204)
    assert entra.send("DELETE", f"/Groups/{group['id']}", status=204) is None
    assert entra.send("GET", f"/Groups/{group['id']}").status_code == 404
    assert "groups" not in entra.send("GET", f"/Users/{user['id']}", status=200)


def test_entra_schema_discovery(entra) -> None:
    body = entra.listing("/Schemas")
    assert {USER, ENTERPRISE, GROUP} <= {s["id"] for s in body["Resources"]}


def test_entra_group_membership_grants_the_mapped_role(entra, map_role, event_actions, group, user) -> None:
    map_role("displayName", "analytics-admin")
    entra.patch_ops(f"/Groups/{group['id']}", {"op": "Add", "path": "members", "value": [{"value": user["id"]}]}, status=204)
    assert [r["value"] for r in entra.send("GET", f"/Users/{user['id']}", status=200)["roles"]] == ["analytics-admin"]
    entra.patch_ops(f"/Groups/{group['id']}", {"op": "Remove", "path": "members", "value": [{"value": user["id"]}]},
                    status=204)
    assert "roles" not in entra.send("GET", f"/Users/{user['id']}", status=200)
    assert event_actions(group=group["id"])[:3] == ["group.created", "membership.added", "membership.removed"]


def test_entra_setup_guide_is_linked_and_its_commands_exist(check_guide) -> None:
    check_guide("entra-id.md")
