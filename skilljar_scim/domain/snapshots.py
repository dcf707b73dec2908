"""What an event's `data` holds: the affected resource as the change left it (the feed's payload).

Captured when the event is recorded, inside the transaction that made the change, so a
consumer that keeps, per resource, the state of the newest event id it has applied ends in
the right state whatever the order or repetition of deliveries. Built from the store's rows
(never a SCIM rendering with a password or hash in it) and only from the fields listed here.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from skilljar_scim.domain import memberships
from skilljar_scim.store import sqlcache
from skilljar_scim.store.models import Group, Token, User

# The user attributes a snapshot copies from the stored SCIM document, when present.
USER_ATTRIBUTES = ("userName", "name", "emails", "title", "locale", "timezone")
PURGED = {"state": "purged"}  # what purge leaves of a snapshot that named the person


def purged(user_id: str | None) -> dict[str, Any]:
    """Return the snapshot of a user that no longer exists: `user.purged` names the id to erase."""
    return {"id": user_id, **PURGED} if user_id else dict(PURGED)
CHUNK = 500  # ids per IN list


_USER_COLUMNS = (User.id, User.attributes, User.external_id, User.display_name, User.active, User.deprovisioned_at)


def users(user_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Return each existing user's snapshot: core attributes, active, state, roles and groups."""
    ids = list(dict.fromkeys(user_ids))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        rows = sqlcache.listed("snapshot.users", lambda _, listed: User.select(*_USER_COLUMNS)
                               .where(User.id.in_(listed)), chunk)
        groups, held = _groups_and_roles(chunk)
        found.update({row[0]: user(row, groups.get(row[0], []), held.get(row[0], [])) for row in rows})
    return found


def written_user(written: User, groups: list[tuple[str, str]], roles: list[str],
                 stored: dict | None = None) -> dict[str, Any]:
    """Return the snapshot of a user instance just written, with its groups (id, displayName) and roles.

    The same as users() would read back in the same transaction, without reading it back.
    `stored`: the document the write serialised into `attributes`, so it is not parsed again.
    """
    row = tuple(getattr(written, column.name) for column in _USER_COLUMNS)
    return user(row, [{"id": gid, "displayName": name} for gid, name in groups], roles, stored)


def user(row: tuple, groups: list[dict[str, str]], roles: list[str], stored: dict | None = None) -> dict[str, Any]:
    """Return one user's snapshot from a row of _USER_COLUMNS; roles only while active and provisioned."""
    user_id, attributes, external_id, display_name, active, deprovisioned_at = row
    stored = json.loads(attributes or "{}") if stored is None else stored
    snapshot: dict[str, Any] = {"id": user_id}
    snapshot.update({k: stored[k] for k in USER_ATTRIBUTES if k in stored})
    snapshot["externalId"] = external_id
    snapshot["displayName"] = display_name  # the SCIM displayName, else the name's parts
    snapshot["state"] = state(bool(active), deprovisioned_at is not None)
    snapshot["active"] = snapshot["state"] == "active"
    snapshot["roles"] = roles if snapshot["active"] else []
    snapshot["groups"] = groups
    return snapshot


def state(active: bool, deprovisioned: bool) -> str:
    """Return "deprovisioned" (DELETEd), "inactive" (active=false) or "active"."""
    if deprovisioned:
        return "deprovisioned"
    return "active" if active else "inactive"


def _groups_and_roles(user_ids: list[str]) -> tuple[dict[str, list[dict]], dict[str, list[str]]]:
    """Return each user's groups ({id, displayName}, by name) and the sorted roles those groups map."""
    groups, held = memberships.groups_and_roles(user_ids)
    return {u: [{"id": gid, "displayName": name} for gid, name in found] for u, found in groups.items()}, held


def group(group_id: str, fallback: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return a group's snapshot; a deleted one's from `fallback` (its last summary).

    No members and no member count: counting costs the group's size, and a change to a group
    costs the same at any size (DESIGN: SCIM). membership.* events report each join and leave.
    """
    row = Group.get_or_none(Group.id == group_id)
    if row is None:
        known = fallback or {}
        return {"id": group_id, "displayName": known.get("displayName"), "externalId": known.get("externalId"),
                "state": "deleted"}
    return {"id": row.id, "displayName": row.display_name, "externalId": row.external_id, "state": "active"}


def group_ref(group_id: str, name: str | None = None) -> dict[str, Any]:
    """Return {id, displayName} of a membership event's group (its name from the summary when it has one)."""
    if name is None:
        row = Group.get_or_none(Group.id == group_id)
        name = row.display_name if row else None
    return {"id": group_id, "displayName": name}


def token(token_id: str) -> dict[str, Any]:
    """Return a token's snapshot: never its value or hash."""
    row = Token.get_or_none(Token.id == token_id)
    if row is None:
        return {"id": token_id}
    return {"id": row.id, "name": row.name, "scope": row.scope,
            "revoked": row.revoked_at is not None}
