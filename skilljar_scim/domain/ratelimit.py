"""Rate limiting of failed authentication (RFC 6585 §4), in each server process's memory.

Decided once here (README "Rate limiting" tells operators the same):

- Only failures are limited, and a request is authenticated before the limiter is asked:
  the signature first (no database), then the token. A valid, active token is never
  refused here, whatever its address did before. A failure (no or malformed header, a
  bad signature, an unknown id, a wrong secret) counts against the client address; a
  genuine token that is revoked or expired counts against that token, from any address.
- Each subject has a bucket, kept as one number (the generic cell rate algorithm, GCRA:
  the "theoretical arrival time"): `limit` failures at once, then one more every
  60/limit seconds. A failure the bucket has no room for is answered 429 instead of 401
  and is not counted, so being refused never extends a block: a client that keeps failing
  gets one 401 every 60/limit seconds, and one that stops is forgotten within a minute.
- A token whose bucket is empty is refused once its signature checks, before any lookup.
- The table holds at most `max_clients` subjects. Subjects whose bucket has refilled are
  dropped first; when it is still full (that many subjects failed within a minute: a
  flood), a failure from a subject not in it is answered 429 without being tracked. Only
  failing requests are ever refused, so a flood costs genuine tokens nothing.
- Why memory and not the database: a failure counted in the database was a write
  transaction (the write lock and an fsync) per failed request, so a flood of failures
  from many addresses queued against the IdP's own writes, and every successful request
  read the counters. Here a failure costs a dictionary update and a success costs nothing.
  The price: each worker process counts for itself, so an address gets up to `limit` x
  processes failures a minute. That still bounds what a bad client costs, which is what
  the limit is for: a token cannot be guessed (a 256-bit secret behind an HMAC signature).
"""

from __future__ import annotations

import ipaddress
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, NoReturn

from skilljar_scim.base import clock
from skilljar_scim.base.errors import RateLimited, TokenRefused, Unauthorized
from skilljar_scim.domain import tokens
from skilljar_scim.store.models import Token

WINDOW_SECONDS = 60.0
ADDRESS, TOKEN = "address", "token"
MISSING = "authentication required: send Authorization: Bearer <token>"
REFUSED = "too many failed authentication attempts: try again later"


@dataclass(frozen=True)
class Policy:
    """Failures allowed per minute per client address and per genuine token (0 = no limit), and the table size."""

    address_limit: int = 30
    token_limit: int = 30
    max_clients: int = 10_000

    @classmethod
    def from_settings(cls, security) -> "Policy":
        """Build the policy from the [security] settings."""
        return cls(security.auth_failures_per_minute, security.token_failures_per_minute,
                   security.auth_failure_table_size)

    def limit(self, kind: str) -> int:
        return self.address_limit if kind == ADDRESS else self.token_limit


class Limiter:
    """Failure buckets per (kind, subject) for the threads of one process, at most `max_clients` of them."""

    def __init__(self, policy: Policy, now: clock.Monotonic = clock.monotonic):
        self.policy = policy
        self._now = now
        self._lock = threading.Lock()
        # (kind, subject) -> (theoretical arrival time, token name), least recently counted first.
        self._due: OrderedDict[tuple[str, str], tuple[float, str | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._due)

    def check(self, kind: str, subject: str) -> None:
        """Raise 429 when the subject's bucket is empty; count nothing."""
        limit = self.policy.limit(kind)
        if limit <= 0:
            return
        with self._lock:
            due, name = self._due.get((kind, subject), (None, None))
            wait = _wait(limit, due, self._now()) if due is not None else 0.0
        if wait > 0:
            raise RateLimited(REFUSED, _seconds(wait), name)

    def fail(self, kind: str, subject: str, error: Unauthorized, name: str | None = None) -> NoReturn:
        """Count a failure and raise `error`; raise 429 instead, uncounted, when the bucket is empty."""
        limit = self.policy.limit(kind)
        wait = self._count(limit, (kind, subject), name) if limit > 0 else 0.0
        if wait > 0:
            raise RateLimited(REFUSED, _seconds(wait), name) from None
        raise error

    def _count(self, limit: int, key: tuple[str, str], name: str | None) -> float:
        """Take one failure from the key's bucket; return 0, or the seconds until there is room."""
        with self._lock:
            now = self._now()
            due = self._due.get(key, (None, None))[0]
            wait = _wait(limit, due, now)
            if wait > 0:
                return wait
            if due is None and not self._room(now):
                return self._next_free(now)
            self._due[key] = (max(due or now, now) + WINDOW_SECONDS / limit, name)
            self._due.move_to_end(key)
            return 0.0

    def _room(self, now: float) -> bool:
        """Drop refilled buckets from the least recently counted end; say whether one more fits."""
        while self._due and next(iter(self._due.values()))[0] <= now:
            self._due.popitem(last=False)
        return len(self._due) < self.policy.max_clients

    def _next_free(self, now: float) -> float:
        """Return the seconds until the least recently counted bucket has refilled."""
        return next(iter(self._due.values()))[0] - now if self._due else 1.0


def _wait(limit: int, due: float | None, now: float) -> float:
    """Return the seconds until one more failure fits in a bucket (<= 0: it fits now) (GCRA)."""
    if due is None:
        return 0.0
    interval = WINDOW_SECONDS / limit
    return max(due, now) - now - (WINDOW_SECONDS - interval)


def _seconds(wait: float) -> int:
    """Return a wait as whole seconds for Retry-After (RFC 9110 §10.2.3), at least 1."""
    return max(1, math.ceil(wait))


def authenticate(limiter: Limiter, keys: list[str], address: Callable[[], str], value: str | None) -> Token:
    """Return the live token for a bearer `value` (None: none sent), or raise 401 or 429 (RFC 6750 §3.1).

    `address()` gives the client address (client_address); it is asked only when a failure
    counts against it, so a request with a valid token never parses X-Forwarded-For.
    """
    try:
        if value is None:
            raise Unauthorized(MISSING)
        return tokens.authenticate(keys, value, before_lookup=lambda token_id: limiter.check(TOKEN, token_id))
    except TokenRefused as exc:
        limiter.fail(TOKEN, exc.token_id, exc, exc.token_name)
    except Unauthorized as exc:
        limiter.fail(ADDRESS, address(), exc)


def client_address(remote_addr: str | None, forwarded_for: list[str], trusted_proxies: int) -> str:
    """Return the address failures count against: the peer, or the entry trusted proxies added.

    With `trusted_proxies` = n, the client is the n-th X-Forwarded-For entry from the right
    (each proxy appends the address it saw). A port on an entry (`192.0.2.1:5678`,
    `[2001:db8::1]:443`) is dropped. An IPv6 client counts as its /64, which one host
    usually holds whole.
    """
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    if trusted_proxies > 0 and len(hops) >= trusted_proxies:
        found = _normalise(hops[-trusted_proxies])
        if found is not None:
            return found
    return _normalise(remote_addr or "") or "unknown"


def _normalise(text: str) -> str | None:
    """Return an address in canonical form (IPv6 as its /64), or None when it is not one."""
    try:
        address = ipaddress.ip_address(_without_port(text.strip().strip('"')))
    except ValueError:
        return None
    if address.version == 4:
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


def _without_port(text: str) -> str:
    """Drop a port: `[v6]:port` and `[v6]` give v6, `v4:port` gives v4; a bare IPv6 is kept whole."""
    if text.startswith("["):
        return text[1:].partition("]")[0]
    host, colon, port = text.rpartition(":")
    return host if colon and host.count(":") == 0 and port.isdigit() else text
