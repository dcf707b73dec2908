"""The webhook outbox is the event log itself: which events an endpoint wants, and what keeps them in order.

A change and its event commit in one transaction, so a delivery is never lost and never
sent for a change that did not happen; nothing else is written on the SCIM write path.
The delivery process reads each endpoint's events after its stream cursor (domain/stream.py);
only a delivery that needs state of its own gets a row here (add(): a failed attempt's
retries, one queued behind its user's earlier pending delivery, a test, a resend).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import peewee

from skilljar_scim.store import sqlcache
from skilljar_scim.store.models import Event, WebhookDelivery

# Sent only to endpoints that list them: token events are the admin's, not the dashboard's,
# and webhook events are about the endpoints themselves (a test event goes to its one endpoint).
NOT_BY_DEFAULT = ("token.", "webhook.")


def add(deliveries: list[tuple[int, str, str | None]], now) -> None:
    """Insert pending deliveries (event id, endpoint id, subject), due now."""
    sqlcache.insert(WebhookDelivery, [
        {"event_id": event_id, "endpoint": endpoint_id, "subject": subject, "state": "pending", "attempts": 0,
         "next_attempt_at": now, "created_at": now}
        for event_id, endpoint_id, subject in deliveries])


def wants(event_types: str | None, action: str) -> bool:
    """Return True when an endpoint with this stored filter (JSON list, or NULL: all) takes `action`."""
    if event_types is None:
        return not action.startswith(NOT_BY_DEFAULT)
    return action in _parsed(event_types)


def wanted(event_types: str | None) -> peewee.Expression:
    """Return the SQL condition on Event that wants() states, for counting and listing."""
    if event_types is None:
        return ~(Event.action.startswith(NOT_BY_DEFAULT[0]) | Event.action.startswith(NOT_BY_DEFAULT[1]))
    return Event.action.in_(sorted(_parsed(event_types)))


@lru_cache(maxsize=256)
def _parsed(event_types: str) -> frozenset[str]:
    return frozenset(json.loads(event_types))


def subject_of(row: dict[str, Any]) -> str | None:
    """Return what an event's deliveries must keep in order: its user (or group), else None."""
    kind, resource_id = row.get("resource_type"), row.get("resource_id")
    if row["action"].startswith("membership."):
        summary = row.get("summary")
        user = (json.loads(summary) if isinstance(summary, str) and summary else summary or {}).get("user")
        if user:
            return f"User:{user}"
    if kind and resource_id:
        return f"{kind}:{resource_id}"[:48]
    return None
