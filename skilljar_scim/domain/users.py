"""User lifecycle: create (with reactivation), replace, patch, deactivate, delete, purge.

The stored document (`User.attributes`) is the canonical SCIM JSON of every writable
attribute; the other columns are derived from it on every write so lookups use indexes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import peewee

from skilljar_scim.base import clock, textkey
from skilljar_scim.scim import documents
from skilljar_scim.domain import events, memberships, passwords, roles, snapshots
from skilljar_scim.base.errors import Conflict, NotFound
from skilljar_scim.domain.events import Actor
from skilljar_scim.scim import patch as scim_patch
from skilljar_scim.scim import resources
from skilljar_scim.scim.resources import Bounds
from skilljar_scim.scim.schemas import USER_TYPE
from skilljar_scim.domain.search.query import Page, Query, Source, run
from skilljar_scim.domain.search import sql
from skilljar_scim.store import sqlcache
from skilljar_scim.store.db import write_transaction
from skilljar_scim.store.models import Group, Membership, User, UserEmail
from skilljar_scim.scim.etags import check_if_match, etag

_OMITTED = object()  # a key absent from a body, as opposed to a JSON null

# Never stored: computed from memberships, or server-assigned.
COMPUTED = ("id", "meta", "groups", "roles", "schemas")


@dataclass(frozen=True)
class Columns:
    """A User document as the store keeps it (no password) and the columns derived from it: pure, no store."""

    document: dict
    password: str | None
    user_name_key: str
    display_name: str | None
    primary_email: str | None
    attributes: str  # the document as JSON
    email_keys: tuple[str, ...]


@dataclass(frozen=True)
class Checked:
    """A User body in canonical form, with its passwords hashed (users.check).

    `columns`: what the write stores, worked out before the write lock when the body decides
    `active` (a create, or a PUT that sends it); else None (a PUT's is the stored user's).
    """

    data: dict
    hashed: passwords.Hashed
    columns: Columns | None = None


@dataclass(frozen=True)
class Created:
    """The created (or brought back) user, and whether it was a returning person."""

    user: User
    reactivated: bool


def get(user_id: str, sole: bool = False) -> User:
    """Return a user SCIM can see (not deprovisioned), or raise NotFound.

    `sole`: this is all the read transaction reads (GET /Users/{id}): one statement, no BEGIN on PostgreSQL.
    """
    user = sqlcache.first("user.visible", lambda: _with_memberships().where(
        (User.id == sqlcache.param(0)) & User.deprovisioned_at.is_null()), [user_id], sole)
    if user is None:
        raise NotFound(f"User {user_id} not found")
    return user


def check(body: object, bounds: Bounds = Bounds(), new: bool = False) -> Checked:
    """Validate a User body and hash its password: the costly part of a create or replace, done before the lock.

    `new`: the body creates a user (an absent `active` is true), so what it stores is known
    without the store (Checked.columns); a PUT's is known when it sends `active`.
    """
    data = _normalise(body, bounds)
    hashed = passwords.prehash_document(data)
    known = new or "active" in data or _sends_active(body)
    return Checked(data, hashed, _columns(_with_active(data, body, True)) if known else None)


def create(actor: Actor, body: object, bounds: Bounds = Bounds(), checked: Checked | None = None) -> Created:
    """Create a user; a returning person's old account is brought back instead (RFC 7644 §3.3).

    `checked`: `check(body)`, done before the caller's transaction (the view's before_lock step).
    """
    checked = checked or check(body, bounds, new=True)
    columns = checked.columns or _columns(_with_active(checked.data, body, True))
    data, hashed = columns.document, checked.hashed
    with write_transaction():
        user = _insert_new(columns, hashed)  # the insert is the check: no read first when the keys are free
        if user is not None:
            _known_memberships(user, [], [])  # a new user is in no group yet
            events.record(actor, "user.created", "User", user.id, {"userName": user.user_name},
                          snapshot=snapshots.written_user(user, [], [], _stored(user)))
            return Created(user, False)
        existing = _returning(data)
        if existing is None:  # the insert met a key that no user holds: only a new id can have collided
            raise _taken(data["userName"], data.get("externalId"))
        before = roles.snapshot([existing.id])
        user = _write(existing, columns, hashed, reactivate=True)
        events.record(actor, "user.reactivated", "User", user.id, {"userName": user.user_name, "returning": True})
        roles.record_changes(actor, before, "reactivated")
        return Created(user, True)


def _normalise(body: object, bounds: Bounds) -> dict:
    """Validate a body into canonical form; refuse indexed values too long to index, or a resource out of bounds."""
    data = resources.normalise(USER_TYPE, body)
    resources.check_bounds(USER_TYPE, data, bounds)
    sql.check_indexable("userName", data["userName"])
    sql.check_indexable("externalId", data.get("externalId"))
    for email in data.get("emails", []):
        sql.check_indexable("emails.value", email.get("value"))
    return data


def _returning(data: dict) -> User | None:
    """Find the account a POST refers to: none, or an inactive one to bring back (else 409)."""
    key, external = textkey.key(data["userName"]), data.get("externalId")
    found = _with_keys(key, external)  # one query for both unique keys
    by_name = next((u for u in found if u.user_name_key == key), None)
    by_external = next((u for u in found if external and u.external_id == external), None)
    if by_name and by_external and by_name.id != by_external.id:
        raise Conflict(
            f"userName {data['userName']!r} belongs to user {by_name.id} but externalId "
            f"{external!r} belongs to user {by_external.id}"
        )
    existing = by_name or by_external
    if existing is not None and existing.active and existing.deprovisioned_at is None:
        field = "userName" if by_name else "externalId"
        raise Conflict(f"a user with this {field} already exists: {existing.id}")
    return existing


def _with_keys(key: str, external: str | None) -> list[User]:
    """Return the users (in any state) holding this userName key or, when one is given, this externalId.

    Each with its groups and roles (computed only for a row found): a returning person's answer needs them.
    """
    if not external:
        return sqlcache.instances("user.by_name_key", lambda: _with_memberships().where(
            User.user_name_key == sqlcache.param(0)), [key])
    return sqlcache.instances("user.by_keys", lambda: _with_memberships().where(
        (User.user_name_key == sqlcache.param(0)) | (User.external_id == sqlcache.param(1))), [key, external])


def replace(actor: Actor, user_id: str, body: object, if_match: str | None = None,
            bounds: Bounds = Bounds(), checked: Checked | None = None) -> User:
    """Replace a user's attributes with the body (RFC 7644 §3.5.1); `checked` as for create()."""
    documents.check_body_id(body, user_id)
    checked = checked or check(body, bounds)
    with write_transaction():
        user = check_if_match(get(user_id), if_match)
        columns = checked.columns or _columns(_with_active(checked.data, body, user.active))
        return _update(actor, user, columns, checked.hashed)


def patch(actor: Actor, user_id: str, body: object, if_match: str | None = None, max_operations: int = 1000,
          bounds: Bounds = Bounds(), hashed: passwords.Hashed | None = None) -> User:
    """Apply a PatchOp atomically: every operation or none (RFC 7644 §3.5.2)."""
    ops = scim_patch.parse(body, USER_TYPE, max_operations=max_operations, max_values=bounds.max_values)
    hashed = passwords.prehash(body) if hashed is None else hashed
    with write_transaction():
        user = check_if_match(get(user_id), if_match)
        stored = documents.load(user)
        changed = scim_patch.apply({**stored, "id": user.id}, ops, USER_TYPE)  # a copy: `stored` stays as read
        data = _normalise(documents.strip(changed, COMPUTED), bounds)
        # Removed (or set to null): RFC 7643 §4.1.1 gives `active` no default, and an
        # unassigned status must never grant access, so the account is inactive.
        data.setdefault("active", False)
        return _update(actor, user, _columns(data), hashed, stored)


def _with_active(data: dict, body: object, omitted: bool) -> dict:
    """Return `data` with `active` set as the body left it: `omitted` if not sent, false if null (RFC 7644 §3.5.1)."""
    return data if "active" in data else {**data, "active": _active_when_absent(body, omitted)}


def _active_when_absent(body: object, omitted: bool) -> bool:
    """Return `active` for a body without a value: `omitted` if not sent, false if sent as null (RFC 7644 §3.5.1)."""
    return False if _sends_active(body) else omitted


def _sends_active(body: object) -> bool:
    """Say whether a body names `active` at all (a value, or null to unset it)."""
    return isinstance(body, dict) and textkey.get(body, "active", _OMITTED) is not _OMITTED


def delete(actor: Actor, user_id: str, if_match: str | None = None) -> None:
    """Deprovision: hide from SCIM, drop memberships, keep data and history (DESIGN: Users)."""
    with write_transaction():
        user = check_if_match(get(user_id), if_match)
        before = roles.snapshot([user.id])
        groups = _drop_memberships(actor, user)
        user.deprovisioned_at = clock.utcnow()
        _write(user, _columns({**documents.load(user), "active": False}))
        events.record(actor, "user.deprovisioned", "User", user.id, {"userName": user.user_name, "groups": groups})
        roles.record_changes(actor, before, "deprovisioned")


def search(query: Query, base_url: str, max_filter_length: int = 4096, max_filter_depth: int = 32,
           sole: bool = False) -> Page:
    """List the users a query selects (RFC 7644 §3.4.2)."""
    return run(_source(base_url), query, max_filter_length, max_filter_depth, sole)


def render(user: User, base_url: str) -> dict:
    """Return the full canonical SCIM resource of one user."""
    return render_many([user], base_url)[0]


def render_many(users: list[User], base_url: str) -> list[dict]:
    """Render users with their groups and roles, in one query whatever their number."""
    groups, held = _groups_and_roles(users)
    return [_render(u, groups.get(u.id, []), held.get(u.id, []), base_url) for u in users]


# Set on a user instance by the write that made it: its groups and mapped roles, which a
# user write never changes, so its answer renders them without reading them again.
_MEMBERSHIPS = "_scim_memberships"


def _known_memberships(user: User, groups: list[tuple[str, str]], held: list[str]) -> None:
    setattr(user, _MEMBERSHIPS, (groups, held))


def _has_known(user: User) -> bool:
    """Say whether a user instance came with its groups and mapped roles (from a write, or read with its row)."""
    return hasattr(user, _MEMBERSHIPS) or hasattr(user, memberships.COLUMN)


def _known(user: User) -> tuple[list[tuple[str, str]], list[str]]:
    """Return the groups and mapped roles a user instance came with: set by a write, or read with its row."""
    if hasattr(user, _MEMBERSHIPS):
        return getattr(user, _MEMBERSHIPS)
    return memberships.unpack(getattr(user, memberships.COLUMN))


def _memberships_of(user: User) -> tuple[list[tuple[str, str]], list[str]]:
    """Return a user's groups and mapped roles: those it was read with (no statement), else from the store."""
    if _has_known(user):
        return _known(user)
    groups, mapped = memberships.groups_and_roles([user.id])
    return groups.get(user.id, []), mapped.get(user.id, [])


def _with_memberships() -> peewee.ModelSelect:
    """Select whole users, each with its groups and mapped roles (memberships.column): one statement."""
    return User.select(User, memberships.column(User.id))


def groups_of(user: User) -> list[tuple[str, str]]:
    """Return the (id, displayName) of each group a user is a direct member of, by name."""
    return _groups_and_roles([user])[0].get(user.id, [])


def _groups_and_roles(users: list[User]) -> tuple[dict[str, list[tuple[str, str]]], dict[str, list[str]]]:
    """Return each user's groups (by name) and sorted roles, as roles.roles_by_user counts them.

    Roles are the mapped roles of the user's groups, for active provisioned users only.
    """
    known = {u.id: _known(u) for u in users if _has_known(u)}
    groups, held = memberships.groups_and_roles([u.id for u in users if u.id not in known])
    for user_id, (their_groups, their_roles) in known.items():
        groups[user_id], held[user_id] = their_groups, their_roles
    entitled = {u.id for u in users if u.active and u.deprovisioned_at is None}
    return groups, {user_id: found for user_id, found in held.items() if user_id in entitled}


def _render(user: User, groups: list[tuple[str, str]], held: list[str], base_url: str) -> dict:
    """Build the canonical resource; `schemas` lists the extensions it has (RFC 7643 §3)."""
    doc = {"id": user.id, **documents.load(user)}
    doc["schemas"] = [s.id for s in USER_TYPE.schemas if s is USER_TYPE.schema or s.id in doc]
    if groups:
        doc["groups"] = [
            {"value": gid, "$ref": f"{base_url}/Groups/{gid}", "display": name, "type": "direct"}
            for gid, name in groups
        ]
    if held:
        # Read-only: computed from group-to-role mappings (see `scim mappings`).
        doc["roles"] = [{"value": role, "display": role, "type": "dashboard"} for role in held]
    doc["meta"] = {
        "resourceType": "User",
        "created": clock.iso(user.created_at),
        "lastModified": clock.iso(user.updated_at),
        "location": f"{base_url}/Users/{user.id}",
        "version": etag(user),
    }
    return doc


def _update(actor: Actor, user: User, columns: Columns, hashed: passwords.Hashed, before: dict | None = None) -> User:
    """Write a document (see _columns) over `user` when it differs; record what kind of change it was.

    `before`: the user's stored document, when the caller has parsed it already.
    """
    before = documents.load(user) if before is None else before
    data = columns.document  # without its password
    if data == before and not columns.password:
        return user  # nothing changes: keep the version (IdPs resend unchanged values)
    was_active = user.active
    groups, mapped = _memberships_of(user)  # a user write changes neither
    user = _write(user, columns, hashed)
    _known_memberships(user, groups, mapped)
    action = _lifecycle_action(was_active, user.active)
    summary = {"userName": user.user_name, "changed": sorted(_changed_keys(before, data))}
    written = snapshots.written_user(user, groups, mapped, _stored(user))
    events.record(actor, action, "User", user.id, summary, snapshot=written)
    if user.active != was_active:  # roles are held only while active (SCIM users here are never deprovisioned)
        held = {True: set(mapped), False: set()}
        roles.record_user_change(actor, user.id, user.user_name, held[was_active], held[user.active],
                                 action.removeprefix("user."), written)
    return user


def _lifecycle_action(was_active: bool, active: bool) -> str:
    if was_active and not active:
        return "user.deactivated"
    if active and not was_active:
        return "user.reactivated"
    return "user.updated"


def _changed_keys(before: dict, after: dict) -> set[str]:
    keys = set(before) | set(after)
    return {k for k in keys if before.get(k) != after.get(k) and k != "password"}


def _columns(data: dict) -> Columns:
    """Work out what a document stores: itself without its password, and the columns derived from it."""
    document = dict(data)  # only top-level keys change here: the caller's document stays as it was
    password = document.pop("password", None)
    document.setdefault("active", False)  # callers decide; unassigned grants nothing
    emails = {textkey.key(e["value"]) for e in document.get("emails", []) if e.get("value")}
    return Columns(document, password, textkey.key(document["userName"]), _display_name(document),
                   _primary_email(document), json.dumps(document, ensure_ascii=False, sort_keys=True),
                   tuple(sorted(emails)))


def _write(user: User, columns: Columns, hashed: passwords.Hashed = passwords.Hashed(),
           reactivate: bool = False) -> User:
    """Store a document (see _columns) over a stored user, with its derived columns and its email index.

    A new user is written by _insert_new.
    """
    _fill(user, columns, hashed, reactivate)
    _update_row(user)
    _index_emails(user, columns.email_keys)
    return user


def _insert_new(columns: Columns, hashed: passwords.Hashed) -> User | None:
    """Store a new user unless its userName or externalId is taken (then write nothing and return None).

    The unique keys decide, under the write lock: a create of a new person reads nothing first.
    """
    user = _fill(User(id=str(uuid.uuid4()), created_at=clock.utcnow(), version=0), columns, hashed)
    if not sqlcache.save(user, True, if_free=True):
        return None
    _index_emails(user, columns.email_keys, True)
    return user


def _fill(user: User, columns: Columns, hashed: passwords.Hashed, reactivate: bool = False) -> User:
    """Set a user's fields from a document (see _columns); nothing is written yet.

    A password in it replaces the stored hash with one of the current parameters (the only
    moment an old hash can be upgraded: the server never sees the plaintext otherwise).
    """
    document = columns.document
    user.user_name, user.user_name_key = document["userName"], columns.user_name_key
    user.external_id, user.active = document.get("externalId"), bool(document["active"])
    user.display_name, user.primary_email = columns.display_name, columns.primary_email
    user.attributes = columns.attributes
    setattr(user, _STORED, document)  # never changed after this: the snapshot reads it instead of parsing `attributes`
    if columns.password:
        user.password_hash = hashed.of(columns.password)
    if reactivate:
        user.deprovisioned_at = None
    user.version += 1
    user.updated_at = clock.utcnow()
    return user


# Set on a user instance by _write: the document it serialised into `attributes`.
_STORED = "_scim_stored"


def _stored(user: User) -> dict:
    """Return the document a user instance's `attributes` hold: the one _write serialised, else parsed."""
    found = getattr(user, _STORED, None)
    return documents.load(user) if found is None else found


def _update_row(user: User) -> None:
    """Update the row; a unique key another user holds is a Conflict (the transaction then rolls back whole)."""
    try:
        sqlcache.save(user, False)
    except peewee.IntegrityError:
        raise _taken(user.user_name, user.external_id) from None


def _taken(user_name: str, external_id: str | None) -> Conflict:
    """Return the Conflict for a write that met a userName or externalId another user holds."""
    return Conflict(f"userName {user_name!r} or externalId {external_id!r} is already taken")


def _index_emails(user: User, keys: tuple[str, ...], is_new: bool = False) -> None:
    # Nothing checks these rows in the request (no unique key): on PostgreSQL they go with the next statement.
    if not is_new:  # a new user has no rows yet
        sqlcache.run_later("user_email.delete", lambda: UserEmail.delete().where(UserEmail.user == sqlcache.param(0)),
                           [user.id])
    sqlcache.insert(UserEmail, [{"user": user.id, "value_key": key} for key in keys], later=True)


def _display_name(data: dict) -> str | None:
    name = data.get("name") or {}
    parts = " ".join(p for p in (name.get("givenName"), name.get("familyName")) if p)
    return data.get("displayName") or name.get("formatted") or parts or None


def _primary_email(data: dict) -> str | None:
    emails = data.get("emails") or []
    primary = next((e for e in emails if e.get("primary")), emails[0] if emails else None)
    return primary.get("value") if primary else None


def _drop_memberships(actor: Actor, user: User) -> list[str]:
    groups = groups_of(user)
    if groups:
        Membership.delete().where(Membership.user == user.id).execute()
        Group.update(version=Group.version + 1, updated_at=clock.utcnow()).where(
            Group.id.in_([g for g, _ in groups])
        ).execute()
        for group_id, _ in groups:
            events.record(actor, "membership.removed", "Group", group_id, {"user": user.id, "reason": "deprovisioned"})
    return [name for _, name in groups]


def _source(base_url: str) -> Source:
    columns = {
        ("id", None): sql.Column(User.id, sql.exact),
        ("username", None): sql.Column(User.user_name_key, textkey.key),
        ("externalid", None): sql.Column(User.external_id, sql.exact),
        ("active", None): sql.Column(User.active, bool),
        ("meta", "created"): sql.Column(User.created_at, sql.moment),
        ("meta", "lastmodified"): sql.Column(User.updated_at, sql.moment),
    }
    email_match = sql.Subquery(
        lambda key: User.id.in_(UserEmail.select(UserEmail.user).where(UserEmail.value_key == key)), textkey.key
    )
    return Source(
        rtype=USER_TYPE,
        base=lambda: _with_memberships().where(User.deprovisioned_at.is_null()),
        columns=columns,
        subqueries={("emails", "value"): email_match},
        sort_columns={
            # The listing index's order (schema 3): deprovisioned_at is NULL on every row listed, but
            # PostgreSQL walks an index in ORDER BY's order only when it names the leading column;
            # without it, every page read and sorted every user.
            None: (User.deprovisioned_at, User.created_at),
            ("id", None): User.id,
            ("username", None): User.user_name_key,
            ("externalid", None): User.external_id,
            ("meta", "created"): User.created_at,
            ("meta", "lastmodified"): User.updated_at,
        },
        tiebreak=User.id,
        render=lambda rows: render_many(rows, base_url),
    )


def ensure_purgeable(user: User) -> User:
    """Raise Conflict unless the user is deprovisioned (check before asking for confirmation)."""
    if user.deprovisioned_at is None:
        state = "active" if user.active else "deactivated"
        raise Conflict(f"user {user.user_name!r} is {state}: only a deprovisioned user (DELETE) can be purged")
    return user


def purge(actor: Actor, user: User) -> None:
    """Remove a deprovisioned person for good; their past events stay, anonymised."""
    with write_transaction():
        user = ensure_purgeable(User.get_by_id(user.id))
        events.anonymise(user.id, _identifiers(user))
        user.delete_instance()
        # The opaque id stays on this one event: consumers of the feed erase their copy by it.
        events.record(actor, "user.purged", "User", user.id, {"user": events.PURGED})


def _identifiers(user: User) -> set[str]:
    """Return the values that name a person in event summaries: names, ids, email addresses."""
    doc = documents.load(user)
    found = {user.user_name, user.external_id, user.primary_email, user.display_name,
             doc.get("displayName"), (doc.get("name") or {}).get("formatted")}
    found |= {e.get("value") for e in doc.get("emails") or [] if isinstance(e, dict)}
    return {v for v in found if isinstance(v, str) and v}
