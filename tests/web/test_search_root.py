"""POST /.search and POST /{Users,Groups}/.search (RFC 7644 §3.4.3)."""

from __future__ import annotations

import pytest

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
USERS, GROUPS = {"ann", "bob", "cat"}, {"Admins", "Staff"}


@pytest.fixture
def world(api) -> dict:
    """Users ann, bob, cat; groups Admins (ann) and Staff (ann, bob)."""
    made = {name: api.create_user(f"{name}@example.com", displayName=name.title(),
                                  emails=[{"value": f"{name}@work.example", "type": "work"}])
            for name in ("ann", "bob", "cat")}
    made["Admins"] = api.create_group("Admins", [made["ann"]["id"]])
    made["Staff"] = api.create_group("Staff", [made["ann"]["id"], made["bob"]["id"]])
    return made


@pytest.fixture
def everything(api, world) -> list[str]:
    """The unpaged order: Users, then Groups, each in the server's stable default order."""
    order = labels(search(api))
    assert set(order[:3]) == USERS and set(order[3:]) == GROUPS
    return order


def search(api, path: str = "/.search", **fields):
    """POST a SearchRequest with `fields`; return the ListResponse after checking its envelope."""
    response = api.post(path, {"schemas": [SEARCH], **fields})
    body = response.get_json()
    assert response.status_code == 200, body
    assert response.mimetype == "application/scim+json"
    assert body["schemas"] == [LIST]
    assert body["itemsPerPage"] == len(body["Resources"])
    return body


def label(resource: dict) -> str:
    if resource["meta"]["resourceType"] == "User":
        return resource["userName"].split("@")[0]
    return resource["displayName"]


def labels(body: dict) -> list[str]:
    return [label(r) for r in body["Resources"]]


# --- across resource types -------------------------------------------------------------


def test_search_root_returns_users_and_groups_together(api, world) -> None:
    body = search(api)
    assert body["totalResults"] == 5 and body["startIndex"] == 1
    users, groups = body["Resources"][:3], body["Resources"][3:]
    assert all(r["schemas"] == [USER] and r["meta"]["location"].endswith(f"/Users/{r['id']}") for r in users)
    assert all(r["schemas"] == [GROUP] and r["meta"]["resourceType"] == "Group" for r in groups)
    assert sorted(groups, key=label) == [world["Admins"], world["Staff"]]
    assert sorted(users, key=label) == [api.get(f"/Users/{world[n]['id']}").get_json() for n in ("ann", "bob", "cat")]


@pytest.mark.parametrize("start, count, window", [
    pytest.param(1, 2, slice(0, 2), id="users-only"),
    pytest.param(2, 3, slice(1, 4), id="spans-boundary"),
    pytest.param(3, 2, slice(2, 4), id="last-user-first-group"),
    pytest.param(4, 5, slice(3, 5), id="groups-only"),
    pytest.param(5, 1, slice(4, 5), id="last"),
    pytest.param(6, 2, slice(0, 0), id="past-the-end"),
    pytest.param(1, 0, slice(0, 0), id="count-zero"),
    pytest.param(1, 100, slice(0, 5), id="everything"),
    pytest.param(0, 2, slice(0, 2), id="start-below-one-is-one"),
])
def test_search_root_pages_across_both_types(api, everything, start, count, window) -> None:
    body = search(api, startIndex=start, count=count)
    assert labels(body) == everything[window]
    assert body["totalResults"] == 5
    assert body["startIndex"] == max(start, 1)


def test_search_root_pages_concatenate_to_everything(api, everything) -> None:
    pages = [labels(search(api, startIndex=start, count=2)) for start in (1, 3, 5)]
    assert sum(pages, []) == everything


@pytest.mark.parametrize("make_filter, expected", [
    pytest.param(lambda w: 'userName eq "BOB@example.com"', ["bob"], id="users-only-attribute"),
    pytest.param(lambda w: 'emails[type eq "work" and value eq "cat@work.example"]', ["cat"], id="users-value-path"),
    pytest.param(lambda w: f'members[value eq "{w["bob"]["id"]}"]', ["Staff"], id="groups-only-attribute"),
    pytest.param(lambda w: 'displayName eq "admins" or displayName eq "ANN"', ["ann", "Admins"], id="both-types"),
    pytest.param(lambda w: f'id eq "{w["Staff"]["id"]}"', ["Staff"], id="id"),
    pytest.param(lambda w: 'displayName eq "nobody"', [], id="no-match"),
])
def test_search_root_filter_applies_to_the_types_it_fits(api, world, make_filter, expected) -> None:
    body = search(api, filter=make_filter(world))
    assert labels(body) == expected  # Users before Groups
    assert body["totalResults"] == len(expected)


def test_search_root_one_type_filter_pages_within_its_matches(api, world) -> None:
    first = search(api, filter='userName sw "b" or userName sw "c"', count=1)
    second = search(api, filter='userName sw "b" or userName sw "c"', startIndex=2, count=5)
    assert (first["totalResults"], second["totalResults"]) == (2, 2)
    assert sorted(labels(first) + labels(second)) == ["bob", "cat"]


@pytest.mark.parametrize("text", [
    pytest.param('nosuch eq "x"', id="unknown-attribute"),
    pytest.param('userName eq', id="no-value"),
    pytest.param('displayName zz "x"', id="bad-operator"),
    pytest.param('(displayName eq "x"', id="unbalanced"),
    pytest.param('userName eq "a" and members pr', id="mixes-types"),
])
def test_search_root_filter_invalid_for_every_type_is_400(api, world, text) -> None:
    api.assert_error(api.post("/.search", {"schemas": [SEARCH], "filter": text}), 400, "invalidFilter")


def test_search_root_attributes_select_returned_attributes(api, everything) -> None:
    body = search(api, attributes=["userName", "displayName"])
    assert [set(r) for r in body["Resources"]] == (
        [{"schemas", "id", "meta", "userName", "displayName"}] * 3 + [{"schemas", "id", "meta", "displayName"}] * 2)


def test_search_root_excluded_attributes_drop_them(api, everything) -> None:
    body = search(api, excludedAttributes=["members", "emails", "groups"])
    assert labels(body) == everything
    assert not any({"members", "emails", "groups"} & set(r) for r in body["Resources"])
    assert all(r["members"] for r in search(api)["Resources"][3:])


# --- per resource type -------------------------------------------------------------------


@pytest.mark.parametrize("path, fields, expected, total", [
    pytest.param("/Users/.search", {"sortBy": "userName"}, ["ann", "bob", "cat"], 3, id="users-all"),
    pytest.param("/Users/.search", {"filter": 'displayName sw "B"'}, ["bob"], 1, id="users-filter"),
    pytest.param("/Users/.search", {"startIndex": 2, "count": 1, "sortBy": "userName"}, ["bob"], 3, id="users-page"),
    pytest.param("/Users/.search", {"sortBy": "userName", "sortOrder": "descending"}, ["cat", "bob", "ann"], 3,
                 id="users-sorted"),
    pytest.param("/Groups/.search", {"sortBy": "displayName"}, ["Admins", "Staff"], 2, id="groups-all"),
    pytest.param("/Groups/.search", {"filter": 'displayName eq "STAFF"'}, ["Staff"], 1, id="groups-filter"),
    pytest.param("/Groups/.search", {"startIndex": 2, "count": 5, "sortBy": "displayName"}, ["Staff"], 2,
                 id="groups-page"),
])
def test_search_type_endpoint_searches_that_type(api, world, path, fields, expected, total) -> None:
    body = search(api, path, **fields)
    assert labels(body) == expected
    assert body["totalResults"] == total


def test_search_groups_excluded_members_in_body(api, world) -> None:
    body = search(api, "/Groups/.search", excludedAttributes=["members"], sortBy="displayName",
                  filter=f'members[value eq "{world["ann"]["id"]}"]')
    assert labels(body) == ["Admins", "Staff"]
    assert not any("members" in r for r in body["Resources"])


@pytest.mark.parametrize("path, text", [("/Users/.search", "members pr"), ("/Groups/.search", 'userName eq "a"')])
def test_search_type_endpoint_refuses_other_types_attributes(api, world, path, text) -> None:
    api.assert_error(api.post(path, {"schemas": [SEARCH], "filter": text}), 400, "invalidFilter")


# --- malformed SearchRequest -------------------------------------------------------------


@pytest.mark.parametrize("path", ["/.search", "/Users/.search", "/Groups/.search"])
@pytest.mark.parametrize("body, scim_type", [
    pytest.param({"filter": 'userName eq "a"'}, "invalidValue", id="no-schemas"),
    pytest.param({"schemas": [LIST]}, "invalidValue", id="wrong-schema"),
    pytest.param({"schemas": SEARCH}, "invalidValue", id="schemas-not-list"),
    pytest.param(["not", "an", "object"], "invalidSyntax", id="not-an-object"),
    pytest.param({"schemas": [SEARCH], "attributes": "userName"}, "invalidValue", id="attributes-not-list"),
    pytest.param({"schemas": [SEARCH], "filter": 7}, "invalidValue", id="filter-not-string"),
    pytest.param({"schemas": [SEARCH], "count": "many"}, "invalidValue", id="count-not-integer"),
    pytest.param({"schemas": [SEARCH], "sortOrder": "sideways"}, "invalidValue", id="bad-sort-order"),
])
def test_search_request_malformed_is_400(api, path, body, scim_type) -> None:
    api.assert_error(api.post(path, body), 400, scim_type)


def test_search_root_get_is_not_allowed(api) -> None:
    api.assert_error(api.get("/.search"), 405)
