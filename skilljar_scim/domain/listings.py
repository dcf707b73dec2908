"""Read-side queries for people: find and list users and groups, stream long listings."""

from __future__ import annotations

import difflib
from typing import Iterable, Iterator

import peewee

from skilljar_scim.base import clock, textkey
from skilljar_scim.base.errors import InvalidValue, NotFound
from skilljar_scim.store.models import Group, Membership, RoleMapping, User

STATUSES = ("active", "inactive", "deprovisioned")
BATCH = 500


def status(user: User) -> str:
    """Return "deprovisioned", "inactive" or "active"."""
    if user.deprovisioned_at is not None:
        return "deprovisioned"
    return "active" if user.active else "inactive"


def find_user(ref: str) -> User:
    """Return the user with this id, else this userName (case-insensitive), any status."""
    user = User.get_or_none(User.id == ref) or User.get_or_none(User.user_name_key == textkey.key(ref))
    if user is None:
        raise NotFound(f"no user with id or userName {ref!r}")
    return user


def find_group(ref: str) -> Group:
    """Return the group with this id, else this displayName (case-insensitive)."""
    group = Group.get_or_none(Group.id == ref) or Group.get_or_none(Group.display_name_key == textkey.key(ref))
    if group is None:
        raise NotFound(f"no group with id or displayName {ref!r}")
    return group


def _check_choice(kind: str, value: str, valid: list[str]) -> None:
    if value not in valid:
        raise InvalidValue(f"unknown {kind} {value!r}; valid: {', '.join(valid) or '(none)'}")


def filter_group(ref: str) -> Group:
    """Return the group a filter names (id or displayName); else InvalidValue with close names."""
    try:
        return find_group(ref)
    except NotFound:
        close = difflib.get_close_matches(ref, [n for (n,) in Group.select(Group.display_name).tuples()])
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else "; see `scim groups list`"
        raise InvalidValue(f"no group with id or displayName {ref!r}{hint}") from None


def filter_user(ref: str) -> User:
    """Return the user a filter names (id or userName); else InvalidValue pointing at the listing."""
    try:
        return find_user(ref)
    except NotFound:
        raise InvalidValue(f"no user with id or userName {ref!r}; see `scim users list --search`") from None


def user_query(state: str | None = None, role: str | None = None, group: str | None = None,
               search: str | None = None, known_roles: Iterable[str] = ()) -> peewee.ModelSelect:
    """Select users by status, effective role, group (id or name) and free text.

    A role outside `known_roles` or a group that does not exist is an InvalidValue naming
    the valid choices: a filter that can match nothing is a mistake, not an empty answer.
    """
    query = User.select()
    if state is not None:
        query = query.where(_status_clause(state))
    if role:
        _check_choice("role", role, sorted(known_roles))
        query = query.where(User.id.in_(_holders(role)), User.active == True, User.deprovisioned_at.is_null())  # noqa: E712
    if group:
        group_id = filter_group(group).id
        query = query.where(User.id.in_(Membership.select(Membership.user).where(Membership.group == group_id)))
    if search:
        text = search.strip()
        query = query.where(
            User.user_name_key.contains(textkey.key(text)) | User.display_name.contains(text)
            | User.primary_email.contains(text) | (User.external_id == text) | (User.id == text)
        )
    return query.order_by(User.user_name_key, User.id)


# What a user listing shows; the first two are its order (user_query), kept for paging by keyset.
_LISTED = (User.user_name_key, User.id, User.user_name, User.display_name, User.primary_email, User.external_id,
           User.active, User.deprovisioned_at, User.created_at, User.updated_at)


def user_rows(query: peewee.ModelSelect, limit: int | None = None) -> Iterator[dict]:
    """Yield the listing of a user_query() (stable --json keys), BATCH rows a statement.

    Each batch starts after the last row of the one before (keyset paging on the listing's
    order), so the last batch of a 50,000-user store costs what the first does; rows come
    raw from the driver, with no model or converter work per value.
    """
    select, after, remaining = query.select(*_LISTED), None, limit
    while remaining is None or remaining > 0:
        size = BATCH if remaining is None else min(BATCH, remaining)
        page = select if after is None else select.where(peewee.Tuple(User.user_name_key, User.id) > peewee.Tuple(*after))
        rows = User._meta.database.execute_sql(*page.limit(size).sql()).fetchall()
        yield from (_listed(row) for row in rows)
        if len(rows) < size:
            return
        after = rows[-1][:2]
        remaining = None if remaining is None else remaining - size


def _listed(row: tuple) -> dict:
    _key, user_id, user_name, display_name, email, external_id, active, deprovisioned_at, created, updated = row
    state = "deprovisioned" if deprovisioned_at is not None else ("active" if active else "inactive")
    return {"id": user_id, "userName": user_name, "displayName": display_name, "email": email,
            "externalId": external_id, "status": state, "created_at": clock.iso_stored(created),
            "updated_at": clock.iso_stored(updated)}


def _status_clause(state: str):
    if state not in STATUSES:
        raise InvalidValue(f"status must be one of {', '.join(STATUSES)}")
    if state == "deprovisioned":
        return User.deprovisioned_at.is_null(False)
    return User.deprovisioned_at.is_null() & (User.active == (state == "active"))


def _holders(role: str) -> peewee.ModelSelect:
    return (
        Membership.select(Membership.user)
        .join(Group)
        .join(RoleMapping, on=(RoleMapping.group_id == Group.id))
        .where(RoleMapping.role == role)
    )


def stream(query: peewee.ModelSelect, limit: int | None = None) -> Iterator:
    """Yield rows in batches by offset so a long listing never sits in memory whole."""
    offset, remaining = 0, limit
    while remaining is None or remaining > 0:
        size = BATCH if remaining is None else min(BATCH, remaining)
        rows = list(query.offset(offset).limit(size))
        yield from rows
        if len(rows) < size:
            return
        offset += size
        remaining = None if remaining is None else remaining - size


def group_query() -> peewee.ModelSelect:
    """Select every group with its member count."""
    count = peewee.fn.COUNT(Membership.user).alias("member_count")
    return (Group.select(Group, count).join(Membership, peewee.JOIN.LEFT_OUTER)
            .group_by(Group.id).order_by(Group.display_name_key))


def members(group: Group) -> peewee.ModelSelect:
    return User.select().join(Membership).where(Membership.group == group.id).order_by(User.user_name_key, User.id)


def member_count(group: Group) -> int:
    return Membership.select().where(Membership.group == group.id).count()


def mapped_roles(group: Group) -> list[str]:
    """Return the roles a group grants to its active members."""
    query = RoleMapping.select(RoleMapping.role).where(RoleMapping.group_id == group.id)
    return sorted(r for (r,) in query.tuples())


def names(user_ids: Iterable[str], group_ids: Iterable[str]) -> dict[str, str]:
    """Return the userName or displayName of each id that still exists (for people, not keys)."""
    users, groups = list(set(user_ids)), list(set(group_ids))
    found = dict(User.select(User.id, User.user_name).where(User.id.in_(users)).tuples()) if users else {}
    if groups:
        found.update(Group.select(Group.id, Group.display_name).where(Group.id.in_(groups)).tuples())
    return found
