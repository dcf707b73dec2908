"""Rate limiting of failed authentication, shared through the database (RFC 6585 §4).

Counters are fixed one-minute windows keyed by (kind, subject, window start) in the
AuthFailure table, so every thread, worker process and `scim serve` on one database sees
the same numbers. Decided once here:

- A failure counts against the client address, except a genuine token (valid signature
  and secret) that is revoked or expired, which counts against that token's id.
- An address at its limit is refused (429) before any token verification, even with a
  valid token, until its window ends; a token at its limit is refused once its signature
  checks, before it is looked up. Refusals are not counted, so being blocked costs a read.
- The failure that goes over a limit is itself answered 429 (counting is one atomic
  upsert), so concurrent requests never get more 401s per window than the limit.
- Successful requests write nothing. Rows of past windows are deleted whenever a failure
  is recorded, so the table holds at most one row per address and token that failed in
  the current window.
"""

from __future__ import annotations

import ipaddress
import math
import operator
import time
from dataclasses import dataclass
from functools import reduce

from skilljar_scim.domain import tokens
from skilljar_scim.base.errors import RateLimited, TokenRefused, Unauthorized
from skilljar_scim.store import sqlcache as prepared
from skilljar_scim.store.db import write_transaction
from skilljar_scim.store.models import AuthFailure, Token

WINDOW_SECONDS = 60
ADDRESS, TOKEN = "address", "token"
MAX_SUBJECT = 64  # AuthFailure.subject's length
MISSING = "authentication required: send Authorization: Bearer <token>"


@dataclass(frozen=True)
class Policy:
    """Failures allowed per window: per client address and per genuine token (0 = no limit)."""

    address_limit: int = 30
    token_limit: int = 30

    @classmethod
    def from_settings(cls, security) -> "Policy":
        """Build the policy from the [security] settings."""
        return cls(security.auth_failures_per_minute, security.token_failures_per_minute)


def authenticate(policy: Policy, keys: list[str], address: str, value: str | None,
                 now: float | None = None) -> Token:
    """Return the live token for a bearer `value` (None: none sent), or raise 401 or 429."""
    now = _now() if now is None else now
    window = window_start(now)
    counts = _counts(policy, window, address, tokens.claimed_id(value))
    _refuse_over(policy.address_limit, counts.get((ADDRESS, address), 0), window, now)
    try:
        if value is None:
            raise Unauthorized(MISSING)
        return tokens.authenticate(keys, value, before_lookup=lambda token_id: _refuse_over(
            policy.token_limit, counts.get((TOKEN, token_id), 0), window, now))
    except TokenRefused as exc:
        _failed(policy.token_limit, TOKEN, exc.token_id, window, now, exc)
    except Unauthorized as exc:
        _failed(policy.address_limit, ADDRESS, address, window, now, exc)


def client_address(remote_addr: str | None, forwarded_for: list[str], trusted_proxies: int) -> str:
    """Return the address failures count against: the peer, or the entry trusted proxies added.

    With `trusted_proxies` = n, the client is the n-th X-Forwarded-For entry from the right
    (each proxy appends the address it saw). An IPv6 client counts as its /64, which one
    host usually holds whole.
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
        address = ipaddress.ip_address(text.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return None
    if address.version == 4:
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


def window_start(now: float) -> int:
    """Return the Unix time the fixed window holding `now` began."""
    return int(now // WINDOW_SECONDS) * WINDOW_SECONDS


def retry_after(window: int, now: float) -> int:
    """Return the whole seconds until the window ends (RFC 9110 §10.2.3 Retry-After), at least 1."""
    return max(1, math.ceil(window + WINDOW_SECONDS - now))


def _counts(policy: Policy, window: int, address: str, token_id: str | None) -> dict:
    """Read this window's failures of the address and the claimed token, in one query."""
    wanted = {}
    if policy.address_limit > 0:
        wanted[ADDRESS] = address[:MAX_SUBJECT]
    if policy.token_limit > 0 and token_id is not None:
        wanted[TOKEN] = token_id[:MAX_SUBJECT]
    if not wanted:
        return {}
    kinds = tuple(wanted)
    rows = prepared.execute(("auth_failures", kinds), lambda: _counts_query(kinds), [window, *wanted.values()])
    return {(kind, subject): failures for kind, subject, failures in rows}


def _counts_query(kinds: tuple[str, ...]):
    """Failures in the window (value 0) of each kind's subject (values 1..n)."""
    wanted = [(AuthFailure.kind == kind) & (AuthFailure.subject == prepared.param(i + 1)) for i, kind in enumerate(kinds)]
    return (AuthFailure.select(AuthFailure.kind, AuthFailure.subject, AuthFailure.failures)
            .where(AuthFailure.window_start == prepared.param(0), reduce(operator.or_, wanted)).tuples())


def _refuse_over(limit: int, failures: int, window: int, now: float) -> None:
    """Raise 429 when `failures` already reached `limit` in this window."""
    if 0 < limit <= failures:
        raise RateLimited("too many failed authentication attempts: try again later",
                          retry_after(window, now))


def _failed(limit: int, kind: str, subject: str, window: int, now: float, error: Unauthorized):
    """Count a failure and re-raise it, as 429 when it is one over the limit."""
    if limit > 0 and record(kind, subject, window) > limit:
        _refuse_over(limit, limit, window, now)
    raise error


def record(kind: str, subject: str, window: int) -> int:
    """Add one failure to (kind, subject, window) and return the window's total; prune old windows."""
    subject = subject[:MAX_SUBJECT]
    key = (AuthFailure.kind == kind) & (AuthFailure.subject == subject) & (AuthFailure.window_start == window)
    with write_transaction():
        AuthFailure.delete().where(AuthFailure.window_start < window).execute()
        (AuthFailure.insert(kind=kind, subject=subject, window_start=window, failures=1)
         .on_conflict(conflict_target=[AuthFailure.kind, AuthFailure.subject, AuthFailure.window_start],
                      update={AuthFailure.failures: AuthFailure.failures + 1})
         .execute())
        return AuthFailure.select(AuthFailure.failures).where(key).scalar()


def _now() -> float:
    return time.time()
