"""Append-only provisioning and audit log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from skilljar_scim import clock
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
) -> Event:
    """Append one event; call inside the transaction that made the change."""
    text = summary if isinstance(summary, str) else json.dumps(summary, sort_keys=True, ensure_ascii=False)
    return Event.create(
        at=now or clock.utcnow(), actor=actor.label, token_id=actor.token_id, action=action,
        resource_type=resource_type, resource_id=resource_id, summary=text,
    )
