"""A user's groups and the roles those groups map: one query, for SCIM resources and event snapshots."""

from __future__ import annotations

import json

import peewee

from skilljar_scim.store import models, sqlcache
from skilljar_scim.store.models import Group, Membership, RoleMapping

COLUMN = "scim_memberships"  # the name of column()'s value on each row (and model instance) it reads

Groups = list[tuple[str, str]]  # (id, displayName), by name


def groups_and_roles(user_ids: list[str]) -> tuple[dict[str, Groups], dict[str, list[str]]]:
    """Return each user's groups as (id, displayName), by name, and the sorted roles those groups map.

    Whether a user holds the roles (active and provisioned) is the caller's rule to apply.
    """
    if not user_ids:
        return {}, {}
    rows = sqlcache.listed("user.groups_and_roles", lambda _, listed: _query(listed), list(user_ids))
    groups: dict[str, Groups] = {}
    held: dict[str, set[str]] = {}
    for user_id, group_id, name, role in rows:
        _fold(groups.setdefault(user_id, []), held.setdefault(user_id, set()), group_id, name, role)
    return groups, {user_id: sorted(found) for user_id, found in held.items() if found}


def _fold(groups: Groups, held: set[str], group_id: str, name: str, role: str | None) -> None:
    if not groups or groups[-1][0] != group_id:  # one row per mapped role of a group
        groups.append((group_id, name))
    if role is not None:
        held.add(role)


def _query(user_ids: list) -> peewee.Query:
    return (
        Membership.select(Membership.user, Group.id, Group.display_name, RoleMapping.role)
        .join(Group)
        .join(RoleMapping, peewee.JOIN.LEFT_OUTER, on=(RoleMapping.group_id == Group.id))
        .where(Membership.user.in_(user_ids))
        .order_by(Membership.user, Group.display_name_key, Group.id)
        .tuples()
    )


def column(user_id: peewee.Field) -> peewee.Alias:
    """Return a column holding the groups and mapped roles of the row's user (JSON): one statement reads both.

    On PostgreSQL each statement is a round trip to another process, so a lookup that read
    its user and then the user's groups paid for two (README "Performance").
    """
    postgres = isinstance(models.database.obj, peewee.PostgresqlDatabase)
    row = (peewee.fn.json_build_array if postgres else peewee.fn.json_array)(
        Group.id, Group.display_name, Group.display_name_key, RoleMapping.role)
    # PostgreSQL orders names by the database's collation, as _query does; SQLite's is binary,
    # which Python's string order matches, so unpack() sorts its rows there.
    listed = peewee.fn.json_agg(row).order_by(Group.display_name_key, Group.id) if postgres \
        else peewee.fn.json_group_array(row)
    found = (Membership.select(listed).join(Group)
             .join(RoleMapping, peewee.JOIN.LEFT_OUTER, on=(RoleMapping.group_id == Group.id))
             .where(Membership.user == user_id))
    return peewee.Alias(found, COLUMN)


def unpack(value: str | list | None) -> tuple[Groups, list[str]]:
    """Return (groups by name, sorted roles) from a value of column(): JSON text, or the list psycopg2 parsed."""
    if isinstance(value, str):  # SQLite: binary order is Python's (see column())
        rows = sorted(json.loads(value), key=lambda r: (r[2], r[0]))
    else:
        rows = value or []  # PostgreSQL: ordered by the aggregate; NULL when there are none
    groups: Groups = []
    held: set[str] = set()
    for group_id, name, _key, role in rows:
        _fold(groups, held, group_id, name, role)
    return groups, sorted(held)
