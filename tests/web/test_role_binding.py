"""How mappings bind to groups: by textkey name only, then pinned to the group's id (DESIGN: Roles)."""

from __future__ import annotations

from skilljar_scim.domain import events, roles
from skilljar_scim.store import models

CATALOG = {"global-admin": "Global", "api-admin": "API"}


def _map(group: str, role: str):
    return roles.add_mapping(events.CLI, group, role, CATALOG)


def _roles_of(api, user_id: str) -> list[str]:
    return [r["value"] for r in api.get(f"/Users/{user_id}").get_json().get("roles", [])]


def test_binding_full_width_look_alike_takes_no_mapping_and_blocks_no_name(api) -> None:
    _map("Hx Admins", "global-admin")
    mallory, alice = api.create_user("mallory@example.com"), api.create_user("alice@example.com")
    look_alike = api.create_group("Ｈｘ Ａｄｍｉｎｓ", [mallory["id"]])
    assert _roles_of(api, mallory["id"]) == []
    real = api.create_group("Hx Admins", [alice["id"]])
    assert _roles_of(api, alice["id"]) == ["global-admin"] and _roles_of(api, mallory["id"]) == []
    assert look_alike["id"] != real["id"]
    # and in a filter, too: each name finds its own group
    found = api.get('/Groups?filter=displayName eq "hx admins"').get_json()["Resources"]
    assert [g["id"] for g in found] == [real["id"]]


def test_binding_case_variant_is_the_same_name(api) -> None:
    api.create_group("Hx Admins")
    api.assert_error(api.post("/Groups", {"displayName": "HX ADMINS"}), 409, "uniqueness")


def _events(action: str) -> list[dict]:
    return [events.as_dict(e) for e in models.Event.select().where(models.Event.action == action).order_by(models.Event.id)]


def test_binding_pins_the_first_group_and_records_it(api) -> None:
    _map("Hx Admins", "global-admin")
    first = api.create_group("Hx Admins")
    bound = _events("mapping.bound")
    assert [(e["summary"]["group_id"], e["summary"]["role"]) for e in bound] == [(first["id"], "global-admin")]
    assert models.RoleMapping.get().group_id == first["id"]


def test_binding_a_mapping_added_after_the_group_pins_it_at_once(api) -> None:
    group = api.create_group("Hx Admins")
    _map("HX ADMINS", "global-admin")
    assert models.RoleMapping.get().group_id == group["id"]
    assert _events("mapping.bound")[0]["summary"]["reason"] == "mapping added"


def test_binding_rename_keeps_the_roles_with_the_group_id(api) -> None:
    alice = api.create_user("alice@example.com")
    _map("Hx Admins", "global-admin")
    group = api.create_group("Hx Admins", [alice["id"]])
    api.group_ops(f"/Groups/{group['id']}", {"op": "replace", "path": "displayName", "value": "Hx Former Admins"})
    assert _roles_of(api, alice["id"]) == ["global-admin"]
    assert _events("role.revoked") == []


def test_binding_another_group_taking_the_name_gets_nothing_and_a_conflict_is_recorded(api) -> None:
    alice, mallory = api.create_user("alice@example.com"), api.create_user("mallory@example.com")
    _map("Hx Admins", "global-admin")
    real = api.create_group("Hx Admins", [alice["id"]])
    api.group_ops(f"/Groups/{real['id']}", {"op": "replace", "path": "displayName", "value": "Hx Old"})
    taker = api.create_group("Hx Admins", [mallory["id"]])
    assert _roles_of(api, mallory["id"]) == [] and _roles_of(api, alice["id"]) == ["global-admin"]
    conflict = _events("mapping.conflict")
    assert [(c["summary"]["pinned_group_id"], c["summary"]["group_id"]) for c in conflict] == [(real["id"], taker["id"])]
    # and by rename, too
    other = api.create_group("Hx Other", [mallory["id"]])
    api.delete(f"/Groups/{taker['id']}")
    api.group_ops(f"/Groups/{other['id']}", {"op": "replace", "path": "displayName", "value": "hx admins"})
    assert _roles_of(api, mallory["id"]) == [] and len(_events("mapping.conflict")) == 2


def test_binding_a_deleted_and_recreated_group_needs_an_admin_to_rebind(api) -> None:
    alice = api.create_user("alice@example.com")
    _map("Hx Admins", "global-admin")
    _map("Hx Admins", "api-admin")
    old = api.create_group("Hx Admins", [alice["id"]])
    api.delete(f"/Groups/{old['id']}")
    new = api.create_group("Hx Admins", [alice["id"]])
    assert _roles_of(api, alice["id"]) == []
    preview = roles.rebind(events.CLI, "hx admins", preview=True)
    assert {(c.role, c.change) for c in preview.changes} == {("global-admin", "gain"), ("api-admin", "gain")}
    assert _roles_of(api, alice["id"]) == []  # a preview changes nothing
    outcome = roles.rebind(events.CLI, "Hx Admins")
    assert sorted(outcome.rebound) == [("Hx Admins", "api-admin"), ("Hx Admins", "global-admin")]
    assert _roles_of(api, alice["id"]) == ["api-admin", "global-admin"]
    assert {e["summary"]["previous_group_id"] for e in _events("mapping.bound")[-2:]} == {old["id"]}
    assert {m.group_id for m in models.RoleMapping.select()} == {new["id"]}


def test_binding_remove_and_add_again_also_moves_the_mapping(api) -> None:
    alice = api.create_user("alice@example.com")
    _map("Hx Admins", "global-admin")
    old = api.create_group("Hx Admins")
    api.delete(f"/Groups/{old['id']}")
    new = api.create_group("Hx Admins", [alice["id"]])
    roles.remove_mapping(events.CLI, "Hx Admins", "global-admin")
    _map("Hx Admins", "global-admin")
    assert models.RoleMapping.get().group_id == new["id"] and _roles_of(api, alice["id"]) == ["global-admin"]


def test_binding_list_shows_pin_status_and_conflict(api) -> None:
    _map("Waiting", "api-admin")
    _map("Hx Admins", "global-admin")
    real = api.create_group("Hx Admins")
    api.group_ops(f"/Groups/{real['id']}", {"op": "replace", "path": "displayName", "value": "Hx Old"})
    rows = {r["group"]: r for r in roles.list_mappings(CATALOG)}
    assert (rows["Waiting"]["status"], rows["Waiting"]["group_id"]) == ("waiting", None)
    assert (rows["Hx Admins"]["status"], rows["Hx Admins"]["pinned_group"]) == ("renamed", "Hx Old")
    taker = api.create_group("Hx Admins")
    row = {r["group"]: r for r in roles.list_mappings(CATALOG)}["Hx Admins"]
    assert (row["status"], row["group_id"], row["conflict_group_id"]) == ("conflict", real["id"], taker["id"])
    api.delete(f"/Groups/{real['id']}")
    api.delete(f"/Groups/{taker['id']}")
    assert {r["group"]: r for r in roles.list_mappings(CATALOG)}["Hx Admins"]["status"] == "group deleted"
