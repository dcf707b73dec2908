"""Provisioning lifecycle and role sync through the server (DESIGN: Users, Roles)."""

from __future__ import annotations

import pytest

from skilljar_scim.domain import events, roles
from skilljar_scim.store import models

CATALOG = {"api-admin": "API", "codes-admin": "Codes", "analytics-admin": "Analytics"}


def _map(group: str, role: str) -> None:
    roles.add_mapping(events.CLI, group, role, CATALOG)


def _roles_of(api, user_id: str) -> list[str]:
    return [r["value"] for r in api.get(f"/Users/{user_id}").get_json().get("roles", [])]


def _actions(user_id: str) -> list[str]:
    query = models.Event.select().where(models.Event.resource_id == user_id).order_by(models.Event.id)
    return [e.action for e in query]


@pytest.fixture
def alice(api) -> dict:
    return api.create_user("alice@example.com", externalId="ext-alice")


def test_lifecycle_deactivate_keeps_data_visible_and_drops_roles(api, alice) -> None:
    _map("Engineering", "api-admin")
    api.create_group("Engineering", [alice["id"]])
    assert _roles_of(api, alice["id"]) == ["api-admin"]
    api.ops(f"/Users/{alice['id']}", {"op": "replace", "value": {"active": False}})
    got = api.get(f"/Users/{alice['id']}").get_json()
    assert got["active"] is False and "roles" not in got and got["groups"][0]["display"] == "Engineering"
    found = api.get('/Users?filter=userName eq "alice@example.com"').get_json()
    assert found["totalResults"] == 1
    api.ops(f"/Users/{alice['id']}", {"op": "replace", "path": "active", "value": True})
    assert _roles_of(api, alice["id"]) == ["api-admin"]
    assert _actions(alice["id"])[-4:] == ["user.deactivated", "role.revoked", "user.reactivated", "role.granted"]


def test_lifecycle_put_active_false_deactivates(api, alice) -> None:
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "alice@example.com", "active": False}
    assert api.put(f"/Users/{alice['id']}", body).get_json()["active"] is False
    assert "user.deactivated" in _actions(alice["id"])


def test_lifecycle_post_matching_active_is_conflict(api, alice) -> None:
    api.assert_error(api.post("/Users", {"userName": "Alice@Example.com"}), 409, "uniqueness")


def test_lifecycle_post_matching_two_accounts_is_conflict_and_changes_nothing(api, alice) -> None:
    bob = api.create_user("bob@example.com", externalId="ext-bob")
    api.delete(f"/Users/{alice['id']}")
    api.delete(f"/Users/{bob['id']}")
    body = api.assert_error(api.post("/Users", {"userName": "alice@example.com", "externalId": "ext-bob"}), 409, "uniqueness")
    assert alice["id"] in body["detail"] and bob["id"] in body["detail"]
    assert models.User.select().where(models.User.deprovisioned_at.is_null()).count() == 0


def test_lifecycle_roles_follow_membership(api, alice) -> None:
    _map("engineering", "api-admin")
    group = api.create_group("Engineering")
    version = api.get(f"/Users/{alice['id']}").get_json()["meta"]["version"]
    api.ops(f"/Groups/{group['id']}", {"op": "add", "path": "members", "value": [{"value": alice["id"]}]})
    user = api.get(f"/Users/{alice['id']}").get_json()
    assert [r["value"] for r in user["roles"]] == ["api-admin"] and user["meta"]["version"] != version
    api.ops(f"/Groups/{group['id']}", {"op": "remove", "path": f'members[value eq "{alice["id"]}"]'})
    assert _roles_of(api, alice["id"]) == []
    assert _actions(alice["id"])[-2:] == ["role.granted", "role.revoked"]


def test_lifecycle_roles_follow_mapping_changes(api, alice) -> None:
    api.create_group("Engineering", [alice["id"]])
    _map("Engineering", "codes-admin")
    assert _roles_of(api, alice["id"]) == ["codes-admin"]
    roles.remove_mapping(events.CLI, "ENGINEERING", "codes-admin")
    assert _roles_of(api, alice["id"]) == []


def test_lifecycle_group_rename_and_delete_move_roles(api, alice) -> None:
    _map("Admins", "api-admin")
    group = api.create_group("Engineering", [alice["id"]])
    api.ops(f"/Groups/{group['id']}", {"op": "replace", "value": {"id": group["id"], "displayName": "Admins"}})
    assert _roles_of(api, alice["id"]) == ["api-admin"]
    assert api.get(f"/Users/{alice['id']}").get_json()["groups"][0]["display"] == "Admins"
    api.delete(f"/Groups/{group['id']}")
    assert _roles_of(api, alice["id"]) == []
    assert _actions(alice["id"])[-2:] == ["role.granted", "role.revoked"]


def test_lifecycle_roles_are_read_only(api, alice) -> None:
    response = api.ops(f"/Users/{alice['id']}", {"op": "add", "path": "roles", "value": [{"value": "global-admin"}]})
    api.assert_error(response, 400, "mutability")
    posted = api.post("/Users", {"userName": "eve@example.com", "roles": [{"value": "global-admin"}]})
    assert "roles" not in posted.get_json()


def test_lifecycle_union_of_roles_over_groups(api, alice) -> None:
    _map("Engineering", "api-admin")
    _map("Support", "codes-admin")
    _map("Support", "api-admin")
    api.create_group("Engineering", [alice["id"]])
    api.create_group("Support", [alice["id"]])
    assert _roles_of(api, alice["id"]) == ["api-admin", "codes-admin"]
    grants = roles.explain(models.User.get_by_id(alice["id"]))
    assert sorted((g.role, g.group_name) for g in grants) == [
        ("api-admin", "Engineering"), ("api-admin", "Support"), ("codes-admin", "Support")]


def test_lifecycle_every_change_records_its_token(api, alice) -> None:
    api.create_group("Engineering", [alice["id"]])
    recorded = list(models.Event.select().where(models.Event.action != "token.created"))
    assert recorded and all(e.actor == "token:Test IdP" and e.token_id for e in recorded)
