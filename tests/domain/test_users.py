"""Users (DESIGN "Users"): uniqueness, returning people, deprovisioning, atomic PATCH, If-Match."""

from __future__ import annotations

import pytest

from skilljar_scim.base.errors import Conflict, InvalidValue, NotFound, PreconditionFailed
from skilljar_scim.domain import groups, roles, users
from skilljar_scim.domain.events import CLI
from skilljar_scim.scim.etags import etag
from skilljar_scim.store.models import User

from domain.support import BASE, CATALOG, actions, patch_body, user_body


def test_users_create_stores_the_user_and_records_it(make_user) -> None:
    user = make_user("alice@example.com", externalId="ext-1", displayName="Alice")
    stored = users.get(user.id)
    assert (stored.user_name, stored.external_id, stored.display_name, stored.active) == \
        ("alice@example.com", "ext-1", "Alice", True)
    assert actions(user.id) == ["user.created"]


@pytest.mark.parametrize("clash", [{"user_name": "ALICE@example.com"}, {"user_name": "other@example.com", "externalId": "ext-1"}])
def test_users_create_matching_an_active_person_is_conflict(make_user, clash) -> None:
    make_user("alice@example.com", externalId="ext-1")
    with pytest.raises(Conflict):
        users.create(CLI, user_body(**clash))
    assert User.select().count() == 1


def _leave(user: User, how: str) -> None:
    if how == "deleted":
        users.delete(CLI, user.id)
    else:
        users.patch(CLI, user.id, patch_body({"op": "replace", "value": {"active": False}}))


@pytest.mark.parametrize("how", ["deleted", "deactivated"])
@pytest.mark.parametrize("match", [{"user_name": "Alice@Example.COM"}, {"user_name": "alice.new@example.com", "externalId": "ext-1"}])
def test_users_create_returning_person_gets_the_same_account(make_user, make_group, how, match) -> None:
    """A POST matching a deactivated or deprovisioned account brings that account back (DESIGN "Users")."""
    first = make_user("alice@example.com", externalId="ext-1", title="Engineer")
    make_group("Engineering", [first.id])
    _leave(first, how)
    again = users.create(CLI, user_body(**match, displayName="Back"))
    assert again.reactivated and again.user.id == first.id and User.select().count() == 1
    back = users.get(first.id)
    assert back.active and back.user_name == match["user_name"] and back.display_name == "Back"
    rendered = users.render(back, BASE)
    assert "title" not in rendered  # attributes are replaced from the payload, not merged
    assert ("groups" in rendered) == (how == "deactivated")  # deprovisioning dropped the memberships
    assert actions(first.id)[-1] == "user.reactivated"


def test_users_create_matching_two_accounts_is_conflict_and_changes_nothing(make_user) -> None:
    alice, bob = make_user("alice@example.com", externalId="ext-a"), make_user("bob@example.com", externalId="ext-b")
    users.delete(CLI, alice.id)
    users.delete(CLI, bob.id)
    with pytest.raises(Conflict) as caught:
        users.create(CLI, user_body("alice@example.com", externalId="ext-b"))
    assert alice.id in caught.value.detail and bob.id in caught.value.detail
    assert User.select().where(User.deprovisioned_at.is_null()).count() == 0


def test_users_delete_hides_the_user_and_drops_memberships_and_roles(make_user, make_group) -> None:
    alice = make_user()
    roles.add_mapping(CLI, "Engineering", "api-admin", CATALOG)
    group = make_group("Engineering", [alice.id])
    assert roles.roles_by_user([alice.id]) == {alice.id: ["api-admin"]}
    users.delete(CLI, alice.id)
    with pytest.raises(NotFound):
        users.get(alice.id)
    assert roles.roles_by_user([alice.id]) == {}
    assert "members" not in groups.render(groups.get(group.id), BASE)
    assert User.get_by_id(alice.id).user_name == "alice@example.com"  # the history stays


def test_users_deactivated_user_keeps_groups_but_holds_no_roles(make_user, make_group) -> None:
    alice = make_user()
    roles.add_mapping(CLI, "Engineering", "api-admin", CATALOG)
    make_group("Engineering", [alice.id])
    users.patch(CLI, alice.id, patch_body({"op": "replace", "path": "active", "value": False}))
    assert users.groups_of(users.get(alice.id)) and roles.roles_by_user([alice.id]) == {}
    assert actions(alice.id)[-2:] == ["user.deactivated", "role.revoked"]


def test_users_patch_is_all_or_nothing(make_user) -> None:
    """RFC 7644 §3.5.2: if one operation fails, none is applied."""
    alice = make_user(displayName="Alice")
    body = patch_body({"op": "replace", "path": "displayName", "value": "Changed"},
                      {"op": "replace", "path": "active", "value": "not a boolean"})
    with pytest.raises(InvalidValue):
        users.patch(CLI, alice.id, body)
    assert users.get(alice.id).display_name == "Alice" and users.get(alice.id).version == alice.version


def test_users_stale_if_match_is_precondition_failed_and_changes_nothing(make_user) -> None:
    alice = make_user()
    stale = etag(alice)
    users.patch(CLI, alice.id, patch_body({"op": "replace", "path": "title", "value": "One"}))
    with pytest.raises(PreconditionFailed):
        users.replace(CLI, alice.id, user_body("alice@example.com", title="Two"), if_match=stale)
    assert users.render(users.get(alice.id), BASE)["title"] == "One"
    users.replace(CLI, alice.id, user_body("alice@example.com", title="Two"), if_match=etag(users.get(alice.id)))
    assert users.render(users.get(alice.id), BASE)["title"] == "Two"


def test_users_unchanged_replace_keeps_the_version(make_user) -> None:
    """IdPs resend unchanged values; the version (ETag) moves only on a real change."""
    alice = make_user(displayName="Alice")
    again = users.replace(CLI, alice.id, user_body("alice@example.com", displayName="Alice"))
    assert again.version == alice.version
