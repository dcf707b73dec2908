"""/Groups over HTTP, by RFC 7644 section: create, read, list, replace, patch, delete."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlencode

import pytest


GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


# --- helpers ---------------------------------------------------------------------------


@pytest.fixture
def people(api) -> list[dict]:
    """Three users: ann, bob and cat."""
    return [api.create_user(f"{name}@example.com", displayName=name.title()) for name in ("ann", "bob", "cat")]


def query(path: str, params: dict) -> str:
    return f"{path}?{urlencode(params)}"


def member_ids(resource: dict) -> list[str]:
    return sorted(m["value"] for m in resource.get("members", []))


def fetch(api, group_id: str) -> dict:
    response = api.get(f"/Groups/{group_id}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def names(response) -> list[str]:
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["schemas"] == [LIST]
    return sorted(r["displayName"] for r in body["Resources"])


def reads_membership(statements: list[str]) -> bool:
    return any('"membership"' in s.lower() for s in statements)


# --- §3.3 create -----------------------------------------------------------------------


def test_groups_create_returns_201_location_and_members(api, people) -> None:
    ann = people[0]
    response = api.post("/Groups", {"schemas": [GROUP], "displayName": "Engineering", "externalId": "eng-1",
                                     "members": [{"value": ann["id"]}]})
    body = response.get_json()
    assert response.status_code == 201, body
    assert response.mimetype == "application/scim+json"
    assert response.headers["Location"] == f"http://127.0.0.1:8080/scim/v2/Groups/{body['id']}"
    assert response.headers["ETag"] == body["meta"]["version"] == 'W/"1"'
    assert body["schemas"] == [GROUP]
    assert body["displayName"] == "Engineering" and body["externalId"] == "eng-1"
    assert body["members"] == [{"value": ann["id"], "$ref": f"http://127.0.0.1:8080/scim/v2/Users/{ann['id']}",
                                "display": "Ann", "type": "User"}]
    assert body["meta"]["resourceType"] == "Group"
    assert body["meta"]["location"] == response.headers["Location"]


def test_groups_create_member_display_falls_back_to_user_name(api) -> None:
    user = api.create_user("plain@example.com")
    group = api.create_group("Plain", [user["id"]])
    assert group["members"][0]["display"] == "plain@example.com"


def test_groups_create_without_members_has_no_members_attribute(api) -> None:
    group = api.create_group("Empty")
    assert "members" not in group
    assert fetch(api, group["id"]) == group


@pytest.mark.parametrize("body, scim_type", [
    pytest.param({"schemas": [GROUP]}, "invalidValue", id="no-displayName"),
    pytest.param({"schemas": [GROUP], "displayName": 7}, "invalidValue", id="displayName-not-string"),
    pytest.param({"schemas": [GROUP], "displayName": "X", "members": [{"display": "no value"}]},
                 "invalidValue", id="member-without-value"),
    pytest.param({"schemas": [GROUP], "displayName": "X", "members": [{"value": "no-such-user"}]},
                 "invalidValue", id="unknown-member"),
    pytest.param(["not", "an", "object"], "invalidSyntax", id="not-an-object"),
])
def test_groups_create_invalid_body_is_400(api, body, scim_type) -> None:
    api.assert_error(api.post("/Groups", body), 400, scim_type)
    assert api.get("/Groups").get_json()["totalResults"] == 0


@pytest.mark.parametrize("send", [
    pytest.param(lambda api, gid, members: api.post("/Groups", {"schemas": [GROUP], "displayName": "Big",
                                                                "members": members}), id="post"),
    pytest.param(lambda api, gid, members: api.put(f"/Groups/{gid}", {"schemas": [GROUP], "displayName": "Big",
                                                                      "members": members}), id="put"),
    pytest.param(lambda api, gid, members: api.ops(f"/Groups/{gid}", {"op": "add", "path": "members",
                                                                      "value": members}), id="patch"),
])
def test_groups_more_members_than_the_limit_is_400_too_many(api, send) -> None:
    group = api.create_group("Engineering")
    members = [{"value": f"user-{i}"} for i in range(1001)]
    api.assert_error(send(api, group["id"], members), 400, "tooMany")
    assert names(api.get("/Groups")) == ["Engineering"]


@pytest.mark.parametrize("second", ["Engineering", "ENGINEERING", "engineering"])
def test_groups_create_duplicate_display_name_is_409_uniqueness(api, second) -> None:
    api.create_group("Engineering")
    api.assert_error(api.post("/Groups", {"schemas": [GROUP], "displayName": second}), 409, "uniqueness")
    assert names(api.get("/Groups")) == ["Engineering"]


# --- §3.4.1 read -----------------------------------------------------------------------


def test_groups_get_returns_the_created_resource_with_etag(api, people) -> None:
    group = api.create_group("Engineering", [p["id"] for p in people])
    response = api.get(f"/Groups/{group['id']}")
    assert response.status_code == 200
    assert response.get_json() == group
    assert response.headers["ETag"] == group["meta"]["version"]
    assert [m["display"] for m in group["members"]] == ["Ann", "Bob", "Cat"]


def test_groups_get_unknown_is_404(api) -> None:
    api.assert_error(api.get("/Groups/no-such-group"), 404)


def test_groups_get_if_none_match_current_version_is_304(api) -> None:
    group = api.create_group("Engineering")
    response = api.get(f"/Groups/{group['id']}", headers={"If-None-Match": group["meta"]["version"]})
    assert response.status_code == 304
    assert response.data == b""


# --- §3.4.2 list and filter ------------------------------------------------------------


@pytest.fixture
def catalogue(api, people) -> dict:
    """Groups Engineering (ann, bob), Sales (bob), Empty; and the people."""
    ann, bob, _ = people
    return {
        "eng": api.create_group("Engineering", [ann["id"], bob["id"]], externalId="ext-eng"),
        "sales": api.create_group("Sales", [bob["id"]], externalId="ext-sales"),
        "empty": api.create_group("Empty"),
        "ann": ann, "bob": bob,
    }


@pytest.mark.parametrize("make_filter, expected", [
    pytest.param(lambda c: 'displayName eq "engineering"', ["Engineering"], id="displayName-case-insensitive"),
    pytest.param(lambda c: 'DISPLAYNAME EQ "SALES"', ["Sales"], id="attribute-and-operator-case"),
    pytest.param(lambda c: 'externalId eq "ext-sales"', ["Sales"], id="externalId"),
    pytest.param(lambda c: 'externalId eq "EXT-SALES"', [], id="externalId-case-exact"),
    pytest.param(lambda c: f'id eq "{c["empty"]["id"]}"', ["Empty"], id="id"),
    pytest.param(lambda c: f'members[value eq "{c["ann"]["id"]}"]', ["Engineering"], id="members-value-path"),
    pytest.param(lambda c: f'members[value eq "{c["bob"]["id"]}"]', ["Engineering", "Sales"], id="bob-in-two"),
    pytest.param(lambda c: f'members.value eq "{c["bob"]["id"]}"', ["Engineering", "Sales"], id="members-dot-value"),
    pytest.param(lambda c: f'members eq "{c["ann"]["id"]}"', ["Engineering"], id="bare-members"),
    pytest.param(lambda c: 'members pr', ["Engineering", "Sales"], id="members-present"),
    pytest.param(lambda c: f'displayName eq "Sales" and members[value eq "{c["ann"]["id"]}"]', [], id="entra-check-miss"),
    pytest.param(lambda c: 'displayName sw "e"', ["Empty", "Engineering"], id="starts-with"),
])
def test_groups_list_filter_selects_matching_groups(api, catalogue, make_filter, expected) -> None:
    response = api.get(query("/Groups", {"filter": make_filter(catalogue)}))
    assert names(response) == expected
    assert response.get_json()["totalResults"] == len(expected)


def test_groups_list_unknown_attribute_in_filter_is_400_invalid_filter(api) -> None:
    api.assert_error(api.get(query("/Groups", {"filter": 'userName eq "x"'})), 400, "invalidFilter")


@pytest.mark.sqlite  # counts statements with a sqlite3 trace callback
def test_groups_list_excluded_members_returns_no_members_and_never_reads_memberships(api, catalogue, sql) -> None:
    response = api.get(query("/Groups", {"excludedAttributes": "members"}))
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["totalResults"] == 3
    assert all("members" not in r and r["displayName"] for r in body["Resources"])
    assert sql and not reads_membership(sql)


@pytest.mark.sqlite  # counts statements with a sqlite3 trace callback
def test_groups_get_excluded_members_never_reads_memberships(api, catalogue, sql) -> None:
    response = api.get(query(f"/Groups/{catalogue['eng']['id']}", {"excludedAttributes": "members"}))
    assert response.status_code == 200
    assert "members" not in response.get_json()
    assert response.get_json()["displayName"] == "Engineering"
    assert sql and not reads_membership(sql)


@pytest.mark.sqlite  # counts statements with a sqlite3 trace callback
def test_groups_list_with_members_reads_memberships_once(api, catalogue, sql) -> None:
    response = api.get("/Groups")
    assert response.status_code == 200
    assert sum('"membership"' in s.lower() for s in sql) == 1


@pytest.mark.parametrize("make_filter, expected", [
    pytest.param(lambda c: f'members[value eq "{c["bob"]["id"]}"]', ["Engineering", "Sales"], id="indexed"),
    pytest.param(lambda c: f'members.value co "{c["ann"]["id"][4:12]}"', ["Engineering"], id="substring"),
    pytest.param(lambda c: 'members pr', ["Engineering", "Sales"], id="present"),
    pytest.param(lambda c: f'not (members[value eq "{c["ann"]["id"]}"])', ["Empty", "Sales"], id="negated"),
])
def test_groups_list_member_filter_works_with_members_excluded(api, catalogue, make_filter, expected) -> None:
    response = api.get(query("/Groups", {"filter": make_filter(catalogue), "excludedAttributes": "members"}))
    assert names(response) == expected
    assert all("members" not in r for r in response.get_json()["Resources"])


@pytest.mark.parametrize("excluded, kept", [
    pytest.param("members.display", {"value", "$ref", "type"}, id="sub-attribute"),
    pytest.param("members.$ref,members.type", {"value", "display"}, id="two-sub-attributes"),
])
def test_groups_get_excluded_member_sub_attribute_keeps_members(api, catalogue, excluded, kept) -> None:
    response = api.get(query(f"/Groups/{catalogue['eng']['id']}", {"excludedAttributes": excluded}))
    members = response.get_json()["members"]
    assert response.status_code == 200 and len(members) == 2
    assert all(set(m) == kept for m in members)


@pytest.mark.parametrize("attributes, expected", [
    pytest.param("displayName", {"schemas", "id", "meta", "displayName"}, id="displayName"),
    pytest.param("members", {"schemas", "id", "meta", "members"}, id="members"),
    pytest.param("members.value", {"schemas", "id", "meta", "members"}, id="members-value"),
    pytest.param(GROUP, {"schemas", "id", "meta", "displayName", "externalId", "members"}, id="core-urn"),
])
def test_groups_get_attributes_selects_what_is_returned(api, catalogue, attributes, expected) -> None:
    response = api.get(query(f"/Groups/{catalogue['eng']['id']}", {"attributes": attributes}))
    assert response.status_code == 200
    assert set(response.get_json()) == expected


def test_groups_list_pages_with_one_based_start_index(api) -> None:
    for name in ("A", "B", "C"):
        api.create_group(name)
    body = api.get(query("/Groups", {"startIndex": 2, "count": 1, "sortBy": "displayName"})).get_json()
    assert (body["totalResults"], body["startIndex"], body["itemsPerPage"]) == (3, 2, 1)
    assert [r["displayName"] for r in body["Resources"]] == ["B"]


def test_groups_search_post_filters_like_get(api, catalogue) -> None:
    response = api.post("/Groups/.search", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                                            "filter": 'displayName eq "SALES"', "excludedAttributes": ["members"]})
    assert names(response) == ["Sales"]
    assert "members" not in response.get_json()["Resources"][0]


# --- §3.5.1 replace --------------------------------------------------------------------


def test_groups_put_replaces_display_name_and_members(api, people) -> None:
    ann, bob, cat = people
    group = api.create_group("Engineering", [ann["id"], bob["id"]], externalId="old")
    response = api.put(f"/Groups/{group['id']}", {"schemas": [GROUP], "displayName": "Platform",
                                                  "members": [{"value": bob["id"]}, {"value": cat["id"]}]})
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["displayName"] == "Platform" and "externalId" not in body
    assert member_ids(body) == sorted([bob["id"], cat["id"]])
    assert body["meta"]["version"] == response.headers["ETag"] == 'W/"2"'
    assert fetch(api, group["id"]) == body


def test_groups_put_without_members_removes_them_all(api, people) -> None:
    group = api.create_group("Engineering", [p["id"] for p in people])
    body = api.put(f"/Groups/{group['id']}", {"schemas": [GROUP], "displayName": "Engineering"}).get_json()
    assert "members" not in body and "members" not in fetch(api, group["id"])


def test_groups_put_same_body_keeps_version(api, people) -> None:
    group = api.create_group("Engineering", [people[0]["id"]])
    body = {"schemas": [GROUP], "displayName": "Engineering", "members": [{"value": people[0]["id"]}]}
    assert api.put(f"/Groups/{group['id']}", body).get_json()["meta"]["version"] == 'W/"1"'


@pytest.mark.parametrize("body, status, scim_type", [
    pytest.param({"schemas": [GROUP], "id": "other-id", "displayName": "X"}, 400, "mutability", id="other-id"),
    pytest.param({"schemas": [GROUP], "displayName": "sales"}, 409, "uniqueness", id="taken-name"),
    pytest.param({"schemas": [GROUP], "displayName": "X", "members": [{"value": "nobody"}]}, 400, "invalidValue",
                 id="unknown-member"),
    pytest.param({"schemas": [GROUP]}, 400, "invalidValue", id="no-displayName"),
])
def test_groups_put_refused_changes_nothing(api, people, body, status, scim_type) -> None:
    api.create_group("Sales")
    group = api.create_group("Engineering", [people[0]["id"]])
    api.assert_error(api.put(f"/Groups/{group['id']}", body), status, scim_type)
    assert fetch(api, group["id"]) == group


def test_groups_put_unknown_group_is_404(api) -> None:
    api.assert_error(api.put("/Groups/nope", {"schemas": [GROUP], "displayName": "X"}), 404)


# --- §3.5.2 patch: members -------------------------------------------------------------


def test_groups_patch_add_one_member(api, people) -> None:
    ann, bob, _ = people
    group = api.create_group("Engineering", [ann["id"]])
    after = api.group_ops(f"/Groups/{group['id']}", {"op": "add", "path": "members", "value": [{"value": bob["id"]}]})
    body = after.get_json()
    assert member_ids(body) == sorted([ann["id"], bob["id"]])
    assert body["meta"]["version"] == after.headers["ETag"] == 'W/"2"'


def test_groups_patch_add_many_members_in_one_operation(api, people) -> None:
    group = api.create_group("Engineering")
    value = [{"value": p["id"]} for p in people]
    body = api.group_ops(f"/Groups/{group['id']}", {"op": "Add", "path": "members", "value": value}).get_json()
    assert member_ids(body) == sorted(p["id"] for p in people)
    assert body["meta"]["version"] == 'W/"2"'


def test_groups_patch_add_without_path_adds_members(api, people) -> None:
    group = api.create_group("Engineering")
    body = api.group_ops(f"/Groups/{group['id']}", {"op": "add", "value": {"members": [{"value": people[2]["id"]}]}}).get_json()
    assert member_ids(body) == [people[2]["id"]]


def test_groups_patch_add_existing_member_is_noop_and_keeps_version(api, people) -> None:
    group = api.create_group("Engineering", [people[0]["id"]])
    after = api.group_ops(f"/Groups/{group['id']}", {"op": "add", "path": "members", "value": [{"value": people[0]["id"]}]})
    assert after.get_json() == group
    assert after.headers["ETag"] == 'W/"1"'


@pytest.mark.parametrize("operation", [
    pytest.param(lambda ids: {"op": "remove", "path": f'members[value eq "{ids[0]}"]'}, id="okta-filter"),
    pytest.param(lambda ids: {"op": "remove", "path": "members", "value": [{"value": ids[0]}]}, id="entra-value"),
    pytest.param(lambda ids: {"op": "Remove", "path": "members", "value": [{"value": ids[0]}, {"value": "not-a-member"}]},
                 id="absent-ignored"),
    pytest.param(lambda ids: {"op": "remove", "path": f'members[value eq "{ids[0]}" or value eq "nobody"]'},
                 id="or-filter"),
])
def test_groups_patch_remove_removes_only_the_named_member(api, people, operation) -> None:
    ids = [p["id"] for p in people]
    group = api.create_group("Engineering", ids)
    body = api.group_ops(f"/Groups/{group['id']}", operation(ids)).get_json()
    assert member_ids(body) == sorted(ids[1:])
    assert body["meta"]["version"] == 'W/"2"'


def test_groups_patch_remove_two_named_members(api, people) -> None:
    ids = [p["id"] for p in people]
    group = api.create_group("Engineering", ids)
    value = [{"value": ids[0]}, {"value": ids[2]}]
    body = api.group_ops(f"/Groups/{group['id']}", {"op": "remove", "path": "members", "value": value}).get_json()
    assert member_ids(body) == [ids[1]]


def test_groups_patch_remove_members_without_value_removes_all(api, people) -> None:
    group = api.create_group("Engineering", [p["id"] for p in people])
    body = api.group_ops(f"/Groups/{group['id']}", {"op": "remove", "path": "members"}).get_json()
    assert "members" not in body and body["meta"]["version"] == 'W/"2"'
    assert all(api.get(f"/Users/{p['id']}").status_code == 200 for p in people)


def test_groups_patch_remove_absent_member_keeps_version(api, people) -> None:
    group = api.create_group("Engineering", [people[0]["id"]])
    body = api.group_ops(f"/Groups/{group['id']}", {"op": "remove", "path": f'members[value eq "{people[1]["id"]}"]'}).get_json()
    assert body == group


@pytest.mark.parametrize("operation", [
    pytest.param(lambda ids: {"op": "replace", "path": "members", "value": [{"value": ids[1]}, {"value": ids[2]}]},
                 id="with-path"),
    pytest.param(lambda ids: {"op": "replace", "value": {"members": [{"value": ids[1]}, {"value": ids[2]}]}},
                 id="without-path"),
])
def test_groups_patch_replace_members_sets_exactly_those(api, people, operation) -> None:
    ids = [p["id"] for p in people]
    group = api.create_group("Engineering", ids[:2])
    body = api.group_ops(f"/Groups/{group['id']}", operation(ids)).get_json()
    assert member_ids(body) == sorted(ids[1:])
    assert body["meta"]["version"] == 'W/"2"'


def test_groups_patch_ops_apply_in_order(api, people) -> None:
    ids = [p["id"] for p in people]
    group = api.create_group("Engineering")
    body = api.group_ops(f"/Groups/{group['id']}",
                         {"op": "add", "path": "members", "value": [{"value": ids[0]}, {"value": ids[1]}]},
                         {"op": "remove", "path": f'members[value eq "{ids[0]}"]'},
                         {"op": "add", "path": "members", "value": [{"value": ids[2]}]}).get_json()
    assert member_ids(body) == sorted(ids[1:])


# --- §3.5.2 patch: attributes ----------------------------------------------------------


@pytest.mark.parametrize("operation", [
    pytest.param(lambda gid: {"op": "replace", "value": {"id": gid, "displayName": "Platform"}}, id="okta-same-id"),
    pytest.param(lambda gid: {"op": "replace", "path": "displayName", "value": "Platform"}, id="with-path"),
    pytest.param(lambda gid: {"op": "replace", "value": {"displayName": "Platform"}}, id="entra-no-id"),
])
def test_groups_patch_rename(api, people, operation) -> None:
    group = api.create_group("Engineering", [people[0]["id"]])
    body = api.group_ops(f"/Groups/{group['id']}", operation(group["id"])).get_json()
    assert body["displayName"] == "Platform" and body["id"] == group["id"]
    assert member_ids(body) == [people[0]["id"]]
    assert body["meta"]["version"] == 'W/"2"'


@pytest.mark.parametrize("operations, status, scim_type", [
    pytest.param(lambda m: [{"op": "replace", "value": {"id": "other", "displayName": "Platform"}}], 400,
                 "mutability", id="rename-with-other-id"),
    pytest.param(lambda m: [{"op": "replace", "path": "displayName", "value": "SALES"}], 409, "uniqueness",
                 id="taken-name"),
    pytest.param(lambda m: [{"op": "replace", "path": "displayName", "value": "Platform"},
                            {"op": "add", "path": "members", "value": [{"value": "no-such-user"}]}],
                 400, "invalidValue", id="unknown-member-after-rename"),
    pytest.param(lambda m: [{"op": "add", "path": "members", "value": [{"value": m}, {"value": "no-such-user"}]}],
                 400, "invalidValue", id="known-and-unknown-member"),
    pytest.param(lambda m: [{"op": "add", "path": "members", "value": [{"value": m}]},
                            {"op": "remove", "path": "displayName"}], 400, "invalidValue", id="remove-required"),
    pytest.param(lambda m: [{"op": "add", "path": f'members[value eq "{m}"]', "value": {"value": m}}], 400,
                 "noTarget", id="add-through-filter"),
    pytest.param(lambda m: [{"op": "replace", "path": "members.display", "value": "x"}], 400, "noTarget",
                 id="member-sub-attribute"),
    pytest.param(lambda m: [{"op": "add", "path": "owners", "value": "x"}], 400, "invalidPath", id="unknown-path"),
    pytest.param(lambda m: [{"op": "add", "path": "members", "value": [{"display": "no value"}]}], 400,
                 "invalidValue", id="member-without-value"),
])
def test_groups_patch_refused_changes_nothing(api, people, operations, status, scim_type) -> None:
    api.create_group("Sales")
    group = api.create_group("Engineering", [people[0]["id"]])
    api.assert_error(api.ops(f"/Groups/{group['id']}", *operations(people[1]["id"])), status, scim_type)
    assert fetch(api, group["id"]) == group


@pytest.mark.parametrize("body, scim_type", [
    pytest.param({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []}, "invalidSyntax",
                 id="no-operations"),
    pytest.param({"Operations": [{"op": "add", "path": "members", "value": []}]}, "invalidSyntax", id="no-schemas"),
    pytest.param({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                  "Operations": [{"op": "move", "path": "displayName", "value": "x"}]}, "invalidSyntax", id="bad-op"),
])
def test_groups_patch_malformed_body_is_400(api, body, scim_type) -> None:
    group = api.create_group("Engineering")
    api.assert_error(api.patch(f"/Groups/{group['id']}", body), 400, scim_type)


def test_groups_patch_unknown_group_is_404(api) -> None:
    api.assert_error(api.ops("/Groups/nope", {"op": "replace", "path": "displayName", "value": "X"}), 404)


# --- §3.5.2 patch: what a successful PATCH answers ---------------------------------------


def test_groups_patch_answers_204_with_the_new_etag_and_no_body(api, people) -> None:
    group = api.create_group("Engineering", [people[0]["id"]])
    response = api.ops(f"/Groups/{group['id']}", {"op": "add", "path": "members", "value": [{"value": people[1]["id"]}]})
    assert response.status_code == 204, response.get_data(as_text=True)
    assert response.get_data() == b""
    assert "Content-Type" not in response.headers, response.headers
    after = api.get(f"/Groups/{group['id']}")
    assert response.headers["ETag"] == after.headers["ETag"] == after.get_json()["meta"]["version"] == 'W/"2"'
    assert member_ids(after.get_json()) == sorted([people[0]["id"], people[1]["id"]])


def test_groups_patch_excluded_members_answers_200_without_members(api, people) -> None:
    group = api.create_group("Engineering", [people[0]["id"]])
    response = api.ops(query(f"/Groups/{group['id']}", {"excludedAttributes": "members"}),
                       {"op": "add", "path": "members", "value": [{"value": people[1]["id"]}]})
    body = response.get_json()
    assert response.status_code == 200, body
    assert response.mimetype == "application/scim+json"
    assert "members" not in body
    assert body["displayName"] == "Engineering" and body["id"] == group["id"]
    assert body["meta"]["version"] == response.headers["ETag"] == 'W/"2"'
    assert member_ids(fetch(api, group["id"])) == sorted([people[0]["id"], people[1]["id"]])


def test_groups_patch_attributes_answers_200_with_only_those(api, people) -> None:
    group = api.create_group("Engineering", [people[0]["id"]])
    response = api.ops(query(f"/Groups/{group['id']}", {"attributes": "displayName"}),
                       {"op": "replace", "path": "displayName", "value": "Platform"})
    body = response.get_json()
    assert response.status_code == 200, body
    assert set(body) == {"schemas", "id", "meta", "displayName"}
    assert body["displayName"] == "Platform" and body["id"] == group["id"]
    assert response.headers["ETag"] == 'W/"2"'


def test_groups_patch_with_resource_setting_answers_200_with_the_whole_group(api, people, settings) -> None:
    from skilljar_scim.web.app import create_app

    server = dataclasses.replace(settings.server, group_patch_response="resource")
    application = create_app(dataclasses.replace(settings, server=server))
    application.config["TESTING"] = False
    resource_api = type(api)(application, api.token)
    group = api.create_group("Engineering", [people[0]["id"]])
    response = resource_api.ops(f"/Groups/{group['id']}",
                                {"op": "add", "path": "members", "value": [{"value": people[1]["id"]}]})
    body = response.get_json()
    assert response.status_code == 200, body
    assert response.mimetype == "application/scim+json"
    assert member_ids(body) == sorted([people[0]["id"], people[1]["id"]])
    assert body["displayName"] == "Engineering" and body["schemas"] == [GROUP]
    assert body["meta"]["version"] == response.headers["ETag"] == 'W/"2"'
    assert fetch(api, group["id"]) == body


@pytest.mark.parametrize("setting", ["no-content", "resource"])
def test_groups_patch_failure_is_still_an_error_body(api, people, settings, setting) -> None:
    from skilljar_scim.web.app import create_app

    server = dataclasses.replace(settings.server, group_patch_response=setting)
    application = create_app(dataclasses.replace(settings, server=server))
    application.config["TESTING"] = False
    configured = type(api)(application, api.token)
    group = api.create_group("Engineering", [people[0]["id"]])
    response = configured.ops(f"/Groups/{group['id']}",
                              {"op": "add", "path": "members", "value": [{"value": "no-such-user"}]})
    api.assert_error(response, 400, "invalidValue")
    assert "ETag" not in response.headers
    assert fetch(api, group["id"]) == group


# --- deprovisioned users ---------------------------------------------------------------


def test_groups_deprovisioned_user_leaves_groups_and_bumps_their_version(api, people) -> None:
    ann, bob, _ = people
    group = api.create_group("Engineering", [ann["id"], bob["id"]])
    assert api.delete(f"/Users/{ann['id']}").status_code == 204
    after = fetch(api, group["id"])
    assert member_ids(after) == [bob["id"]]
    assert after["meta"]["version"] == 'W/"2"'
    assert names(api.get(query("/Groups", {"filter": f'members[value eq "{ann["id"]}"]'}))) == []


@pytest.mark.parametrize("send", [
    pytest.param(lambda api, gid, uid: api.ops(f"/Groups/{gid}", {"op": "add", "path": "members", "value": [{"value": uid}]}),
                 id="patch"),
    pytest.param(lambda api, gid, uid: api.put(f"/Groups/{gid}", {"schemas": [GROUP], "displayName": "Engineering",
                                                                  "members": [{"value": uid}]}), id="put"),
    pytest.param(lambda api, gid, uid: api.post("/Groups", {"schemas": [GROUP], "displayName": "Other",
                                                            "members": [{"value": uid}]}), id="post"),
])
def test_groups_deprovisioned_user_cannot_be_added(api, people, send) -> None:
    group = api.create_group("Engineering")
    api.delete(f"/Users/{people[0]['id']}")
    api.assert_error(send(api, group["id"], people[0]["id"]), 400, "invalidValue")
    assert fetch(api, group["id"]) == group


# --- §3.6 delete -----------------------------------------------------------------------


def test_groups_delete_is_204_then_404_and_users_stay(api, people) -> None:
    group = api.create_group("Engineering", [p["id"] for p in people])
    response = api.delete(f"/Groups/{group['id']}")
    assert response.status_code == 204 and response.data == b"" and "Content-Type" not in response.headers
    api.assert_error(api.get(f"/Groups/{group['id']}"), 404)
    api.assert_error(api.delete(f"/Groups/{group['id']}"), 404)
    for person in people:
        user = api.get(f"/Users/{person['id']}").get_json()
        assert user["userName"] == person["userName"] and "groups" not in user
    assert api.get("/Groups").get_json()["totalResults"] == 0


def test_groups_delete_frees_the_display_name(api) -> None:
    group = api.create_group("Engineering")
    api.delete(f"/Groups/{group['id']}")
    assert api.create_group("engineering")["displayName"] == "engineering"


# --- §3.14 versions --------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_groups_if_match_stale_version_is_412(api, method) -> None:
    group = api.create_group("Engineering")
    stale = {"headers": {"If-Match": 'W/"7"'}}
    requests = {
        "put": lambda: api.put(f"/Groups/{group['id']}", {"schemas": [GROUP], "displayName": "X"}, **stale),
        "patch": lambda: api.ops(f"/Groups/{group['id']}", {"op": "replace", "path": "displayName", "value": "X"}, **stale),
        "delete": lambda: api.delete(f"/Groups/{group['id']}", **stale),
    }
    api.assert_error(requests[method](), 412)
    assert fetch(api, group["id"]) == group


def test_groups_if_match_current_version_succeeds(api, people) -> None:
    group = api.create_group("Engineering")
    after = api.group_ops(f"/Groups/{group['id']}", {"op": "add", "path": "members", "value": [{"value": people[0]["id"]}]},
                          headers={"If-Match": group["meta"]["version"]})
    assert member_ids(after.get_json()) == [people[0]["id"]] and after.headers["ETag"] == 'W/"2"'
    api.assert_error(api.ops(f"/Groups/{group['id']}", {"op": "remove", "path": "members"},
                             headers={"If-Match": group["meta"]["version"]}), 412)


def test_groups_version_bumps_on_each_member_change(api, people) -> None:
    group = api.create_group("Engineering")
    versions = [group["meta"]["version"]]
    for person in people:
        after = api.group_ops(f"/Groups/{group['id']}", {"op": "add", "path": "members", "value": [{"value": person["id"]}]})
        versions.append(after.headers["ETag"])
    assert versions == ['W/"1"', 'W/"2"', 'W/"3"', 'W/"4"']


# --- RFC 7643 §4.1.2: User.groups ------------------------------------------------------


def test_groups_user_groups_lists_direct_memberships(api, people) -> None:
    ann = people[0]
    eng = api.create_group("Engineering", [ann["id"]])
    sales = api.create_group("Sales", [ann["id"]])
    body = api.get(f"/Users/{ann['id']}").get_json()
    assert body["groups"] == [
        {"value": g["id"], "$ref": f"http://127.0.0.1:8080/scim/v2/Groups/{g['id']}", "display": g["displayName"],
         "type": "direct"}
        for g in (eng, sales)
    ]


def test_groups_user_groups_is_ignored_on_put(api, people) -> None:
    ann = people[0]
    group = api.create_group("Engineering")
    body = {"schemas": [USER], "userName": ann["userName"], "groups": [{"value": group["id"]}]}
    response = api.put(f"/Users/{ann['id']}", body)
    assert response.status_code == 200, response.get_json()
    assert "groups" not in response.get_json()
    assert "members" not in fetch(api, group["id"])


def test_groups_user_groups_cannot_be_patched(api, people) -> None:
    group = api.create_group("Engineering")
    response = api.ops(f"/Users/{people[0]['id']}", {"op": "add", "path": "groups", "value": [{"value": group["id"]}]})
    api.assert_error(response, 400, "mutability")
    assert "members" not in fetch(api, group["id"])


# --- member types: this service's groups hold only Users (see /Schemas) -------------------


@pytest.mark.parametrize("send", ["post", "put", "patch-path", "patch-pathless"])
def test_groups_member_of_type_group_is_400_invalid_value(api, people, send) -> None:
    group = api.create_group("Engineering", [people[0]["id"]])
    # Even a value that is a User id: type "Group" says the client means something else.
    member = {"value": people[1]["id"], "type": "Group"}
    if send == "post":
        response = api.post("/Groups", {"schemas": [GROUP], "displayName": "Other", "members": [member]})
    elif send == "put":
        response = api.put(f"/Groups/{group['id']}", {"displayName": "Engineering", "members": [member]})
    elif send == "patch-path":
        response = api.ops(f"/Groups/{group['id']}", {"op": "add", "path": "members", "value": [member]})
    else:
        response = api.ops(f"/Groups/{group['id']}", {"op": "add", "value": {"members": [member]}})
    api.assert_error(response, 400, "invalidValue")
    assert [m["value"] for m in fetch(api, group["id"])["members"]] == [people[0]["id"]]
    listed = api.get("/Groups?" + urlencode({"filter": 'displayName eq "Other"'})).get_json()
    assert listed["totalResults"] == 0


@pytest.mark.parametrize("kind", ["User", "user", None])
def test_groups_member_of_type_user_or_untyped_is_accepted(api, people, kind) -> None:
    member = {"value": people[0]["id"], **({"type": kind} if kind else {})}
    group = api.create_group("Engineering")
    after = api.group_ops(f"/Groups/{group['id']}", {"op": "add", "path": "members", "value": [member]})
    assert [m["type"] for m in after.get_json()["members"]] == ["User"]
    created = api.post("/Groups", {"schemas": [GROUP], "displayName": "Other", "members": [member]})
    assert created.status_code == 201, created.get_json()
    assert [m["type"] for m in created.get_json()["members"]] == ["User"]
