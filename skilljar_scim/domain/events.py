"""Append-only provisioning and audit log; each event also carries its feed payload (`data`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from skilljar_scim.base import clock
from skilljar_scim.base.errors import InvalidValue
from skilljar_scim.domain import outbox, snapshots
from skilljar_scim.store import sqlcache
from skilljar_scim.store.models import Event, Token

ID_PREFIX = "evt_"


@dataclass(frozen=True)
class Actor:
    """Who made a change: a bearer token (server) or the local CLI."""

    label: str
    token_id: str | None = None

    @classmethod
    def for_token(cls, token: Token) -> "Actor":
        return cls(f"token:{token.name}", token.id)


CLI = Actor("cli")

# Every action an event can record (README "Inspecting users, groups and events").
ACTIONS = (
    "user.created", "user.updated", "user.deactivated", "user.reactivated", "user.deprovisioned", "user.purged",
    "group.created", "group.updated", "group.deleted", "membership.added", "membership.removed",
    "role.granted", "role.revoked", "mapping.added", "mapping.removed", "mapping.bound", "mapping.conflict",
    "token.created", "token.revoked",
    "webhook.created", "webhook.removed", "webhook.enabled", "webhook.disabled", "webhook.secret_rotated",
    "webhook.test",
)
# What the events API serves when no types are named: the admin's token.* and webhook.* only when asked for.
DEFAULT_FEED_TYPES = tuple(a for a in ACTIONS if not a.startswith(outbox.NOT_BY_DEFAULT))


def record(
    actor: Actor,
    action: str,
    resource_type: str | None,
    resource_id: str | None,
    summary: dict[str, Any] | str = "",
    now: datetime | None = None,
    snapshot: dict[str, Any] | None = None,
) -> None:
    """Append one event with its feed snapshot; call inside the transaction that made the change, after it.

    `snapshot`: the feed payload, when the caller built it from what it just wrote (no re-read).
    """
    data = snapshot if snapshot is not None else _snapshots(action, [(resource_id, summary)])[0]
    rows = [_row(actor, action, resource_type, resource_id, summary, now or clock.utcnow(), data)]
    sqlcache.insert(Event, rows, later=True)  # PostgreSQL: sent with the next statement or COMMIT


def record_many(actor: Actor, action: str, resource_type: str, changes: list[tuple[str, dict[str, Any]]]) -> None:
    """Append one event per (resource_id, summary) in a few statements (a big group's members)."""
    now = clock.utcnow()
    data = _snapshots(action, changes)
    rows = [_row(actor, action, resource_type, rid, summary, now, snapshot)
            for (rid, summary), snapshot in zip(changes, data)]
    sqlcache.insert(Event, rows, later=True)  # PostgreSQL: sent with the next statement or COMMIT


def _row(actor: Actor, action: str, resource_type: str | None, resource_id: str | None,
         summary: dict[str, Any] | str, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    """Return the columns of one event row; summary and data dicts are stored as JSON."""
    text = summary if isinstance(summary, str) else json.dumps(summary, sort_keys=True, ensure_ascii=False)
    return {"at": at, "actor": actor.label, "token_id": actor.token_id, "action": action,
            "resource_type": resource_type, "resource_id": resource_id, "summary": text,
            "data": json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))}


def _snapshots(action: str, changes: list[tuple[str | None, Any]]) -> list[dict[str, Any]]:
    """Return the feed payload of each (resource_id, summary): the resource as the change left it."""
    family = action.partition(".")[0]
    capture = _CAPTURE.get(family, _summary_only)
    return capture(action, [(rid, summary if isinstance(summary, dict) else {}) for rid, summary in changes])


def _users(action: str, changes: list[tuple[str | None, dict]]) -> list[dict[str, Any]]:
    """user.*: the user; role.*: the user with every current role, plus the role that changed and why."""
    found = snapshots.users(rid for rid, _ in changes if rid)
    shots = [dict(found.get(rid) or snapshots.purged(rid)) for rid, _ in changes]
    if action.startswith("role."):
        for shot, (_, summary) in zip(shots, changes):
            shot["change"] = {"role": summary.get("role"), "reason": summary.get("reason")}
    return shots


def _memberships(action: str, changes: list[tuple[str | None, dict]]) -> list[dict[str, Any]]:
    """membership.*: the user with every current group and role, plus the group joined or left."""
    found = snapshots.users(summary.get("user") for _, summary in changes if summary.get("user"))
    refs = {rid: snapshots.group_ref(rid, summary.get("group")) for rid, summary in dict(changes).items()}
    return [{**found.get(summary.get("user"), snapshots.PURGED), "change": {"group": refs[rid]}}
            for rid, summary in changes]


def _groups(action: str, changes: list[tuple[str | None, dict]]) -> list[dict[str, Any]]:
    """group.*: the group with its member count (a deleted one: state "deleted")."""
    return [snapshots.group(rid, summary) for rid, summary in changes]


def _tokens(action: str, changes: list[tuple[str | None, dict]]) -> list[dict[str, Any]]:
    """token.*: the token's id, name and scope, never its value."""
    return [snapshots.token(rid) for rid, _ in changes]


def _summary_only(action: str, changes: list[tuple[str | None, dict]]) -> list[dict[str, Any]]:
    """mapping.* and anything else: what the summary says (a mapping names a group and a role)."""
    return [dict(summary) for _, summary in changes]


_CAPTURE = {"user": _users, "role": _users, "membership": _memberships, "group": _groups, "token": _tokens}


def event_id(row_id: int) -> str:
    """Return an event's public id: fixed width, so ids sort (as strings) in the order events were recorded."""
    return f"{ID_PREFIX}{row_id:016x}"


def row_id(text: str) -> int:
    """Return the row id of a public event id (`evt_…`) or of the number `scim events list` shows."""
    text = (text or "").strip()
    digits, base = (text[len(ID_PREFIX):], 16) if text.startswith(ID_PREFIX) else (text, 10)
    if not digits or not digits.isascii() or not digits.isalnum():
        raise InvalidValue(f"{text[:40]!r} is not an event id: use an id such as evt_00000000000004d2 or 1234")
    try:
        return int(digits, base)
    except ValueError:
        raise InvalidValue(f"{text[:40]!r} is not an event id: use an id such as evt_00000000000004d2 or 1234") from None


def feed_item(event: Event) -> dict[str, Any]:
    """Return an event as every consumer gets it (events API, webhooks): id, type, created_at, data."""
    return {"id": event_id(event.id), "type": event.action, "created_at": clock.iso_stored(event.at),
            "data": json.loads(event.data) if event.data else {"id": event.resource_id}}


PURGED = "(purged)"
_PURGED_DATA = json.dumps(snapshots.PURGED)


def anonymise(user_id: str, values: set[str]) -> int:
    """Replace a purged person's identifiers in the events about them; return how many changed.

    Only events about that person are touched (theirs, or naming their id, such as a
    membership), and only values exactly equal to one of `values` in the parsed summary:
    a substring of a longer value, a key name or another person's event stays byte-identical.
    """
    about = list(Event.select().where((Event.resource_id == user_id) | Event.summary.contains(user_id)))
    values = values | {user_id} | _former_names(about, user_id)
    changed = 0
    for event in about:
        summary = _scrubbed(event.summary, values)
        resource_id = None if event.resource_id == user_id else event.resource_id
        if summary != event.summary or resource_id != event.resource_id or event.data != _PURGED_DATA:
            # Its feed snapshot (the person, or a membership or role event's user) goes whole.
            scrubbed = {"summary": summary, "resource_id": resource_id, "data": _PURGED_DATA}
            Event.update(scrubbed).where(Event.id == event.id).execute()
            changed += 1
    return changed


def _former_names(about: list[Event], user_id: str) -> set[str]:
    """Return the userNames a person's own events recorded (they may have been renamed since)."""
    names = set()
    for event in about:
        data = as_dict(event)["summary"] if event.resource_id == user_id else None
        if isinstance(data, dict) and isinstance(data.get("userName"), str):
            names.add(data["userName"])
    return names


def _scrubbed(text: str, values: set[str]) -> str:
    """Return a stored summary with every value in `values` replaced, re-serialised as record() does."""
    try:
        data = json.loads(text) if text else ""
    except ValueError:
        return PURGED if text in values else text  # a plain-text summary: whole or nothing
    if isinstance(data, str):
        return text if data not in values else json.dumps(PURGED)
    cleaned = _replace_exact(data, values)
    return text if cleaned == data else json.dumps(cleaned, sort_keys=True, ensure_ascii=False)


def _replace_exact(data: Any, values: set[str]) -> Any:
    """Replace strings (values and keys) exactly equal to one of `values`, at any depth."""
    if isinstance(data, str):
        return PURGED if data in values else data
    if isinstance(data, list):
        return [_replace_exact(item, values) for item in data]
    if isinstance(data, dict):
        return {_replace_exact(k, values): _replace_exact(v, values) for k, v in data.items()}
    return data


def query(
    user_id: str | None = None,
    group_id: str | None = None,
    token_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[Event]:
    """Return the newest events matching every given filter (a user's include their memberships).

    An action that no event can have is an InvalidValue naming the valid ones.
    """
    if action is not None and action not in ACTIONS:
        raise InvalidValue(f"unknown action {action!r}: choose one of {', '.join(ACTIONS)}")
    select = Event.select().order_by(Event.id.desc()).limit(max(limit, 0))
    if user_id:
        select = select.where((Event.resource_id == user_id) | Event.summary.contains(user_id))
    if group_id:
        select = select.where((Event.resource_type == "Group") & (Event.resource_id == group_id))
    if token_id:
        select = select.where(Event.token_id == token_id)
    if action:
        select = select.where(Event.action == action)
    if since:
        select = select.where(Event.at >= since)
    return list(select)


def as_dict(event: Event) -> dict[str, Any]:
    """Return an event with stable keys for --json."""
    try:
        summary = json.loads(event.summary) if event.summary else {}
    except ValueError:
        summary = event.summary
    return {
        "id": event.id, "event_id": event_id(event.id), "at": event.at, "actor": event.actor,
        "token_id": event.token_id, "action": event.action, "resource_type": event.resource_type, "resource_id": event.resource_id,
        "summary": summary,
    }
