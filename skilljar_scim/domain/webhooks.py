"""Webhook endpoints: register, list, remove, rotate secrets, test, resend (Standard Webhooks).

A signing secret is `whsec_` + base64 of 32 random bytes (Standard Webhooks, "Signature
scheme"). HMAC needs the secret itself, so it cannot be kept as a hash: it is stored
encrypted (Fernet: AES-128-CBC + HMAC-SHA256, authenticated) under a key derived from each
line of the server's secret key file, and shown once, when it is made.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import peewee
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from skilljar_scim.base import clock
from skilljar_scim.base.errors import ConfigError, InvalidValue, NotFound
from skilljar_scim.domain import events, outbox
from skilljar_scim.store.db import write_transaction
from skilljar_scim.store.models import Event, WebhookDelivery, WebhookEndpoint

SECRET_PREFIX = "whsec_"
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 200
# Every event type an endpoint may ask for; `token.*` and `webhook.*` go only where named.
EVENT_TYPES = tuple(action for action in events.ACTIONS if action != "webhook.test")
_KEY_CONTEXT = b"skilljar-scim webhook signing secrets v1"


@dataclass(frozen=True)
class Added:
    """A new endpoint and its signing secret (shown once, never stored in clear)."""

    endpoint: WebhookEndpoint
    secret: str


def new_secret() -> str:
    """Return a fresh `whsec_` secret of 32 random bytes (Standard Webhooks: 24 to 64 bytes)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _cipher(keys: list[str]) -> MultiFernet:
    """Return the cipher for stored secrets: the newest key encrypts, every key decrypts."""
    derived = [hmac.new(key.encode("utf-8"), _KEY_CONTEXT, hashlib.sha256).digest() for key in reversed(keys)]
    return MultiFernet([Fernet(base64.urlsafe_b64encode(k)) for k in derived])


def seal(keys: list[str], secret: str) -> str:
    """Encrypt a signing secret for storage."""
    return _cipher(keys).encrypt(secret.encode("ascii")).decode("ascii")


def unseal(keys: list[str], sealed: str) -> str:
    """Decrypt a stored signing secret; raise ConfigError when no key in the key file opens it."""
    try:
        return _cipher(keys).decrypt(sealed.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise ConfigError("a webhook signing secret cannot be decrypted with the secret key file "
                          "(was its key removed?): run `scim webhooks rotate-secret`") from None


def signing_secrets(keys: list[str], endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """Return the secrets that sign now: the current one, and the previous one during its overlap."""
    found = [unseal(keys, endpoint.secret_encrypted)]
    if endpoint.previous_secret_encrypted and endpoint.previous_expires_at and now < endpoint.previous_expires_at:
        found.append(unseal(keys, endpoint.previous_secret_encrypted))
    return found


def check_url(url: str, allow_http: bool = False) -> str:
    """Return `url` if deliveries may go there: https, or http to a loopback host (or when allowed)."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if len(url) > MAX_URL_LENGTH or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidValue(f"not a valid http(s) URL: {url[:100]!r}")
    if parts.username or parts.password or parts.fragment:
        raise InvalidValue("a webhook URL may not carry user:password@ or a #fragment")
    if parts.scheme == "http" and not (allow_http or is_loopback(parts.hostname)):
        raise InvalidValue(f"{url[:100]!r} is not https: use https, or --allow-http for a trusted network")
    return url


def is_loopback(host: str) -> bool:
    """Return True for localhost, 127.0.0.0/8 and ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_types(text: str | None) -> list[str] | None:
    """Parse `--events a,b,user.*` into known event types; None (no filter) for empty."""
    if text is None or not text.strip():
        return None
    chosen: list[str] = []
    for word in (w.strip() for w in text.split(",") if w.strip()):
        matches = [t for t in EVENT_TYPES if t == word or (word.endswith(".*") and t.startswith(word[:-1]))]
        if not matches:
            raise InvalidValue(f"unknown event type {word[:64]!r}: choose from {', '.join(EVENT_TYPES)}")
        chosen.extend(t for t in matches if t not in chosen)
    return chosen


_OVERLAP_UNITS = {"m": 60, "h": 3600, "d": 86400}
MAX_OVERLAP = timedelta(days=30)


def parse_overlap(text: str) -> timedelta:
    """Parse a rotation overlap: 0, or a count of m(inutes), h(ours) or d(ays), at most 30 days."""
    text = (text or "").strip().lower()
    if text == "0":
        return timedelta(0)
    unit = _OVERLAP_UNITS.get(text[-1:])
    if unit is None or not text[:-1].isdigit():
        raise InvalidValue(f"invalid overlap {text[:20]!r}: use e.g. 30m, 24h, 7d or 0")
    overlap = timedelta(seconds=int(text[:-1]) * unit)
    if overlap > MAX_OVERLAP:
        raise InvalidValue("the overlap may be at most 30 days")
    return overlap


def add(keys: list[str], url: str, types: list[str] | None = None, description: str = "",
        allow_http: bool = False, now: datetime | None = None) -> Added:
    """Register an endpoint; return it with its new signing secret."""
    url, description = check_url(url, allow_http), _clean_description(description)
    now, secret = now or clock.utcnow(), new_secret()
    with write_transaction():
        endpoint = WebhookEndpoint.create(
            id="ep_" + secrets.token_hex(8), url=url, description=description,
            event_types=json.dumps(types) if types is not None else None,
            secret_encrypted=seal(keys, secret), created_at=now,
            stream_cursor=Event.select(peewee.fn.MAX(Event.id)).scalar() or 0)  # from the next event on
        events.record(events.CLI, "webhook.created", "Webhook", endpoint.id, {"url": redacted(url)}, now)
    return Added(endpoint, secret)


def _clean_description(text: str | None) -> str:
    text = " ".join((text or "").split())
    if len(text) > MAX_DESCRIPTION_LENGTH or not text.isprintable():
        raise InvalidValue(f"a description must be at most {MAX_DESCRIPTION_LENGTH} printable characters")
    return text


def redacted(url: str) -> str:
    """Return `url` without its query (receivers put tokens there): what events may record."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + ("?…" if parts.query else "")


def find(endpoint_id: str) -> WebhookEndpoint:
    """Return the endpoint with this id, or raise NotFound."""
    endpoint = WebhookEndpoint.get_or_none(WebhookEndpoint.id == (endpoint_id or "").strip())
    if endpoint is None:
        raise NotFound(f"no webhook endpoint with id {endpoint_id!r}")
    return endpoint


def list_endpoints() -> list[WebhookEndpoint]:
    """Return every endpoint, oldest first."""
    return list(WebhookEndpoint.select().order_by(WebhookEndpoint.created_at, WebhookEndpoint.id))


def remove(endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint and its deliveries (the events stay in the events API)."""
    with write_transaction():
        WebhookDelivery.delete().where(WebhookDelivery.endpoint == endpoint.id).execute()
        if not WebhookEndpoint.delete().where(WebhookEndpoint.id == endpoint.id).execute():
            raise NotFound(f"no webhook endpoint with id {endpoint.id!r}")
        events.record(events.CLI, "webhook.removed", "Webhook", endpoint.id, {"url": redacted(endpoint.url)})


def rotate_secret(keys: list[str], endpoint: WebhookEndpoint, overlap: timedelta,
                  now: datetime | None = None) -> str:
    """Give the endpoint a new secret; the old one keeps signing too for `overlap` (Standard Webhooks)."""
    now, secret = now or clock.utcnow(), new_secret()
    current = _readable(keys, endpoint.secret_encrypted) if overlap else None
    with write_transaction():
        changed = WebhookEndpoint.update(
            secret_encrypted=seal(keys, secret), previous_secret_encrypted=seal(keys, current) if current else None,
            previous_expires_at=now + overlap if current else None,
        ).where(WebhookEndpoint.id == endpoint.id).execute()
        if not changed:
            raise NotFound(f"no webhook endpoint with id {endpoint.id!r}")
        events.record(events.CLI, "webhook.secret_rotated", "Webhook", endpoint.id,
                      {"overlap_seconds": int(overlap.total_seconds())}, now)
    return secret


def _readable(keys: list[str], sealed: str) -> str | None:
    """Return the secret, or None when the key file no longer opens it (rotating is the fix)."""
    try:
        return unseal(keys, sealed)
    except ConfigError:
        return None


def reseal(old_keys: list[str] | None, new_keys: list[str]) -> list[str]:
    """Encrypt every endpoint's secrets under `new_keys` in one transaction.

    Return the ids of endpoints whose current secret `old_keys` cannot open (None: the old
    key file is lost): they keep their sealed value and need `scim webhooks rotate-secret`.
    """
    lost = []
    with write_transaction():
        for endpoint in list(WebhookEndpoint.select()):
            current = _readable(old_keys, endpoint.secret_encrypted) if old_keys else None
            if current is None:
                lost.append(endpoint.id)
                continue
            previous = endpoint.previous_secret_encrypted and _readable(old_keys, endpoint.previous_secret_encrypted)
            WebhookEndpoint.update(secret_encrypted=seal(new_keys, current),
                                   previous_secret_encrypted=seal(new_keys, previous) if previous else None,
                                   ).where(WebhookEndpoint.id == endpoint.id).execute()
    return lost


def enable(endpoint: WebhookEndpoint, now: datetime | None = None) -> WebhookEndpoint:
    """Enable a disabled endpoint: its waiting deliveries, and the events it missed, go out from now.

    The missed events need nothing queued: its stream cursor stayed where disabling stopped it.
    """
    now = now or clock.utcnow()
    with write_transaction():
        endpoint = find(endpoint.id)
        WebhookEndpoint.update(disabled_at=None, disabled_reason=None, failing_since=None).where(
            WebhookEndpoint.id == endpoint.id).execute()
        WebhookDelivery.update(next_attempt_at=now).where(
            (WebhookDelivery.endpoint == endpoint.id) & (WebhookDelivery.state == "pending")).execute()
        events.record(events.CLI, "webhook.enabled", "Webhook", endpoint.id, {"url": redacted(endpoint.url)}, now)
    return find(endpoint.id)


def send_test(endpoint: WebhookEndpoint, now: datetime | None = None) -> int:
    """Record a `webhook.test` event and queue it for this endpoint only; return the event id."""
    now = now or clock.utcnow()
    with write_transaction():
        events.record(events.CLI, "webhook.test", "Webhook", endpoint.id, {"endpoint": endpoint.id}, now)
        event_id = Event.select(Event.id).order_by(Event.id.desc()).limit(1).scalar()
        outbox.add([(event_id, endpoint.id, None)], now)
    return event_id


def resend(event_id: int, endpoint: WebhookEndpoint | None = None, now: datetime | None = None) -> list[str]:
    """Send an event again to the endpoints it went to (or the one given); return their ids.

    Where it is still pending (retrying), its next attempt is brought forward instead of
    queueing a second copy.
    """
    now = now or clock.utcnow()
    with write_transaction():
        event = Event.get_or_none(Event.id == event_id)
        if event is None:
            raise NotFound(f"no event with id {event_id}")
        targets = [endpoint.id] if endpoint is not None else _sent_to(event)
        if not targets:
            raise NotFound(f"event {event_id} was not sent to any webhook endpoint: name one with --endpoint")
        pending = WebhookDelivery.update(next_attempt_at=now).where(
            (WebhookDelivery.event_id == event_id) & (WebhookDelivery.state == "pending")
            & WebhookDelivery.endpoint.in_(targets)).returning(WebhookDelivery.endpoint).execute()
        waiting = {row.endpoint_id for row in pending}
        subject = outbox.subject_of({"action": event.action, "resource_type": event.resource_type,
                                     "resource_id": event.resource_id, "summary": event.summary})
        outbox.add([(event_id, target, subject) for target in targets if target not in waiting], now)
    return targets


def _sent_to(event: Event) -> list[str]:
    """Return the endpoints that have a row for the event, or whose stream went past it and wanted it."""
    rows = WebhookDelivery.select(WebhookDelivery.endpoint).where(WebhookDelivery.event_id == event.id).tuples()
    found = {endpoint_id for (endpoint_id,) in rows}
    for endpoint in WebhookEndpoint.select().where((WebhookEndpoint.stream_cursor >= event.id)
                                                   & (WebhookEndpoint.created_at <= event.at)):
        if outbox.wants(endpoint.event_types, event.action):
            found.add(endpoint.id)
    return sorted(found)


def deliveries(endpoint: WebhookEndpoint, failed_only: bool = False, limit: int = 50) -> list[dict[str, Any]]:
    """Return the endpoint's newest deliveries (with the event type); failing or given up only when asked.

    A row exists only for a delivery that needed state of its own; an event the stream
    delivered at its first attempt is listed from the event log (no row id, attempts 1).
    """
    query = (WebhookDelivery.select(WebhookDelivery, Event.action)
             .join(Event, peewee.JOIN.LEFT_OUTER, on=(WebhookDelivery.event_id == Event.id), attr="event_row")
             .where(WebhookDelivery.endpoint == endpoint.id).order_by(WebhookDelivery.id.desc()).limit(max(limit, 0)))
    if failed_only:
        query = query.where((WebhookDelivery.state == "failed") |
                            ((WebhookDelivery.state == "pending") & (WebhookDelivery.attempts > 0)))
        return [delivery_dict(row) for row in query]
    found = [delivery_dict(row) for row in query] + _streamed(endpoint, limit)
    return sorted(found, key=lambda d: (d["event_id"], d["id"] or 0), reverse=True)[:max(limit, 0)]


def _streamed(endpoint: WebhookEndpoint, limit: int) -> list[dict[str, Any]]:
    """Return the newest events the endpoint's stream delivered at the first attempt (those without a row)."""
    with_row = WebhookDelivery.select(WebhookDelivery.event_id).where(WebhookDelivery.endpoint == endpoint.id)
    query = (Event.select(Event.id, Event.action, Event.at)
             .where((Event.id <= endpoint.stream_cursor) & (Event.at >= endpoint.created_at)
                    & outbox.wanted(endpoint.event_types) & Event.id.not_in(with_row))
             .order_by(Event.id.desc()).limit(max(limit, 0)))
    return [{"id": None, "event_id": events.event_id(event.id), "type": event.action, "state": "delivered",
             "attempts": 1, "last_status": None, "last_error": None, "last_attempt_at": None,
             "next_attempt_at": None, "delivered_at": None} for event in query]


def delivery_dict(row: WebhookDelivery) -> dict[str, Any]:
    """Return a delivery with stable keys for --json."""
    event = getattr(row, "event_row", None)
    return {"id": row.id, "event_id": events.event_id(row.event_id), "type": event.action if event else None, "state": row.state,
            "attempts": row.attempts, "last_status": row.last_status, "last_error": row.last_error,
            "last_attempt_at": row.last_attempt_at, "next_attempt_at": row.next_attempt_at if row.state == "pending" else None,
            "delivered_at": row.delivered_at}


def as_dict(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """Return an endpoint with stable keys for --json (never a secret)."""
    return {"id": endpoint.id, "url": endpoint.url, "description": endpoint.description,
            "events": json.loads(endpoint.event_types) if endpoint.event_types is not None else None,
            "status": "disabled" if endpoint.disabled_at else "enabled", "created_at": endpoint.created_at,
            "disabled_at": endpoint.disabled_at, "disabled_reason": endpoint.disabled_reason,
            "failing_since": endpoint.failing_since, "previous_secret_expires_at": endpoint.previous_expires_at}
