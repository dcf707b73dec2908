"""Deliver straight from the event log: each endpoint's stream cursor, moved once per batch.

The event log is the outbox, so a SCIM write adds nothing for webhooks. Each endpoint keeps
`stream_cursor`, the last event its stream has handled: answered 2xx, handed to a delivery
row (a failed attempt, then retried with backoff by domain/delivery.py; or an event queued
behind its user's earlier pending delivery), or not wanted by its type filter. The delivery
process reads the events after the cursor without the write lock, sends them, then records
the rows and moves the cursor in one short write transaction. A crash before that commit
sends the batch again: at least once, the event id being the receiver's idempotency key.

The cursor relies on event ids following commit order: no event with a smaller id may commit
after a larger one was read. On SQLite one writer commits at a time; on PostgreSQL every write
holds the advisory write lock until its commit (store/db.py), which makes it so there too.

Two workers (several `scim serve` on PostgreSQL) never send one stream at once: a worker
leases it (`stream_claimed_by`, `stream_lease_until`) before sending and renews the lease with
each cursor move; a move by a worker whose lease ran out and was taken over is refused, and
the events go out again from the other worker.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

import peewee

from skilljar_scim.base import clock
from skilljar_scim.base.config import WebhooksSettings
from skilljar_scim.base.errors import ConfigError
from skilljar_scim.domain import delivery, events, outbox
from skilljar_scim.store import sqlcache
from skilljar_scim.store.db import write_transaction
from skilljar_scim.store.models import Event, WebhookDelivery, WebhookEndpoint

# What the stream reads of an event: the body's columns, then what its subject is made of.
STREAM_COLUMNS = (*delivery.FEED_COLUMNS, Event.resource_type, Event.summary)
LEASE_SLACK = timedelta(seconds=10)


@dataclass
class Batch:
    """One endpoint's events after its cursor, as read; `through` is the last event read."""

    endpoint: WebhookEndpoint
    cursor: int
    through: int
    items: list[tuple[delivery.Claimed, str | None]]  # wanted events, in order, with their subjects
    blocked: set[str]  # subjects with a pending delivery row at this endpoint: their events queue behind it


def run_once(keys: list[str], config: WebhooksSettings, sender: delivery.Sender, worker: str,
             now: Callable[[], datetime] = clock.utcnow, rng: random.Random | None = None) -> tuple[list, int]:
    """Send each leased stream's next batch and move its cursor; return (outcomes, events read)."""
    outcomes, read, rng = [], 0, rng or random.Random()
    for endpoint in _with_backlog(worker, now()):
        batch = take(keys, endpoint, worker, config, now())
        if batch is None:
            continue
        sent = send(sender, batch, config)
        finish(batch, sent, worker, config, now(), rng)
        outcomes.extend(sent.values())
        read += batch.through - batch.cursor
    return outcomes, read


def _with_backlog(worker: str, now: datetime) -> list[WebhookEndpoint]:
    """Enabled endpoints behind the newest event that this worker may lease (a read: no write lock).

    A stream another worker holds is skipped here, so it costs no write transaction per round.
    """
    newest = Event.select(peewee.fn.MAX(Event.id))
    return list(WebhookEndpoint.select().where(WebhookEndpoint.disabled_at.is_null()
                                               & (WebhookEndpoint.stream_cursor < newest) & _free(worker, now)))


def _free(worker: str, now: datetime) -> peewee.Expression:
    """Match a stream nobody holds, this worker holds, or whose lease has run out."""
    return (WebhookEndpoint.stream_claimed_by.is_null() | (WebhookEndpoint.stream_claimed_by == worker)
            | WebhookEndpoint.stream_lease_until.is_null() | (WebhookEndpoint.stream_lease_until <= now))


def take(keys: list[str], endpoint: WebhookEndpoint, worker: str, config: WebhooksSettings,
         now: datetime) -> Batch | None:
    """Lease the endpoint's stream (unless this worker holds it long enough) and read its next batch."""
    if not _holding(endpoint, worker, config, now):
        endpoint = _lease(endpoint.id, worker, config, now)
        if endpoint is None:
            return None  # another worker's
    try:
        secrets = delivery.secrets_for(keys, endpoint, now)
    except ConfigError:
        return None  # logged; its cursor stays, so the events wait for the key, and other endpoints do not
    rows = sqlcache.tuples(("webhook.stream", len(STREAM_COLUMNS)), lambda: Event.select(*STREAM_COLUMNS).where(
        Event.id > sqlcache.param(0)).order_by(Event.id).limit(sqlcache.param(1)),
        [endpoint.stream_cursor, config.batch_size])
    if not rows:
        return None
    items = [(delivery.Claimed(row[0], endpoint.id, endpoint.url, events.event_id(row[0]),
                               delivery.body_bytes(*row[:5]), secrets), _subject(row))
             for row in rows if outbox.wants(endpoint.event_types, row[1])]
    return Batch(endpoint, endpoint.stream_cursor, rows[-1][0], items, _pending_subjects(endpoint.id) if items else set())


def _subject(row: tuple) -> str | None:
    row_id, action, _, _, resource_id, resource_type, summary = row
    return outbox.subject_of({"action": action, "resource_type": resource_type, "resource_id": resource_id,
                              "summary": summary})


def _holding(endpoint: WebhookEndpoint, worker: str, config: WebhooksSettings, now: datetime) -> bool:
    """Say whether this worker's lease lasts at least one more batch's worst case (delivery.lease)."""
    until = endpoint.stream_lease_until
    return endpoint.stream_claimed_by == worker and until is not None and until - now >= delivery.lease(config)


def _lease(endpoint_id: str, worker: str, config: WebhooksSettings, now: datetime) -> WebhookEndpoint | None:
    """Take or renew the stream's lease, unless another worker holds it; return the endpoint as leased."""
    with write_transaction():
        taken = WebhookEndpoint.update(stream_claimed_by=worker, stream_lease_until=_lease_end(config, now)
                                       ).where((WebhookEndpoint.id == endpoint_id) & _free(worker, now)
                                               & WebhookEndpoint.disabled_at.is_null()).execute()
        return WebhookEndpoint.get_or_none(WebhookEndpoint.id == endpoint_id) if taken else None


def _lease_end(config: WebhooksSettings, now: datetime) -> datetime:
    """Return when a lease taken or renewed now ends: a batch's worst case, plus slack for the next round.

    With the slack, a worker that keeps finding events renews its lease with each cursor move
    and never needs a write of its own to keep it; a crashed worker's stream waits that long.
    """
    worst = delivery.lease(config)
    return now + worst + min(worst, LEASE_SLACK)


def release(worker: str) -> None:
    """Give up this worker's stream leases (it is stopping), so the next worker need not wait them out."""
    with write_transaction():
        WebhookEndpoint.update(stream_claimed_by=None, stream_lease_until=None).where(
            WebhookEndpoint.stream_claimed_by == worker).execute()


def _pending_subjects(endpoint_id: str) -> set[str]:
    """Subjects with a pending delivery row at the endpoint: a later event of theirs must wait behind it."""
    query = WebhookDelivery.select(WebhookDelivery.subject).distinct().where(
        (WebhookDelivery.endpoint == endpoint_id) & (WebhookDelivery.state == "pending")
        & WebhookDelivery.subject.is_null(False)).tuples()
    return {subject for (subject,) in query}


def send(sender: delivery.Sender, batch: Batch, config: WebhooksSettings) -> dict[int, delivery.Outcome]:
    """Send the batch in waves, each user's events in order; return outcomes by event id.

    A wave is the next event of every subject still going (at most one per user at a time, as
    with rows); a subject stops at its first failure, and its later events become rows behind
    it. A wave starts only while the lease certainly covers it (its worst case: all time out).
    """
    queues: dict = {}
    sent: dict[int, delivery.Outcome] = {}
    for index, (item, subject) in enumerate(batch.items):
        queues.setdefault(subject if subject is not None else ("", index), deque()).append(item)
    for subject in batch.blocked:
        queues.pop(subject, None)
    started, limit = time.monotonic(), delivery.lease(config).total_seconds()
    while queues:
        wave = [waiting[0] for waiting in queues.values()]
        if sent and time.monotonic() - started + _worst(len(wave), config) > limit:
            break
        for item, outcome in zip(wave, sender.send_all(wave)):
            sent[item.id] = outcome
        for key in list(queues):
            item = queues[key].popleft()
            if not sent[item.id].ok or not queues[key]:
                del queues[key]
    return sent


def _worst(count: int, config: WebhooksSettings) -> float:
    """Return the seconds a wave of `count` sends takes when every one times out."""
    return -(-count // max(config.concurrency, 1)) * config.timeout_ms / 1000


def finish(batch: Batch, sent: dict[int, delivery.Outcome], worker: str, config: WebhooksSettings,
           now: datetime, rng: random.Random) -> bool:
    """Record the batch's rows and move the cursor past it, in one write transaction, if the lease is still ours."""
    rows = [_row(batch.endpoint.id, item, subject, sent.get(item.id), now, rng)
            for item, subject in batch.items if item.id not in sent or not sent[item.id].ok]
    endpoint = WebhookEndpoint
    with write_transaction():
        moved = endpoint.update(stream_cursor=batch.through, stream_lease_until=_lease_end(config, now)).where(
            (endpoint.id == batch.endpoint.id) & (endpoint.stream_claimed_by == worker)
            & (endpoint.stream_cursor == batch.cursor)).execute()
        if not moved:
            return False  # the lease ran out and another worker took the stream: it sends these again
        if rows:
            sqlcache.insert(WebhookDelivery, rows)
        if sent:
            delivery.judge_endpoint(batch.endpoint.id, list(sent.values()), config, now)
    return True


def _row(endpoint_id: str, item: delivery.Claimed, subject: str | None, outcome: delivery.Outcome | None,
         now: datetime, rng: random.Random) -> dict:
    """Return a delivery row for an event the stream did not deliver: failed once, or not sent yet."""
    row = {"event_id": item.id, "endpoint": endpoint_id, "subject": subject, "state": "pending", "attempts": 0,
           "next_attempt_at": now, "created_at": now, "last_status": None, "last_error": None, "last_attempt_at": None}
    if outcome is not None:
        row.update(attempts=1, next_attempt_at=delivery.retry_at(1, now, rng), last_status=outcome.status,
                   last_error=outcome.error, last_attempt_at=now)
    return row


def backlog(endpoint: WebhookEndpoint) -> int:
    """Return how many events the endpoint wants after its stream cursor (not sent yet)."""
    return Event.select().where((Event.id > endpoint.stream_cursor) & outbox.wanted(endpoint.event_types)).count()
