"""The webhook outbox: a recorded event that an enabled endpoint wants becomes a pending delivery.

enqueue() runs inside the transaction that records the event, so the change, its event and
its deliveries commit (or roll back) together: a delivery is never lost, and never sent for
a change that did not happen. Sending is the delivery worker's job (domain/delivery.py).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import peewee

from skilljar_scim.base import clock
from skilljar_scim.store import sqlcache
from skilljar_scim.store.models import Event, WebhookDelivery, WebhookEndpoint

# Sent only to endpoints that list them: token events are the admin's, not the dashboard's,
# and webhook events are about the endpoints themselves (a test event goes to its one endpoint).
NOT_BY_DEFAULT = ("token.", "webhook.")


def enqueue(rows: list[dict[str, Any]]) -> None:
    """Add a delivery per (event, enabled endpoint that wants it); call right after inserting `rows`."""
    endpoints = _enabled_endpoints()
    if not endpoints:
        return
    wanted = [[e for e, types in endpoints if wants(types, row["action"])] for row in rows]
    if not any(wanted):
        return
    # The event rows were just inserted under the store's write lock, so their ids are the
    # last len(rows) ones, in order: the INSERT names each event as MAX(id) - back (no extra query).
    _add_latest([(len(rows) - 1 - index, endpoint_id, subject_of(row))
                 for index, (row, endpoint_ids) in enumerate(zip(rows, wanted)) for endpoint_id in endpoint_ids],
                clock.utcnow())


def _add_latest(deliveries: list[tuple[int, str, str | None]], now) -> None:
    """Insert pending deliveries (events back from the newest, endpoint id, subject), due now."""
    at = WebhookDelivery.next_attempt_at.db_value(now)
    for start in range(0, len(deliveries), sqlcache.INSERT_BATCH):
        batch = deliveries[start:start + sqlcache.INSERT_BATCH]
        sqlcache.run(("outbox.latest", len(batch)), lambda count=len(batch): _latest_query(count),
                     [at, *(value for delivery in batch for value in delivery)])


def _latest_query(count: int) -> peewee.Insert:
    newest = Event.select(peewee.fn.MAX(Event.id))
    return WebhookDelivery.insert_many([{
        WebhookDelivery.event_id: peewee.NodeList((newest, peewee.SQL("-"), sqlcache.param(1 + 3 * i))),
        WebhookDelivery.endpoint: sqlcache.param(2 + 3 * i), WebhookDelivery.subject: sqlcache.param(3 + 3 * i),
        WebhookDelivery.state: "pending", WebhookDelivery.attempts: 0,
        WebhookDelivery.next_attempt_at: sqlcache.param(0), WebhookDelivery.created_at: sqlcache.param(0),
    } for i in range(count)])


def add(deliveries: list[tuple[int, str, str | None]], now) -> None:
    """Insert pending deliveries (event id, endpoint id, subject), due now."""
    sqlcache.insert(WebhookDelivery, [
        {"event_id": event_id, "endpoint": endpoint_id, "subject": subject, "state": "pending", "attempts": 0,
         "next_attempt_at": now, "created_at": now}
        for event_id, endpoint_id, subject in deliveries])


def _enabled_endpoints() -> list[tuple[str, str | None]]:
    return sqlcache.tuples("webhook.enabled", lambda: WebhookEndpoint.select(
        WebhookEndpoint.id, WebhookEndpoint.event_types).where(WebhookEndpoint.disabled_at.is_null()).tuples())


def wants(event_types: str | None, action: str) -> bool:
    """Return True when an endpoint with this stored filter (JSON list, or NULL: all) takes `action`."""
    if event_types is None:
        return not action.startswith(NOT_BY_DEFAULT)
    return action in _parsed(event_types)


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
