"""Role catalog, group-to-role mappings, effective roles with their provenance, previews.

A mapping joins a group *name* (by base/textkey, so it can exist before the IdP pushes the
group) to a dashboard role, and is pinned to the first group that has that name: by id,
when the mapping is added (if the group exists) or when the group is pushed or renamed to
that name. From then on the mapping grants through that group only, whatever its name
(a rename by the IdP keeps the roles: it is the same group). Another group that later takes
the name gets nothing, and a `mapping.conflict` event says so, until an admin rebinds the
mapping (`rebind`) or removes and adds it. A user's roles are the union over the pinned
groups they belong to; a deactivated or deprovisioned user has none.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from typing import Iterable


from skilljar_scim.base import clock, textkey
from skilljar_scim.domain import events
from skilljar_scim.base.errors import InvalidValue, NotFound
from skilljar_scim.domain.events import Actor
from skilljar_scim.store import sqlcache
from skilljar_scim.store.db import write_transaction
from skilljar_scim.store.models import Group, Membership, RoleMapping, User


@dataclass(frozen=True)
class Grant:
    """One reason a user holds a role: the group they are in and the mapping that maps it."""

    user_id: str
    role: str
    group_id: str
    group_name: str
    mapping_id: int


@dataclass(frozen=True)
class Change:
    """A role a user gains or loses."""

    user_id: str
    user_name: str
    role: str
    change: str  # "gain" or "lose"


@dataclass
class Outcome:
    """What a mapping command did (or, for a preview, would do)."""

    added: list[tuple[str, str]] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)
    rebound: list[tuple[str, str]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.rebound)


def check_role(role: str, catalog: dict[str, str]) -> str:
    """Return `role` if the catalog has it; else raise InvalidValue listing the valid ones."""
    if role not in catalog:
        raise InvalidValue(f"unknown role {role!r}; valid roles: {', '.join(sorted(catalog))}")
    return role


def known_roles(catalog: dict[str, str]) -> list[str]:
    """Return every role a user can hold: the catalog's, and any still mapped outside it."""
    mapped = {r for (r,) in RoleMapping.select(RoleMapping.role).distinct().tuples()}
    return sorted(set(catalog) | mapped)


def uncatalogued(catalog: dict[str, str]) -> list[tuple[str, str]]:
    """Return the (group, role) mappings whose role is missing from the catalog (still granted)."""
    query = RoleMapping.select(RoleMapping.group_name, RoleMapping.role).where(RoleMapping.role.not_in(list(catalog)))
    return sorted(query.tuples())


def check_group_name(name: str) -> str:
    """Return a group name as IdPs send it, trimmed; refuse an empty one."""
    name = (name or "").strip()
    if not name or not name.isprintable():
        raise InvalidValue("a group name must be a non-empty printable string")
    return name


# --- effective roles ------------------------------------------------------------------


def grants(user_ids: Iterable[str] | None = None) -> list[Grant]:
    """Return every grant of active, provisioned users (of `user_ids` when given)."""
    if user_ids is None:
        return [Grant(*row) for row in _grants_query().tuples()]
    rows = sqlcache.listed("grants", lambda _, ids: _grants_query(ids).tuples(), list(user_ids))
    return [Grant(*row) for row in rows]


def _grants_query(user_ids: list | None = None):
    query = (
        Membership.select(Membership.user, RoleMapping.role, Group.id, Group.display_name, RoleMapping.id)
        .join(Group)
        .join(RoleMapping, on=(RoleMapping.group_id == Group.id))
        .switch(Membership)
        .join(User)
        .where(User.active == True, User.deprovisioned_at.is_null())  # noqa: E712
        .order_by(Membership.user, RoleMapping.role, Group.display_name_key)
    )
    return query if user_ids is None else query.where(Membership.user.in_(user_ids))


def roles_by_user(user_ids: Iterable[str]) -> dict[str, list[str]]:
    """Return each user's sorted roles (users without roles are absent)."""
    found: dict[str, set[str]] = {}
    for grant in grants(list(user_ids)):
        found.setdefault(grant.user_id, set()).add(grant.role)
    return {user: sorted(roles) for user, roles in found.items()}


def snapshot(user_ids: Iterable[str]) -> dict[str, set[str]]:
    """Capture roles before a change, for record_changes()."""
    ids = list(user_ids)
    current = roles_by_user(ids)
    return {u: set(current.get(u, ())) for u in ids}


def record_changes(actor: Actor, before: dict[str, set[str]], reason: str) -> list[Change]:
    """Record role.granted / role.revoked for what changed since `before`; return the changes."""
    after = snapshot(before)
    changed = [u for u, old in before.items() if after[u] != old]
    names = _user_names(changed)  # no query when nothing changed (most writes)
    changes = [c for u in changed for c in _diff(u, names.get(u, u), before[u], after[u])]
    _record(actor, changes, reason)
    return changes


def record_user_change(actor: Actor, user_id: str, user_name: str, before: set[str], after: set[str],
                       reason: str, snapshot: dict) -> list[Change]:
    """Record role events for one user whose roles the caller knows before and after (a user write).

    `snapshot`: the user as the write left it (snapshots.written_user), each event's feed payload with its change.
    """
    changes = _diff(user_id, user_name, before, after)
    _record(actor, changes, reason, snapshot)
    return changes


def _diff(user_id: str, user_name: str, before: set[str], after: set[str]) -> list[Change]:
    return ([Change(user_id, user_name, r, "gain") for r in sorted(after - before)]
            + [Change(user_id, user_name, r, "lose") for r in sorted(before - after)])


def _record(actor: Actor, changes: list[Change], reason: str, snapshot: dict | None = None) -> None:
    for change in changes:
        action = "role.granted" if change.change == "gain" else "role.revoked"
        summary = {"role": change.role, "reason": reason}
        events.record(actor, action, "User", change.user_id, summary,
                      snapshot=None if snapshot is None else {**snapshot, "change": summary})


def touch_users(user_ids: Iterable[str]) -> None:
    """Give users a new version: their computed `groups` or `roles` changed (RFC 7644 §3.14)."""
    ids = list(user_ids)
    if ids:
        sqlcache.listed("users.touch", lambda fixed, listed: User.update(version=User.version + 1, updated_at=fixed[0])
                        .where(User.id.in_(listed)), ids, [User.updated_at.db_value(clock.utcnow())], write=True)


def _user_names(user_ids: Iterable[str]) -> dict[str, str]:
    ids = list(user_ids)
    if not ids:
        return {}
    return dict(sqlcache.listed("user_names", lambda _, listed: User.select(User.id, User.user_name)
                                .where(User.id.in_(listed)).tuples(), ids))


def _members_concerned(group_keys: Iterable[str]) -> set[str]:
    """Return the members of the groups that mappings of these names bind to now or would bind to."""
    keys = list(set(group_keys))
    if not keys:
        return set()
    pinned = RoleMapping.select(RoleMapping.group_id).where(RoleMapping.group_key.in_(keys))
    named = Group.select(Group.id).where(Group.display_name_key.in_(keys))
    query = Membership.select(Membership.user).where(Membership.group.in_(pinned) | Membership.group.in_(named))
    return {u for (u,) in query.tuples()}


# --- pinning a mapping to its group ----------------------------------------------------


def bind_group(actor: Actor, group: Group) -> None:
    """Pin the unpinned mappings of a group's name to it; record a conflict for those pinned elsewhere.

    Call inside the transaction that creates or renames the group, before its members change.
    """
    for mapping in RoleMapping.select().where(RoleMapping.group_key == group.display_name_key):
        if mapping.group_id is None:
            _bind(actor, mapping, group, "group matched")
        elif mapping.group_id != group.id:
            events.record(actor, "mapping.conflict", "Mapping", str(mapping.id), {
                "group": mapping.group_name, "role": mapping.role, "pinned_group_id": mapping.group_id,
                "group_id": group.id, "displayName": group.display_name})


def _bind(actor: Actor, mapping: RoleMapping, group: Group, reason: str) -> None:
    """Pin one mapping to `group` and record it."""
    previous = mapping.group_id
    mapping.group_id = group.id
    RoleMapping.update(group_id=group.id).where(RoleMapping.id == mapping.id).execute()
    events.record(actor, "mapping.bound", "Mapping", str(mapping.id), {
        "group": mapping.group_name, "role": mapping.role, "group_id": group.id, "displayName": group.display_name,
        "previous_group_id": previous, "reason": reason})


def rebind(actor: Actor, group: str, preview: bool = False) -> Outcome:
    """Pin every mapping of a name to the group that has that name now: an admin's decision."""
    name = check_group_name(group)
    key = textkey.key(name)
    with write_transaction() as transaction:
        target = Group.get_or_none(Group.display_name_key == key)
        if target is None:
            raise NotFound(f"no group is named {name!r} now: nothing to pin its mappings to")
        mappings = list(RoleMapping.select().where(RoleMapping.group_key == key).order_by(RoleMapping.role))
        if not mappings:
            raise NotFound(f"no mapping names {name!r}")
        before = snapshot(_members_concerned([key]))
        outcome = Outcome()
        for mapping in (m for m in mappings if m.group_id != target.id):
            _bind(actor, mapping, target, "rebind")
            outcome.rebound.append((mapping.group_name, mapping.role))
        outcome.changes = record_changes(actor, before, "mapping")
        touch_users({c.user_id for c in outcome.changes})
        if preview:
            transaction.rollback()
    return outcome


# --- mappings -------------------------------------------------------------------------


def list_mappings(catalog: dict[str, str]) -> list[dict]:
    """Return every mapping with the group it is pinned to, that group's member count, its
    state, and whether its role is in the catalog (a mapping outside it still grants, and is flagged).

    status: "waiting" (no group of its name yet), "pinned", "renamed" (the pinned group has
    another name now), "group deleted", or "conflict" (another group has its name now).
    """
    rows = []
    for mapping in RoleMapping.select().order_by(RoleMapping.group_key, RoleMapping.role):
        pinned = Group.get_or_none(Group.id == mapping.group_id) if mapping.group_id else None
        named = Group.get_or_none(Group.display_name_key == mapping.group_key)
        members = Membership.select().where(Membership.group == pinned.id).count() if pinned else 0
        rows.append({
            "id": mapping.id, "group": mapping.group_name, "role": mapping.role, "group_id": mapping.group_id,
            "pinned_group": pinned.display_name if pinned else None, "status": _status(mapping, pinned, named),
            "conflict_group_id": named.id if named and named.id != mapping.group_id else None,
            "member_count": members, "in_catalog": mapping.role in catalog, "created_at": mapping.created_at,
        })
    return rows


def _status(mapping: RoleMapping, pinned: Group | None, named: Group | None) -> str:
    if named is not None and named.id != mapping.group_id:
        return "conflict"
    if mapping.group_id is None:
        return "waiting"
    if pinned is None:
        return "group deleted"
    return "renamed" if pinned.display_name_key != mapping.group_key else "pinned"


def add_mapping(actor: Actor, group: str, role: str, catalog: dict[str, str], preview: bool = False) -> Outcome:
    """Map `group` to `role`; adding an existing mapping changes nothing."""
    return _apply(actor, [(check_group_name(group), check_role(role, catalog))], [], preview)


def remove_mapping(actor: Actor, group: str, role: str, preview: bool = False) -> Outcome:
    """Remove the mapping of `group` to `role`; removing an absent one changes nothing."""
    return _apply(actor, [], [(check_group_name(group), role)], preview)


def _apply(actor: Actor, add: list[tuple[str, str]], remove: list[tuple[str, str]], preview: bool) -> Outcome:
    """Apply mapping changes in one transaction; with `preview`, report and roll back."""
    with write_transaction() as transaction:
        affected = _members_concerned(textkey.key(g) for g, _ in add + remove)
        before = snapshot(affected)
        outcome = Outcome()
        outcome.added = [m for m in add if _insert(actor, *m)]
        outcome.removed = [m for m in remove if _delete(actor, *m)]
        outcome.changes = record_changes(actor, before, "mapping")
        touch_users({c.user_id for c in outcome.changes})
        if preview:
            transaction.rollback()
    return outcome


def _insert(actor: Actor, group: str, role: str) -> bool:
    key = textkey.key(group)
    if RoleMapping.select().where(RoleMapping.group_key == key, RoleMapping.role == role).exists():
        return False
    mapping = RoleMapping.create(group_key=key, group_name=group, role=role, created_at=clock.utcnow())
    events.record(actor, "mapping.added", "Mapping", str(mapping.id), {"group": group, "role": role})
    named = Group.get_or_none(Group.display_name_key == key)
    if named is not None:
        _bind(actor, mapping, named, "mapping added")
    return True


def _delete(actor: Actor, group: str, role: str) -> bool:
    mapping = RoleMapping.get_or_none(RoleMapping.group_key == textkey.key(group), RoleMapping.role == role)
    if mapping is None:
        return False
    mapping.delete_instance()
    events.record(actor, "mapping.removed", "Mapping", str(mapping.id),
                  {"group": group, "role": role, "group_id": mapping.group_id})
    return True


# --- export / import ------------------------------------------------------------------


def export(fmt: str = "toml") -> str:
    """Return every mapping as TOML or JSON: {group name: [roles]}."""
    grouped: dict[str, list[str]] = {}
    for mapping in RoleMapping.select().order_by(RoleMapping.group_key, RoleMapping.role):
        grouped.setdefault(mapping.group_name, []).append(mapping.role)
    if fmt == "json":
        return json.dumps({"mappings": grouped}, indent=2, ensure_ascii=False) + "\n"
    lines = ["# skilljar-scim role mappings: IdP group name = [dashboard roles]", "[mappings]"]
    lines += [f"{json.dumps(group, ensure_ascii=False)} = {json.dumps(roles)}" for group, roles in grouped.items()]
    return "\n".join(lines) + "\n"


def parse_mappings(text: str, fmt: str, catalog: dict[str, str]) -> list[tuple[str, str]]:
    """Parse an exported mapping file; every line must be valid or nothing is imported."""
    try:
        data = json.loads(text) if fmt == "json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise InvalidValue(f"not a valid {fmt.upper()} mapping file: {exc}") from None
    table = data.get("mappings") if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise InvalidValue('a mapping file needs a "mappings" table of group = [roles]')
    pairs = []
    for group, roles in table.items():
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidValue(f"group {group!r}: roles must be a list of role names")
        pairs += [(check_group_name(group), check_role(role, catalog)) for role in roles]
    return list(dict.fromkeys(pairs))


def import_mappings(actor: Actor, pairs: list[tuple[str, str]], replace: bool, preview: bool) -> Outcome:
    """Add the listed mappings (and with `replace` remove the others) all-or-nothing."""
    wanted = {(textkey.key(g), r) for g, r in pairs}
    stale = []
    if replace:
        stale = [(m.group_name, m.role) for m in RoleMapping.select() if (m.group_key, m.role) not in wanted]
    return _apply(actor, pairs, stale, preview)


def explain(user: User) -> list[Grant]:
    """Return why a user holds each of their roles (empty when inactive or deprovisioned)."""
    return grants([user.id])


