"""A user's groups and the roles those groups map: one query, for SCIM resources and event snapshots."""

from __future__ import annotations

import peewee

from skilljar_scim.store import sqlcache
from skilljar_scim.store.models import Group, Membership, RoleMapping


def groups_and_roles(user_ids: list[str]) -> tuple[dict[str, list[tuple[str, str]]], dict[str, list[str]]]:
    """Return each user's groups as (id, displayName), by name, and the sorted roles those groups map.

    Whether a user holds the roles (active and provisioned) is the caller's rule to apply.
    """
    if not user_ids:
        return {}, {}
    rows = sqlcache.listed("user.groups_and_roles", lambda _, listed: _query(listed), list(user_ids))
    groups: dict[str, list[tuple[str, str]]] = {}
    held: dict[str, set[str]] = {}
    for user_id, group_id, name, role in rows:
        listed = groups.setdefault(user_id, [])
        if not listed or listed[-1][0] != group_id:  # one row per mapped role of a group
            listed.append((group_id, name))
        if role is not None:
            held.setdefault(user_id, set()).add(role)
    return groups, {user_id: sorted(found) for user_id, found in held.items()}


def _query(user_ids: list) -> peewee.Query:
    return (
        Membership.select(Membership.user, Group.id, Group.display_name, RoleMapping.role)
        .join(Group)
        .join(RoleMapping, peewee.JOIN.LEFT_OUTER, on=(RoleMapping.group_id == Group.id))
        .where(Membership.user.in_(user_ids))
        .order_by(Membership.user, Group.display_name_key, Group.id)
        .tuples()
    )
