"""Roles: mappings by group name, the union over groups, explanations, previews (DESIGN "Roles")."""

from __future__ import annotations

import pytest

from skilljar_scim.base.errors import InvalidValue
from skilljar_scim.domain import groups, roles, snapshots, users
from skilljar_scim.domain.events import CLI
from skilljar_scim.store.models import RoleMapping

from domain.support import BASE, CATALOG, patch_body


def test_roles_mapping_made_before_the_group_exists_applies_when_it_arrives(make_user, make_group) -> None:
    """A mapping names the group case-insensitively, so it can exist before the IdP pushes the group."""
    ann = make_user()
    roles.add_mapping(CLI, "engineering", "api-admin", CATALOG)
    make_group("Engineering", [ann.id])
    assert roles.roles_by_user([ann.id]) == {ann.id: ["api-admin"]}


def test_roles_are_the_union_over_mapped_groups_and_explained(make_user, make_group) -> None:
    ann = make_user()
    roles.add_mapping(CLI, "Engineering", "api-admin", CATALOG)
    roles.add_mapping(CLI, "Support", "api-admin", CATALOG)
    roles.add_mapping(CLI, "Support", "codes-admin", CATALOG)
    make_group("Engineering", [ann.id])
    make_group("Support", [ann.id])
    assert roles.roles_by_user([ann.id]) == {ann.id: ["api-admin", "codes-admin"]}
    reasons = sorted((g.role, g.group_name) for g in roles.explain(users.get(ann.id)))
    assert reasons == [("api-admin", "Engineering"), ("api-admin", "Support"), ("codes-admin", "Support")]


def test_roles_inactive_user_holds_none(make_user, make_group) -> None:
    ann = make_user()
    roles.add_mapping(CLI, "Engineering", "api-admin", CATALOG)
    make_group("Engineering", [ann.id])
    users.patch(CLI, ann.id, patch_body({"op": "replace", "path": "active", "value": False}))
    assert roles.roles_by_user([ann.id]) == {} and roles.explain(users.get(ann.id)) == []


def test_roles_preview_reports_who_gains_and_changes_nothing(make_user, make_group) -> None:
    ann = make_user()
    make_group("Engineering", [ann.id])
    outcome = roles.add_mapping(CLI, "Engineering", "api-admin", CATALOG, preview=True)
    assert [(c.user_name, c.role, c.change) for c in outcome.changes] == [("alice@example.com", "api-admin", "gain")]
    assert RoleMapping.select().count() == 0 and roles.roles_by_user([ann.id]) == {}
    removed = roles.remove_mapping(CLI, "Engineering", "api-admin")
    assert not removed.changed  # removing an absent mapping changes nothing


def test_roles_unknown_role_is_invalid_value(store) -> None:
    with pytest.raises(InvalidValue):
        roles.add_mapping(CLI, "Engineering", "no-such-role", CATALOG)


def test_roles_event_snapshots_and_resources_agree_after_a_group_rename(make_user, make_group) -> None:
    """A mapping stays with its group's id; the event payload and the SCIM resource use the one query."""
    ann = make_user()
    roles.add_mapping(CLI, "Engineering", "api-admin", CATALOG)
    group = make_group("Engineering", [ann.id])
    groups.patch(CLI, group.id, patch_body({"op": "replace", "path": "displayName", "value": "Platform"}))
    resource = users.render(users.get(ann.id), BASE)
    snapshot = snapshots.users([ann.id])[ann.id]
    assert [r["value"] for r in resource["roles"]] == snapshot["roles"] == ["api-admin"]
    assert [(g["value"], g["display"]) for g in resource["groups"]] == \
        [(g["id"], g["displayName"]) for g in snapshot["groups"]] == [(group.id, "Platform")]
