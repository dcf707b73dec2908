"""How mappings bind to groups: by textkey name only, then pinned to the group's id (DESIGN: Roles)."""

from __future__ import annotations

from skilljar_scim.domain import events, roles

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
