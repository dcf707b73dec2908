"""The delivery worker's rows: claim due delivery rows, POST each event signed, record what happened.

Most events never get a row: they go out through their endpoint's stream (domain/stream.py);
a row holds a delivery that needs state of its own (retries after a failure, an event queued
behind its user's pending one, a test, a resend). At least once: a delivery is marked done only after a 2xx, and a claim is a lease, so a
crashed worker's claims are taken again when it runs out. In order per user: a delivery is
claimed only when no earlier delivery about the same subject is still pending at that endpoint.
Signing follows Standard Webhooks: `webhook-id` (the event id, the receiver's idempotency
key), `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256>` of "id.timestamp.body".
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import queue
import random
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable
from urllib.parse import urlsplit

import peewee

from skilljar_scim.base import clock
from skilljar_scim.base.config import WebhooksSettings
from skilljar_scim.base.errors import ConfigError
from skilljar_scim.domain import events, posting, webhooks
from skilljar_scim.store import models, sqlcache
from skilljar_scim.store.db import write_transaction
from skilljar_scim.store.models import Event, WebhookDelivery, WebhookEndpoint

log = logging.getLogger("skilljar_scim.webhooks")
UNOPENABLE_LOG_EVERY = 300.0  # seconds between log lines about one endpoint whose secret cannot be opened
_unopenable_logged: dict[str, float] = {}  # endpoint id -> when it was last logged (time.monotonic)

# Wait after the Nth failed attempt (README "Webhooks"): the first retry within a minute,
# the last about 3 days after the first attempt; after the 11th failure the delivery gives up.
RETRY_DELAYS = tuple(timedelta(seconds=s) for s in (30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600,
                                                      24 * 3600, 24 * 3600))
JITTER = 0.1  # +-10% of each wait, so endpoints that failed together do not retry together
USER_AGENT = "skilljar-scim-webhooks/1"
WORKER = events.Actor("webhooks")  # who disables a failing endpoint


@dataclass(frozen=True)
class Claimed:
    """One claimed delivery, ready to send."""

    id: int
    endpoint_id: str
    url: str
    message_id: str
    body: bytes
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: a status code, or an error (timeout, refused connection)."""

    delivery_id: int
    endpoint_id: str
    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """Return `v1,<signature>` for one secret (Standard Webhooks, "Signature scheme")."""
    key = base64.b64decode(secret.removeprefix(webhooks.SECRET_PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode("ascii") + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers_for(item: Claimed, timestamp: int) -> dict[str, str]:
    """Return a delivery's headers; during a secret rotation both secrets sign (space-separated)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": item.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, item.message_id, timestamp, item.body) for s in item.secrets),
    }


def retry_at(attempts: int, now: datetime, rng: random.Random) -> datetime | None:
    """Return when to try again after `attempts` failed attempts, or None to give up."""
    if attempts > len(RETRY_DELAYS):
        return None
    wait = RETRY_DELAYS[attempts - 1].total_seconds()
    return now + timedelta(seconds=wait * (1 + rng.uniform(-JITTER, JITTER)))


def claim(keys: list[str], worker: str, config: WebhooksSettings, now: datetime) -> list[Claimed]:
    """Lease the due deliveries (at most one per endpoint and subject) to `worker` and load them.

    Only the lease is taken in the transaction (on SQLite it holds the store's one write lock,
    which every SCIM write waits for); events are loaded and bodies built after it commits.
    """
    if not _any_due(now):  # the usual answer, read without taking the write lock
        return []
    with _claim_transaction():
        rows = _lease_due(worker, config, now)
    return _load(keys, worker, rows, now) if rows else []


def _lease_due(worker: str, config: WebhooksSettings, now: datetime) -> list[tuple[int, int, str]]:
    """Select the due deliveries and lease them to `worker`: two compiled statements."""
    at = WebhookDelivery.next_attempt_at.db_value
    rows = sqlcache.tuples("webhook.due", _due, [at(now), at(now), config.batch_size])
    if rows:
        size, ids = _padded([row_id for row_id, _, _ in rows])
        sqlcache.run(("webhook.claim", size), lambda: WebhookDelivery.update(
            lease_until=sqlcache.param(0), claimed_by=sqlcache.param(1)).where(
            WebhookDelivery.id.in_(sqlcache.params(2, size))), [at(now + lease(config)), worker, *ids])
    return rows


def _any_due(now: datetime) -> bool:
    """Say whether some pending delivery row is due and unleased (a hint: claiming checks again)."""
    at = WebhookDelivery.next_attempt_at.db_value(now)
    return bool(sqlcache.tuples("webhook.any_due", lambda: WebhookDelivery.select(peewee.SQL("1")).where(
        (WebhookDelivery.state == "pending") & (WebhookDelivery.next_attempt_at <= sqlcache.param(0))
        & (WebhookDelivery.lease_until.is_null() | (WebhookDelivery.lease_until <= sqlcache.param(1)))).limit(1),
        [at, at]))


def _padded(ids: list[int]) -> tuple[int, list[int]]:
    """Pad an IN list to a power of two (repeating its last id), so a few statement shapes serve every batch."""
    size = 1 << max(len(ids) - 1, 0).bit_length()
    return size, ids + ids[-1:] * (size - len(ids))


def lease(config: WebhooksSettings) -> timedelta:
    """Return how long a claim lasts: lease_seconds, or longer if sending a whole batch could take longer.

    A batch of receivers that all time out takes ceil(batch / concurrency) timeouts; a lease
    shorter than that would let another worker claim rows this one is still sending.
    """
    rounds = -(-max(config.batch_size, 1) // max(config.concurrency, 1))
    return max(timedelta(seconds=config.lease_seconds), timedelta(milliseconds=(rounds + 1) * config.timeout_ms))


def _claim_transaction():
    """On PostgreSQL claims skip rows others hold (SKIP LOCKED); on SQLite the write lock serialises them."""
    db = models.database.obj
    return db.atomic() if isinstance(db, peewee.PostgresqlDatabase) else write_transaction()


def _due() -> peewee.Select:
    """Due, unleased deliveries to enabled endpoints with nothing earlier pending for their subject."""
    earlier = WebhookDelivery.alias("earlier")
    blocked = earlier.select(peewee.SQL("1")).where(
        (earlier.endpoint == WebhookDelivery.endpoint) & (earlier.subject == WebhookDelivery.subject)
        & (earlier.state == "pending") & (earlier.id < WebhookDelivery.id))
    query = (WebhookDelivery.select(WebhookDelivery.id, WebhookDelivery.event_id, WebhookDelivery.endpoint)
             .join(WebhookEndpoint, on=(WebhookDelivery.endpoint == WebhookEndpoint.id))
             .where((WebhookDelivery.state == "pending") & (WebhookDelivery.next_attempt_at <= sqlcache.param(0))
                    & (WebhookDelivery.lease_until.is_null() | (WebhookDelivery.lease_until <= sqlcache.param(1)))
                    & WebhookEndpoint.disabled_at.is_null() & ~peewee.fn.EXISTS(blocked))
             .order_by(WebhookDelivery.id).limit(sqlcache.param(2)))
    if isinstance(models.database.obj, peewee.PostgresqlDatabase):
        query = query.for_update(of=WebhookDelivery, skip_locked=True)
    return query


def _load(keys: list[str], worker: str, rows: list[tuple[int, int, str]], now: datetime) -> list[Claimed]:
    """Build each claimed delivery's body and headers' inputs; give up those whose event is gone."""
    size, event_ids = _padded(sorted({event_id for _, event_id, _ in rows}))
    found = {e[0]: e for e in sqlcache.tuples(("webhook.events", size), lambda: Event.select(*FEED_COLUMNS).where(
        Event.id.in_(sqlcache.params(0, size))), event_ids)}
    _give_up_pruned(worker, [row_id for row_id, event_id, _ in rows if event_id not in found], now)
    rows = [row for row in rows if row[1] in found]
    endpoints = {e.id: e for e in WebhookEndpoint.select().where(WebhookEndpoint.id.in_({r[2] for r in rows}))}
    secrets = {}
    for endpoint in endpoints.values():
        with contextlib.suppress(ConfigError):  # its rows stay leased, then due again: no attempt counted
            secrets[endpoint.id] = secrets_for(keys, endpoint, now)
    return [Claimed(row_id, endpoint_id, endpoints[endpoint_id].url, events.event_id(event_id),
                    body_bytes(*found[event_id]), secrets[endpoint_id])
            for row_id, event_id, endpoint_id in rows if endpoint_id in secrets]


def secrets_for(keys: list[str], endpoint: WebhookEndpoint, now: datetime) -> tuple[str, ...]:
    """Return the endpoint's signing secrets; log, then raise ConfigError when the key file cannot open them.

    Only that endpoint waits (its cursor and rows stay as they are, nothing is attempted, so
    nothing is given up or disabled for the operator's key problem); the others deliver.
    """
    try:
        return tuple(webhooks.signing_secrets(keys, endpoint, now))
    except ConfigError as exc:
        _log_unopenable(endpoint.id, exc)
        raise


def _log_unopenable(endpoint_id: str, exc: ConfigError) -> None:
    """Log an endpoint whose secret cannot be opened, once per UNOPENABLE_LOG_EVERY, not every round."""
    if time.monotonic() - _unopenable_logged.get(endpoint_id, -UNOPENABLE_LOG_EVERY) >= UNOPENABLE_LOG_EVERY:
        _unopenable_logged[endpoint_id] = time.monotonic()
        log.error("webhook endpoint %s: nothing is sent to it until its secret can be opened: %s",
                  endpoint_id, exc.detail)


# What a delivery's body is made of. `at` is selected as stored (an alias has no converter):
# clock.iso_stored formats the stored text directly, without parsing it into a datetime first.
FEED_COLUMNS = (Event.id, Event.action, Event.at.alias("at"), Event.data, Event.resource_id)


def body_bytes(row_id: int, action: str, at, data: str | None, resource_id: str | None) -> bytes:
    """Return what a delivery POSTs, the event as the events API serves it (events.feed_item), as JSON.

    The stored `data` is already JSON: it is spliced in, not decoded and encoded again per delivery.
    """
    head = json.dumps({"id": events.event_id(row_id), "type": action, "created_at": clock.iso_stored(at)},
                      ensure_ascii=False, separators=(",", ":"))
    data = data or json.dumps({"id": resource_id}, ensure_ascii=False, separators=(",", ":"))
    return f'{head[:-1]},"data":{data}}}'.encode("utf-8")


def _give_up_pruned(worker: str, ids: list[int], now: datetime) -> None:
    """Mark failed the deliveries whose event retention already deleted (nothing left to send)."""
    if ids:
        with write_transaction():
            WebhookDelivery.update(state="failed", last_error="the event is past events.retention_days",
                                   last_attempt_at=now, lease_until=None, claimed_by=None).where(
                WebhookDelivery.id.in_(ids) & _ours(worker)).execute()


def prune() -> int:
    """Delete finished deliveries of events retention has deleted; return how many."""
    with write_transaction():
        oldest = Event.select(peewee.fn.MIN(Event.id)).scalar()
        finished = WebhookDelivery.state != "pending"
        gone = WebhookDelivery.event_id < oldest if oldest is not None else WebhookDelivery.id.is_null(False)
        return WebhookDelivery.delete().where(finished & gone).execute()


class Sender:
    """POSTs deliveries (domain/posting.py): one keep-alive connection per endpoint host and thread, no redirects followed."""

    def __init__(self, timeout_ms: int, concurrency: int = 1):
        self.timeout = max(timeout_ms, 1) / 1000
        self.concurrency = max(concurrency, 1)
        self.pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="webhook")
        self.local = threading.local()
        self.tls = ssl.create_default_context()  # verifies the receiver's certificate and host name

    def send_all(self, items: list[Claimed]) -> list[Outcome]:
        """Send every item (different subjects, so in any order); return their outcomes, in the items' order.

        Up to `concurrency` threads each take the next unsent item until none is left: one hand-off
        per thread and batch rather than one per item (a future each), which cost a third of the
        worker's CPU per delivery. One item, or concurrency 1, is sent in this thread.
        """
        if len(items) <= 1 or self.concurrency == 1:
            return [self.send(item) for item in items]
        todo, outcomes = queue.SimpleQueue(), [None] * len(items)
        for index, item in enumerate(items):
            todo.put((index, item))
        list(self.pool.map(self._send_until_empty, [(todo, outcomes)] * min(self.concurrency, len(items))))
        return outcomes

    def _send_until_empty(self, work: tuple[queue.SimpleQueue, list]) -> None:
        todo, outcomes = work
        while True:
            try:
                index, item = todo.get_nowait()
            except queue.Empty:
                return
            outcomes[index] = self.send(item)

    def send(self, item: Claimed) -> Outcome:
        """POST one delivery; a redirect is an answer like any other non-2xx (never followed)."""
        parts = urlsplit(item.url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        key = (parts.scheme, parts.hostname, parts.port)
        try:
            request = posting.request_head("POST", target, parts.netloc, headers_for(item, int(time.time())),
                                           len(item.body)) + item.body
            status = self._connection(key).post(request)
            return Outcome(item.id, item.endpoint_id, status, None if status < 300 else f"HTTP {status}")
        except (OSError, posting.ProtocolError) as exc:
            self._forget(key)
            return Outcome(item.id, item.endpoint_id, None, _describe(exc, self.timeout))

    def _connection(self, key: tuple[str, str, int | None]) -> posting.Connection:
        cache = self.local.__dict__.setdefault("connections", {})
        if key not in cache:
            cache[key] = posting.Connection(*key, self.timeout, self.tls)
        return cache[key]

    def _forget(self, key: tuple[str, str, int | None]) -> None:
        connection = self.local.__dict__.get("connections", {}).pop(key, None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _describe(exc: Exception, timeout: float) -> str:
    """Return a short, plain description of a failed attempt (stored, shown by `deliveries`)."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"timed out after {timeout:g} s"
    text = " ".join(str(exc).split())[:160]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def complete(worker: str, outcomes: list[Outcome], config: WebhooksSettings, now: datetime,
             rng: random.Random) -> None:
    """Record each attempt's outcome; retry, give up, or disable endpoints as the rules say."""
    if not outcomes:
        return
    with write_transaction():
        for status in sorted({o.status for o in outcomes if o.ok}):
            _record_delivered(worker, [o.delivery_id for o in outcomes if o.ok and o.status == status], status, now)
        for outcome in outcomes:
            if not outcome.ok:
                _record_failure(worker, outcome, now, rng)
        for endpoint_id in sorted({o.endpoint_id for o in outcomes}):
            judge_endpoint(endpoint_id, [o for o in outcomes if o.endpoint_id == endpoint_id], config, now)


def _ours(worker: str):
    """Rows this worker still holds (a claim whose lease ran out may be another worker's now)."""
    return (WebhookDelivery.claimed_by == worker) & (WebhookDelivery.state == "pending")


def _record_delivered(worker: str, ids: list[int], status: int, now: datetime) -> None:
    """Mark these deliveries done, in one compiled statement (the common case, so it stays cheap)."""
    at, (size, ids) = WebhookDelivery.delivered_at.db_value, _padded(ids)
    sqlcache.run(("webhook.delivered", size), lambda: WebhookDelivery.update(
        state="delivered", delivered_at=sqlcache.param(0), attempts=WebhookDelivery.attempts + 1,
        last_status=sqlcache.param(1), last_error=None, last_attempt_at=sqlcache.param(0), lease_until=None,
        claimed_by=None).where(WebhookDelivery.id.in_(sqlcache.params(3, size)) & (WebhookDelivery.claimed_by ==
                                                                                   sqlcache.param(2))
                               & (WebhookDelivery.state == "pending")), [at(now), status, worker, *ids])


def _record_failure(worker: str, outcome: Outcome, now: datetime, rng: random.Random) -> None:
    """Schedule the next attempt with backoff and jitter, or give up after the last one."""
    ours = (WebhookDelivery.id == outcome.delivery_id) & _ours(worker)
    attempts = WebhookDelivery.select(WebhookDelivery.attempts).where(ours).scalar()
    if attempts is None:
        return
    later = retry_at(attempts + 1, now, rng)
    WebhookDelivery.update(
        {"next_attempt_at": later} if later else {"state": "failed"}, attempts=attempts + 1,
        last_status=outcome.status, last_error=outcome.error, last_attempt_at=now, lease_until=None, claimed_by=None,
    ).where(ours).execute()


def judge_endpoint(endpoint_id: str, outcomes: list[Outcome], config: WebhooksSettings, now: datetime) -> None:
    """Disable on 410 or after failing for too long; an answer again brings its retries forward."""
    endpoint = WebhookEndpoint.get_or_none(WebhookEndpoint.id == endpoint_id)
    if endpoint is None or endpoint.disabled_at is not None:
        return
    if any(o.status == 410 for o in outcomes):
        disable(endpoint, "the receiver answered 410 Gone", now)
    elif any(o.ok for o in outcomes):
        if endpoint.failing_since is not None:
            _recovered(endpoint, now)
    elif endpoint.failing_since is None:
        WebhookEndpoint.update(failing_since=now).where(WebhookEndpoint.id == endpoint_id).execute()
    elif now - endpoint.failing_since >= timedelta(hours=config.disable_after_hours):
        disable(endpoint, f"every delivery failed since {clock.iso(endpoint.failing_since)}", now)


def _recovered(endpoint: WebhookEndpoint, now: datetime) -> None:
    """Clear the failure streak and send the endpoint's waiting retries now, not hours later."""
    WebhookEndpoint.update(failing_since=None).where(WebhookEndpoint.id == endpoint.id).execute()
    WebhookDelivery.update(next_attempt_at=now).where(
        (WebhookDelivery.endpoint == endpoint.id) & (WebhookDelivery.state == "pending")
        & (WebhookDelivery.next_attempt_at > now)).execute()


def disable(endpoint: WebhookEndpoint, reason: str, now: datetime) -> None:
    """Stop delivering to an endpoint (its deliveries wait) and record `webhook.disabled`."""
    WebhookEndpoint.update(disabled_at=now, disabled_reason=reason).where(WebhookEndpoint.id == endpoint.id).execute()
    events.record(WORKER, "webhook.disabled", "Webhook", endpoint.id,
                  {"url": webhooks.redacted(endpoint.url), "reason": reason}, now)
    log.warning("webhook endpoint %s disabled: %s", endpoint.id, reason)


def run_once(keys: list[str], config: WebhooksSettings, sender: Sender, worker: str,
             now: Callable[[], datetime] = clock.utcnow, rng: random.Random | None = None) -> list[Outcome]:
    """Claim what is due, send it, record the outcomes; return them (empty when nothing was due)."""
    claimed = claim(keys, worker, config, now())
    outcomes = sender.send_all(claimed)
    complete(worker, outcomes, config, now(), rng or random.Random())
    return outcomes


def worker_name() -> str:
    """Return a name for this worker's claims: host, process, and a random part."""
    return f"{socket.gethostname()[:16]}:{os.getpid()}:{random.randrange(16 ** 4):04x}"
