"""Groups and memberships. A membership change costs the same whatever the group's size."""

from __future__ import annotations

import copy
import json
import uuid

import peewee

from skilljar_scim.base import clock, textkey
from skilljar_scim.scim import documents
from skilljar_scim.domain import events, roles
from skilljar_scim.base.errors import Conflict, InvalidValue, NotFound, TooMany
from skilljar_scim.domain.events import Actor
from skilljar_scim.scim import filter as scim_filter
from skilljar_scim.scim import patch as scim_patch
from skilljar_scim.scim import resources
from skilljar_scim.scim.patch import MemberChange
from skilljar_scim.scim.resources import Bounds
from skilljar_scim.scim.schemas import GROUP_SCHEMA, GROUP_TYPE
from skilljar_scim.domain.search.query import Page, Query, Source, run
from skilljar_scim.domain.search import sql
from skilljar_scim.store import sqlcache
from skilljar_scim.store.db import write_transaction
from skilljar_scim.store.models import Group, Membership, RoleMapping, User
from skilljar_scim.scim.etags import check_if_match, etag

COMPUTED = ("id", "meta", "schemas", "members")
_MEMBER_KEYS = (textkey.key("members"), textkey.key(f"{GROUP_SCHEMA.id}:members"))


def get(group_id: str) -> Group:
    """Return a group, or raise NotFound."""
    group = sqlcache.first("group.by_id", lambda: Group.select().where(Group.id == sqlcache.param(0)), [group_id])
    if group is None:
        raise NotFound(f"Group {group_id} not found")
    return group


def create(actor: Actor, body: object, max_members: int = 1000, bounds: Bounds = Bounds()) -> Group:
    """Create a group with its initial members (RFC 7644 §3.3)."""
    data = _normalise(body, bounds)
    members = _ids(body, data.pop("members", []))
    _check_count(len(members), max_members)
    with write_transaction():
        group = _write(Group(id=str(uuid.uuid4()), created_at=clock.utcnow(), version=0), data, True)
        events.record(actor, "group.created", "Group", group.id, {"displayName": group.display_name})
        roles.bind_group(actor, group)  # before the members come, so their roles are recorded
        _add(actor, group, members)
        return group


def replace(actor: Actor, group_id: str, body: object, if_match: str | None = None, max_members: int = 1000,
            bounds: Bounds = Bounds()) -> Group:
    """Replace a group's attributes and members with the body (RFC 7644 §3.5.1)."""
    documents.check_body_id(body, group_id)
    data = _normalise(body, bounds)
    members = _ids(body, data.pop("members", []))
    _check_count(len(members), max_members)
    with write_transaction():
        group = check_if_match(get(group_id), if_match)
        changed = _update(actor, group, data)
        changed |= _apply_members(actor, group, [MemberChange("replace", tuple(members))])
        return _bump(group) if changed else group


def patch(actor: Actor, group_id: str, body: object, if_match: str | None = None,
          max_operations: int = 1000, max_members: int = 1000, bounds: Bounds = Bounds()) -> Group:
    """Apply a PatchOp atomically; member changes never load the member list (RFC 7644 §3.5.2)."""
    ops = scim_patch.parse(body, GROUP_TYPE, max_operations=max_operations, max_values=bounds.max_values)
    member_changes, rest = scim_patch.split_members(ops, GROUP_TYPE)
    _check_count(sum(len(c.ids) for c in member_changes), max_members)
    with write_transaction():
        group = check_if_match(get(group_id), if_match)
        changed = False
        if rest:
            current = {**documents.load(group), "id": group.id}
            data = _normalise(documents.strip(scim_patch.apply(current, rest, GROUP_TYPE), COMPUTED), bounds)
            changed = _update(actor, group, data)
        changed |= _apply_members(actor, group, member_changes)
        return _bump(group) if changed else group


def _normalise(body: object, bounds: Bounds) -> dict:
    """Validate a body into canonical form; refuse indexed values too long to index, or a resource out of bounds."""
    data = resources.normalise(GROUP_TYPE, body)
    resources.check_bounds(GROUP_TYPE, data, bounds)
    sql.check_indexable("displayName", data["displayName"])
    sql.check_indexable("externalId", data.get("externalId"))
    return data


def delete(actor: Actor, group_id: str, if_match: str | None = None) -> None:
    """Delete a group and its memberships (RFC 7644 §3.6); users are untouched."""
    with write_transaction():
        group = check_if_match(get(group_id), if_match)
        count = Membership.select().where(Membership.group == group.id).count()
        _changing_whole_group(actor, group, {group.display_name_key}, "group deleted", group.delete_instance)
        events.record(actor, "group.deleted", "Group", group.id,
                      {"displayName": group.display_name, "externalId": group.external_id, "members": count})


def search(query: Query, base_url: str, with_members: bool = True,
           max_filter_length: int = 4096, max_filter_depth: int = 32) -> Page:
    """List the groups a query selects (RFC 7644 §3.4.2); members are read only when needed."""
    needed = with_members or _evaluates_members(query, max_filter_length, max_filter_depth)
    return run(_source(base_url, needed), query, max_filter_length, max_filter_depth)


def _evaluates_members(query: Query, max_filter_length: int, max_filter_depth: int) -> bool:
    """Say whether filtering or sorting reads members in Python, so they must be rendered (RFC 7644 §3.4.2.2)."""
    if query.sort_by and query.sort_by.lower().rsplit(":", 1)[-1].split(".")[0] == "members":
        return True
    if not query.filter or not query.filter.strip():
        return False
    node = scim_filter.parse(query.filter, GROUP_TYPE, max_length=max_filter_length, max_depth=max_filter_depth)
    source = _source("", False)
    return not sql.split(node, source.columns, source.subqueries)[1] and _names_members(node)


def _names_members(node: scim_filter.Node) -> bool:
    """Say whether any comparison in a filter is on members."""
    if isinstance(node, (scim_filter.And, scim_filter.Or)):
        return _names_members(node.left) or _names_members(node.right)
    if isinstance(node, scim_filter.Not):
        return _names_members(node.inner)
    return node.path.attribute.name == "members"


def render(group: Group, base_url: str, with_members: bool = True) -> dict:
    """Return the full canonical SCIM resource of one group."""
    return render_many([group], base_url, with_members)[0]


def render_many(groups: list[Group], base_url: str, with_members: bool = True) -> list[dict]:
    """Render groups; members are read only when `with_members` (excludedAttributes=members)."""
    members = _members_of([g.id for g in groups], base_url) if with_members else {}
    return [_render(g, members.get(g.id, []), base_url) for g in groups]


def _render(group: Group, members: list[dict], base_url: str) -> dict:
    # `schemas` too, so a filter on it sees what the response shows (RFC 7643 §3).
    doc = {"id": group.id, "schemas": [GROUP_SCHEMA.id], **documents.load(group)}
    if members:
        doc["members"] = members
    doc["meta"] = {
        "resourceType": "Group",
        "created": clock.iso(group.created_at),
        "lastModified": clock.iso(group.updated_at),
        "location": f"{base_url}/Groups/{group.id}",
        "version": etag(group),
    }
    return doc


def _members_of(group_ids: list[str], base_url: str) -> dict[str, list[dict]]:
    if not group_ids:
        return {}
    rows = (
        Membership.select(Membership.group, User.id, User.display_name, User.user_name)
        .join(User)
        .where(Membership.group.in_(group_ids))
        .order_by(Membership.group, User.user_name_key)
        .tuples()
    )
    found: dict[str, list[dict]] = {}
    for group_id, user_id, display, user_name in rows:
        member = {"value": user_id, "$ref": f"{base_url}/Users/{user_id}", "display": display or user_name, "type": "User"}
        found.setdefault(group_id, []).append(member)
    return found


def _check_count(count: int, limit: int) -> None:
    if count > limit:
        raise TooMany(f"at most {limit} members may be changed in one request, got {count}")


def _ids(body: dict, members: list[dict]) -> list[str]:
    """Return member ids; a member sent without a value is refused, not dropped (RFC 7643 §4.2)."""
    sent = next((v for k, v in body.items() if textkey.key(k) in _MEMBER_KEYS), None) or []
    ids = [m.get("value") for m in members]
    if len(ids) != len([m for m in sent if m is not None]) or not all(isinstance(i, str) and i for i in ids):
        raise InvalidValue("every member needs a \"value\": the id of a User")
    for member in members:
        scim_patch.check_member_type(member)
    return list(dict.fromkeys(ids))


def _update(actor: Actor, group: Group, data: dict) -> bool:
    before = documents.load(group)
    if data == before:
        return False
    if data["displayName"] == group.display_name:
        _write(group, data, False)
    else:  # members' `groups` show the new name, and a waiting mapping may name the new one
        keys = {group.display_name_key, textkey.key(data["displayName"])}
        _changing_whole_group(actor, group, keys, "group renamed",
                              lambda: roles.bind_group(actor, _write(group, data, False)))
    changed = sorted(k for k in set(before) | set(data) if before.get(k) != data.get(k))
    events.record(actor, "group.updated", "Group", group.id, {"displayName": group.display_name, "changed": changed})
    return True


def _write(group: Group, data: dict, is_new: bool) -> Group:
    data = copy.deepcopy(data)
    group.display_name = data["displayName"]
    group.display_name_key = textkey.key(data["displayName"])
    group.external_id = data.get("externalId")
    group.attributes = json.dumps(data, ensure_ascii=False, sort_keys=True)
    if is_new:
        group.version, group.updated_at = 1, clock.utcnow()
    try:
        with Group._meta.database.atomic():
            group.save(force_insert=is_new)
    except peewee.IntegrityError:
        raise Conflict(f"a group named {group.display_name!r} already exists") from None
    return group


def _bump(group: Group) -> Group:
    """Give the group a new version: its attributes or members changed."""
    now = clock.utcnow()
    sqlcache.run("group.bump", lambda: Group.update(version=Group.version + 1, updated_at=sqlcache.param(0))
                 .where(Group.id == sqlcache.param(1)), [Group.updated_at.db_value(now), group.id])
    group.version += 1
    group.updated_at = now
    return group


def _apply_members(actor: Actor, group: Group, changes: list[MemberChange]) -> bool:
    changed = False
    for change in changes:
        if change.kind in ("replace", "remove_all"):
            changed |= _remove(actor, group, None, keep=change.ids if change.kind == "replace" else ())
        if change.kind in ("add", "replace"):
            changed |= _add(actor, group, list(change.ids))
        if change.kind == "remove":
            changed |= _remove(actor, group, list(change.ids))
    return changed


def _add(actor: Actor, group: Group, ids: list[str]) -> bool:
    """Add users by id; ids already members are skipped; unknown ids are 400 invalidValue."""
    if not ids:
        return False
    known = {u for (u,) in sqlcache.listed("group.known_users", lambda _, listed: User.select(User.id).where(
        User.id.in_(listed), User.deprovisioned_at.is_null()).tuples(), ids)}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise InvalidValue(f"no such User for member value(s): {', '.join(unknown[:10])}")
    already = {u for (u,) in _members_among(group, ids)}
    new = [i for i in ids if i not in already]
    if new:
        now = clock.utcnow()
        rows = [{"group": group.id, "user": i, "created_at": now} for i in new]
        # A concurrent add of the same member (PostgreSQL, READ COMMITTED) must not fail the request.
        _changing_members(actor, new, "membership", lambda: sqlcache.insert(Membership, rows, ignore_conflicts=True))
        _record_members(actor, "membership.added", group, new)
    return bool(new)


def _remove(actor: Actor, group: Group, ids: list[str] | None, keep: tuple[str, ...] = ()) -> bool:
    """Remove the given members (absent ones are ignored), or all but `keep` when ids is None."""
    if ids is not None:
        gone = [u for (u,) in _members_among(group, ids)]
    else:
        query = Membership.select(Membership.user).where(Membership.group == group.id)
        gone = [u for (u,) in (query.where(Membership.user.not_in(list(keep))) if keep else query).tuples()]
    if gone:
        delete = lambda: sqlcache.listed("group.delete_members", lambda fixed, listed: Membership.delete().where(  # noqa: E731
            Membership.group == fixed[0], Membership.user.in_(listed)), gone, [group.id], write=True)
        _changing_members(actor, gone, "membership", delete)
        _record_members(actor, "membership.removed", group, gone)
    return bool(gone)


def _members_among(group: Group, ids: list[str]) -> list[tuple]:
    """Return (user id,) of those of `ids` who are members of `group`."""
    return sqlcache.listed("group.members_among", lambda fixed, listed: Membership.select(Membership.user).where(
        Membership.group == fixed[0], Membership.user.in_(listed)).tuples(), ids, [group.id])


def _changing_members(actor: Actor, user_ids: list[str], reason: str, change) -> None:
    """Run `change`; record the roles it grants or revokes; give the users new versions."""
    before = roles.snapshot(user_ids)
    change()
    roles.record_changes(actor, before, reason)
    roles.touch_users(user_ids)


def _changing_whole_group(actor: Actor, group: Group, keys: set[str], reason: str, change) -> None:
    """Run a change that affects every member (rename, delete): roles only if a mapping is pinned to
    the group or names one of `keys`."""
    members = Membership.select(Membership.user).where(Membership.group == group.id)
    concerned = (RoleMapping.group_id == group.id) | RoleMapping.group_key.in_(list(keys))
    if not RoleMapping.select().where(concerned).exists():
        User.update(version=User.version + 1, updated_at=clock.utcnow()).where(User.id.in_(members)).execute()
        change()
        return
    _changing_members(actor, [u for (u,) in members.tuples()], reason, change)


def _record_members(actor: Actor, action: str, group: Group, user_ids: list[str]) -> None:
    events.record_many(actor, action, "Group", [(group.id, {"group": group.display_name, "user": u}) for u in user_ids])


def _source(base_url: str, with_members: bool) -> Source:
    columns = {
        ("id", None): sql.Column(Group.id, sql.exact),
        ("displayname", None): sql.Column(Group.display_name_key, textkey.key),
        ("externalid", None): sql.Column(Group.external_id, sql.exact),
        ("meta", "created"): sql.Column(Group.created_at, sql.moment),
        ("meta", "lastmodified"): sql.Column(Group.updated_at, sql.moment),
    }
    member_match = sql.Subquery(
        lambda user: Group.id.in_(Membership.select(Membership.group).where(Membership.user == user)), sql.exact
    )
    return Source(
        rtype=GROUP_TYPE,
        base=lambda: Group.select(),
        columns=columns,
        subqueries={("members", "value"): member_match},
        sort_columns={
            None: Group.created_at,
            ("id", None): Group.id,
            ("displayname", None): Group.display_name_key,
            ("externalid", None): Group.external_id,
            ("meta", "created"): Group.created_at,
            ("meta", "lastmodified"): Group.updated_at,
        },
        tiebreak=Group.id,
        render=lambda rows: render_many(rows, base_url, with_members),
    )
