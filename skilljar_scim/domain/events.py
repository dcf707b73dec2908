"""Append-only provisioning and audit log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from skilljar_scim.base import clock
from skilljar_scim.base.errors import InvalidValue
from skilljar_scim.domain import outbox
from skilljar_scim.store import sqlcache
from skilljar_scim.store.models import Event, Token


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


def record(
    actor: Actor,
    action: str,
    resource_type: str | None,
    resource_id: str | None,
    summary: dict[str, Any] | str = "",
    now: datetime | None = None,
) -> None:
    """Append one event; call inside the transaction that made the change."""
    rows = [_row(actor, action, resource_type, resource_id, summary, now or clock.utcnow())]
    sqlcache.insert(Event, rows)
    outbox.enqueue(rows)  # the webhook deliveries commit with the event


def record_many(actor: Actor, action: str, resource_type: str, changes: list[tuple[str, dict[str, Any]]]) -> None:
    """Append one event per (resource_id, summary) in a few statements (a big group's members)."""
    now = clock.utcnow()
    rows = [_row(actor, action, resource_type, rid, summary, now) for rid, summary in changes]
    sqlcache.insert(Event, rows)
    outbox.enqueue(rows)


def _row(actor: Actor, action: str, resource_type: str | None, resource_id: str | None,
         summary: dict[str, Any] | str, at: datetime) -> dict[str, Any]:
    """Return the columns of one event row; a summary dict is stored as canonical JSON."""
    text = summary if isinstance(summary, str) else json.dumps(summary, sort_keys=True, ensure_ascii=False)
    return {"at": at, "actor": actor.label, "token_id": actor.token_id, "action": action,
            "resource_type": resource_type, "resource_id": resource_id, "summary": text}


PURGED = "(purged)"


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
        if summary != event.summary or resource_id != event.resource_id:
            Event.update(summary=summary, resource_id=resource_id).where(Event.id == event.id).execute()
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
        "id": event.id, "at": event.at, "actor": event.actor, "token_id": event.token_id,
        "action": event.action, "resource_type": event.resource_type, "resource_id": event.resource_id,
        "summary": summary,
    }


def feed_item(event: Event) -> dict[str, Any]:
    """Return an event as the feed serves it (provisional until the events API lands)."""
    detail = as_dict(event)
    return {"id": str(event.id), "type": event.action, "created_at": clock.iso_stored(event.at),
            "data": {"resource_type": event.resource_type, "id": event.resource_id, "summary": detail["summary"]}}
