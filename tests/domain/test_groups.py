"""Groups: unique names, members by id, membership changes, deletion (DESIGN "Users", "Roles")."""

from __future__ import annotations

import pytest

from skilljar_scim.base.errors import Conflict, InvalidValue, NotFound, TooMany
from skilljar_scim.domain import groups, roles, users
from skilljar_scim.domain.events import CLI
from skilljar_scim.store.models import Membership

from domain.support import BASE, CATALOG, actions, group_body, patch_body


def _member_ids(group_id: str) -> list[str]:
    return sorted(m["value"] for m in groups.render(groups.get(group_id), BASE).get("members", []))


def test_groups_create_with_members_records_each_membership(make_user, make_group) -> None:
    ann, bob = make_user("ann@example.com"), make_user("bob@example.com")
    group = make_group("Engineering", [ann.id, bob.id])
    assert _member_ids(group.id) == sorted([ann.id, bob.id])
    assert actions(group.id)[0] == "group.created" and actions(group.id).count("membership.added") == 2


def test_groups_display_name_is_unique_case_insensitively(make_group) -> None:
    make_group("Engineering")
    with pytest.raises(Conflict):
        groups.create(CLI, group_body("ENGINEERING"))


@pytest.mark.parametrize("member", ["no-such-user", "deleted"])
def test_groups_unknown_or_deprovisioned_member_is_invalid_value(make_user, make_group, member) -> None:
    if member == "deleted":
        gone = make_user("gone@example.com")
        users.delete(CLI, gone.id)
        member = gone.id
    with pytest.raises(InvalidValue):
        make_group("Engineering", [member])
    assert Membership.select().count() == 0


def test_groups_patch_adds_and_removes_members_and_skips_repeats(make_user, make_group) -> None:
    ann, bob = make_user("ann@example.com"), make_user("bob@example.com")
    group = make_group("Engineering", [ann.id])
    groups.patch(CLI, group.id, patch_body({"op": "add", "path": "members", "value": [{"value": ann.id}, {"value": bob.id}]}))
    assert _member_ids(group.id) == sorted([ann.id, bob.id])
    groups.patch(CLI, group.id, patch_body({"op": "remove", "path": f'members[value eq "{ann.id}"]'}))
    assert _member_ids(group.id) == [bob.id]


def test_groups_more_members_than_the_limit_is_too_many(make_user, make_group) -> None:
    ids = [make_user(f"u{i}@example.com").id for i in range(3)]
    group = make_group("Engineering")
    with pytest.raises(TooMany):
        groups.patch(CLI, group.id, patch_body({"op": "add", "path": "members", "value": [{"value": i} for i in ids]}),
                     max_members=2)
    assert _member_ids(group.id) == []


def test_groups_delete_removes_the_group_and_the_roles_it_gave(make_user, make_group) -> None:
    ann = make_user()
    roles.add_mapping(CLI, "Engineering", "api-admin", CATALOG)
    group = make_group("Engineering", [ann.id])
    assert roles.roles_by_user([ann.id]) == {ann.id: ["api-admin"]}
    groups.delete(CLI, group.id)
    with pytest.raises(NotFound):
        groups.get(group.id)
    assert roles.roles_by_user([ann.id]) == {} and Membership.select().count() == 0
