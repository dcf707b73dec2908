"""Append-only provisioning and audit log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from skilljar_scim.base import clock
from skilljar_scim.store import sqlcache as prepared
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


def record(
    actor: Actor,
    action: str,
    resource_type: str | None,
    resource_id: str | None,
    summary: dict[str, Any] | str = "",
    now: datetime | None = None,
) -> None:
    """Append one event; call inside the transaction that made the change."""
    text = summary if isinstance(summary, str) else json.dumps(summary, sort_keys=True, ensure_ascii=False)
    prepared.insert(Event, [{"at": now or clock.utcnow(), "actor": actor.label, "token_id": actor.token_id,
                             "action": action, "resource_type": resource_type, "resource_id": resource_id,
                             "summary": text}])


def record_many(actor: Actor, action: str, resource_type: str, changes: list[tuple[str, dict[str, Any]]]) -> None:
    """Append one event per (resource_id, summary) in a few statements (a big group's members)."""
    now = clock.utcnow()
    rows = [{"at": now, "actor": actor.label, "token_id": actor.token_id, "action": action, "resource_type": resource_type,
             "resource_id": rid, "summary": json.dumps(summary, sort_keys=True, ensure_ascii=False)} for rid, summary in changes]
    prepared.insert(Event, rows)


def query(
    user_id: str | None = None,
    group_id: str | None = None,
    token_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[Event]:
    """Return the newest events matching every given filter (a user's include their memberships)."""
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
