"""`active` has no default (RFC 7643 §4.1.1): removing or nulling it never grants access (README: Users)."""

from __future__ import annotations

import pytest

from skilljar_scim.domain import events, roles

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"

UNASSIGNING = [
    {"op": "remove", "path": "active"},
    {"op": "Remove", "path": "urn:ietf:params:scim:schemas:core:2.0:User:active"},
    {"op": "replace", "path": "active", "value": None},
    {"op": "replace", "path": "active", "value": ""},
    {"op": "replace", "value": {"active": None}},
    {"op": "add", "value": {"active": []}},
]


@pytest.fixture
def mapped(api):
    """A user in a group mapped to a role, so access shows as a role too."""
    roles.add_mapping(events.CLI, "Admins", "api-admin", {"api-admin": "API"})
    user = api.create_user("dana@example.com")
    api.create_group("Admins", [user["id"]])
    return api, user["id"]


def _state(api, user_id: str) -> tuple:
    shown = api.get(f"/Users/{user_id}").get_json()
    return shown["active"], [r["value"] for r in shown.get("roles", [])]


@pytest.mark.parametrize("operation", UNASSIGNING)
def test_active_unassigned_by_patch_keeps_a_deactivated_user_out(mapped, operation) -> None:
    api, user_id = mapped
    api.ops(f"/Users/{user_id}", {"op": "replace", "path": "active", "value": False})
    answer = api.ops(f"/Users/{user_id}", operation)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["active"] is False and _state(api, user_id) == (False, [])


@pytest.mark.parametrize("operation", UNASSIGNING)
def test_active_unassigned_by_patch_deactivates_an_active_user(mapped, operation) -> None:
    api, user_id = mapped
    assert _state(api, user_id) == (True, ["api-admin"])
    assert api.ops(f"/Users/{user_id}", operation).status_code == 200
    assert _state(api, user_id) == (False, [])


def test_active_put_without_it_leaves_access_unchanged_and_null_unassigns(mapped) -> None:
    api, user_id = mapped
    api.ops(f"/Users/{user_id}", {"op": "replace", "path": "active", "value": False})
    body = {"schemas": [USER], "userName": "dana@example.com", "title": "Ops"}
    assert api.put(f"/Users/{user_id}", body).get_json()["active"] is False
    assert _state(api, user_id) == (False, [])
    api.ops(f"/Users/{user_id}", {"op": "replace", "path": "active", "value": True})
    assert api.put(f"/Users/{user_id}", body).get_json()["active"] is True  # not asserted: unchanged
    assert api.put(f"/Users/{user_id}", {**body, "active": None}).get_json()["active"] is False
    assert _state(api, user_id) == (False, [])


def test_active_unassigned_in_bulk_keeps_a_deactivated_user_out(mapped) -> None:
    api, user_id = mapped
    api.ops(f"/Users/{user_id}", {"op": "replace", "path": "active", "value": False})
    operations = [{"method": "PATCH", "path": f"/Users/{user_id}",
                   "data": {"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": "active"}]}},
                  {"method": "PUT", "path": f"/Users/{user_id}",
                   "data": {"schemas": [USER], "userName": "dana@example.com"}}]
    answer = api.post("/Bulk", {"schemas": [BULK], "Operations": operations})
    assert [r["status"] for r in answer.get_json()["Operations"]] == ["200", "200"]
    assert _state(api, user_id) == (False, [])


def test_active_null_on_create_makes_an_inactive_account(api) -> None:
    created = api.post("/Users", {"schemas": [USER], "userName": "eve@example.com", "active": None})
    assert created.status_code == 201 and created.get_json()["active"] is False
    assert api.create_user("frank@example.com")["active"] is True  # omitted on create: provisioned to be used
