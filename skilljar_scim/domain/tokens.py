"""Bearer tokens: generate, list, show, revoke, authenticate.

A token value is `sjscim_` + an itsdangerous-signed `<id>.<secret>`. The signature lets
the server refuse forged or mangled values before touching the database; the store keeps
only SHA-256 of the 256-bit secret, compared in constant time. Only the exact string that
was issued authenticates: itsdangerous alone would also accept variants (base64's spare
bits in the last character), so the signature is recomputed and the whole value compared.
Each token records the id of the key that signed it (base/keyfile.key_id), so listings can
say which tokens the current key file can no longer verify.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Collection

import itsdangerous
import peewee

from skilljar_scim.base import clock, keyfile, textkey
from skilljar_scim.domain import events
from skilljar_scim.base.errors import Conflict, Forbidden, InvalidValue, NotFound, TokenRefused, Unauthorized
from skilljar_scim.store import sqlcache
from skilljar_scim.store.db import best_effort_write, write_transaction
from skilljar_scim.store.models import Token

PREFIX = "sjscim_"
INVALID = "the bearer token is not valid"
SALT = "skilljar-scim.token.v1"
LAST_USED_INTERVAL = timedelta(seconds=60)
MAX_NAME_LENGTH = 200
# Compared against when the token id is unknown, so that path costs the same as a real one.
_DUMMY_HASH = hashlib.sha256(b"skilljar-scim: no such token").hexdigest()
_TOKEN_ID = re.compile(r"[0-9a-f]{1,32}")
ID_HEX_DIGITS = 12  # the length of a token id
_LOOKS_LIKE_ID = re.compile(rf"[0-9a-fA-F]{{{ID_HEX_DIGITS}}}")
_DURATION = re.compile(r"^\s*(\d+)\s*([dwy])\s*$", re.IGNORECASE)
_UNITS = {"d": 1, "w": 7, "y": 365}
# What each scope may do (DESIGN: Scopes): an IdP provisions, a consumer reads SCIM and the feed.
SCOPES = {
    "provision": frozenset({"scim.read", "scim.write"}),
    "read": frozenset({"scim.read", "events.read"}),
}
DEFAULT_SCOPE = "provision"
_REFUSALS = {
    "scim.write": "a read token cannot change anything: SCIM writes need a provision token",
    "events.read": "a provision token cannot read the events API: generate one with --scope read",
    "scim.read": "this token cannot read SCIM resources",
}


@dataclass(frozen=True)
class Generated:
    """A new token and its value, which exists only here and is never stored."""

    token: Token
    value: str


def status(token: Token, now: datetime | None = None, key_ids: Collection[str] | None = None) -> str:
    """Return "revoked", "expired", "unverifiable" (given the current `key_ids`) or "active".

    Unverifiable: signed by a key no longer in the key file, so every request with it is
    refused. A token whose key is unknown (issued before keys were recorded, never used
    since) counts as verifiable while there is any key.
    """
    now = now or clock.utcnow()
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    if key_ids is not None and not verifiable(token, key_ids):
        return "unverifiable"
    return "active"


def verifiable(token: Token, key_ids: Collection[str]) -> bool:
    """Return whether one of the keys `key_ids` names can have signed `token`."""
    return token.key_id in key_ids if token.key_id else bool(key_ids)


def unverifiable(key_ids: Collection[str], now: datetime | None = None) -> list[Token]:
    """Return the live tokens that none of the keys `key_ids` names can have signed."""
    return [token for token in list_tokens() if status(token, now, key_ids) == "unverifiable"]


def live_count(now: datetime | None = None) -> int:
    """Return how many tokens are neither revoked nor expired."""
    now = now or clock.utcnow()
    unexpired = Token.expires_at.is_null() | (Token.expires_at > now)
    return Token.select().where(Token.revoked_at.is_null(), unexpired).count()


def parse_expiry(text: str, now: datetime | None = None) -> datetime | None:
    """Turn `30d`/`12w`/`1y`, an ISO date or datetime, or `never` into an expiry (None = never)."""
    now = now or clock.utcnow()
    text = (text or "").strip()
    if text.lower() == "never":
        return None
    match = _DURATION.match(text)
    if match:
        return _expiry_after(now, int(match.group(1)), match.group(2).lower(), text)
    try:
        moment = clock.parse_iso(text)
    except ValueError:
        raise InvalidValue(f"invalid expiry {text!r}: use e.g. 30d, 12w, 1y, 2027-01-31 or never") from None
    if moment <= now:
        raise InvalidValue(f"expiry {text!r} is in the past")
    return moment


def _expiry_after(now: datetime, count: int, unit: str, text: str) -> datetime:
    days = count * _UNITS[unit]
    if not 1 <= days <= 36500:
        raise InvalidValue(f"invalid expiry {text!r}: choose between 1d and 100y, or never")
    return now + timedelta(days=days)


def check_scope(scope: str) -> str:
    """Return `scope` if it is one of SCOPES; else raise InvalidValue naming them."""
    if scope not in SCOPES:
        raise InvalidValue(f"unknown scope {scope!r}: choose {' or '.join(SCOPES)}")
    return scope


def authorize(token: Token, operation: str) -> None:
    """Raise Forbidden unless the token's scope allows `operation` (RFC 7644 §3.12: 403)."""
    if operation not in SCOPES.get(token.scope, frozenset()):
        raise Forbidden(_REFUSALS.get(operation, f"this token's scope does not allow {operation}"))


def generate(keys: list[str], name: str, expires_at: datetime | None, now: datetime | None = None,
             scope: str = DEFAULT_SCOPE) -> Generated:
    """Create a token named `name` with `scope`; return it with its value (shown once, never stored)."""
    name = _clean_name(name)
    scope = check_scope(scope)
    now = now or clock.utcnow()
    token_id, secret = secrets.token_hex(ID_HEX_DIGITS // 2), secrets.token_hex(32)
    with write_transaction():
        existing = Token.get_or_none(Token.name_key == textkey.key(name), Token.revoked_at.is_null())
        if existing is not None:
            raise Conflict(f"a live token named {existing.name!r} (id {existing.id}) already exists: "
                           "revoke it first or choose another name")
        token = Token.create(
            id=token_id, name=name, name_key=textkey.key(name), secret_hash=_hash(secret),
            created_at=now, expires_at=expires_at, key_id=keyfile.key_id(keys[-1]), scope=scope,
        )
        events.record(events.CLI, "token.created", "Token", token_id, {"name": name, "scope": scope}, now)
    value = PREFIX + _signer(keys).sign(f"{token_id}.{secret}").decode("ascii")
    return Generated(token, value)


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise InvalidValue(f"a token name must be 1-{MAX_NAME_LENGTH} printable characters")
    if _LOOKS_LIKE_ID.fullmatch(name) or Token.get_or_none(Token.id == name.lower()) is not None:
        # `scim token show/revoke NAME` tries ids first: such a name could never be looked up.
        raise InvalidValue(f"a token name cannot look like a token id ({ID_HEX_DIGITS} hex digits), got {name!r}")
    return name


def list_tokens(include_revoked: bool = False) -> list[Token]:
    """Return tokens, newest first; revoked ones only when asked."""
    query = Token.select().order_by(Token.created_at.desc(), Token.id)
    if not include_revoked:
        query = query.where(Token.revoked_at.is_null())
    return list(query)


def find(ref: str) -> Token:
    """Return the token whose id is `ref`, else the one named `ref` (case-insensitive)."""
    token = Token.get_or_none(Token.id == ref.strip())
    if token is not None:
        return token
    named = list(Token.select().where(Token.name_key == textkey.key(" ".join(ref.split()))))
    live = [t for t in named if t.revoked_at is None]
    if len(live) == 1 or len(named) == 1:
        return (live or named)[0]
    if named:
        ids = ", ".join(t.id for t in named)
        raise Conflict(f"several revoked tokens are named {ref!r} ({ids}): name one by its id")
    raise NotFound(f"no token with id or name {ref!r}")


def ensure_revocable(token: Token) -> Token:
    """Raise Conflict when `token` is already revoked (check before asking for confirmation)."""
    if token.revoked_at is not None:
        raise Conflict(f"token {token.name!r} ({token.id}) is already revoked")
    return token


def revoke(token: Token, now: datetime | None = None) -> Token:
    """Revoke `token` from now on; refuse one that is already revoked."""
    now = now or clock.utcnow()
    with write_transaction():
        query = Token.update(revoked_at=now).where(Token.id == token.id, Token.revoked_at.is_null())
        if not query.execute():
            raise Conflict(f"token {token.name!r} ({token.id}) is already revoked")
        events.record(events.CLI, "token.revoked", "Token", token.id, {"name": token.name}, now)
    return Token.get_by_id(token.id)


def authenticate(keys: list[str], value: str, now: datetime | None = None,
                 before_lookup: Callable[[str], None] | None = None) -> Token:
    """Return the live token for a bearer `value`, or raise Unauthorized.

    `before_lookup` gets the id of a correctly signed value before any database work
    (rate limiting refuses a revoked or expired token that keeps trying). A genuine token that is revoked or
    expired raises TokenRefused. An unknown id costs the same as a wrong secret: the
    secret is hashed and compared against a dummy hash.
    """
    token_id, secret, key_id = _unsign(keys, value)
    if before_lookup is not None:
        before_lookup(token_id)
    token = sqlcache.first("token.by_id", lambda: Token.select().where(Token.id == sqlcache.param(0)), [token_id])
    matched = hmac.compare_digest(token.secret_hash if token else _DUMMY_HASH, _hash(secret))
    if token is None or not matched:
        raise Unauthorized(INVALID)
    now = now or clock.utcnow()
    state = status(token, now)
    if state != "active":
        with best_effort_write():
            Token.update(refused_count=Token.refused_count + 1).where(Token.id == token.id).execute()
        raise TokenRefused(f"the bearer token is {state}", token.id, token.name)
    _touch(token, now)
    _remember_key(token, key_id)
    return token


def claimed_id(value: object) -> str | None:
    """Return the token id a bearer value claims, unverified (None when it has no such shape)."""
    if not isinstance(value, str) or not value.startswith(PREFIX):
        return None
    token_id = value[len(PREFIX):].partition(".")[0]
    return token_id if _TOKEN_ID.fullmatch(token_id) else None


def _unsign(keys: list[str], value: str) -> tuple[str, str, str]:
    """Return (token id, secret, key id) of exactly an issued value, without any database work.

    itsdangerous decodes the signature's base64 leniently, so other strings carry the same
    signature; signing the payload again with each key and comparing the whole value (in
    constant time) accepts only the one string that was issued.
    """
    if not isinstance(value, str) or not value.startswith(PREFIX) or not value.isascii():
        raise Unauthorized(INVALID)
    signed = value[len(PREFIX):].encode("ascii")
    payload = signed.rpartition(b".")[0]
    for key in reversed(keys):  # the newest key signs most tokens
        if hmac.compare_digest(_key_signer(key).sign(payload), signed):
            token_id, _, secret = payload.decode("ascii").partition(".")
            return token_id, secret, keyfile.key_id(key)
    raise Unauthorized(INVALID)


def _remember_key(token: Token, key_id: str) -> None:
    """Record which key signed a token issued before keys were recorded (schema 6), on its first use."""
    if token.key_id is not None:
        return
    with best_effort_write():
        Token.update(key_id=key_id).where(Token.id == token.id, Token.key_id.is_null()).execute()
    token.key_id = key_id


def _touch(token: Token, now: datetime) -> None:
    """Record use at most once per LAST_USED_INTERVAL, across threads and processes."""
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_INTERVAL:
        return
    stale = peewee.fn.COALESCE(Token.last_used_at, datetime(1970, 1, 1)) <= now - LAST_USED_INTERVAL
    with best_effort_write():  # a busy store must not fail (or slow) the request it authenticates
        Token.update(last_used_at=now).where(Token.id == token.id, stale).execute()
    token.last_used_at = now


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _signer(keys: list[str]) -> itsdangerous.Signer:
    # itsdangerous signs with the last key and accepts any of them.
    return itsdangerous.Signer(keys, salt=SALT, digest_method=hashlib.sha256)


@functools.lru_cache(maxsize=8)
def _key_signer(key: str) -> itsdangerous.Signer:
    """Return the signer of one key, built once: every request checks a signature with it.

    Keyed by the key itself, so a replaced key file's keys get signers of their own and a
    key taken out of the file is never tried again (`_unsign` tries only the keys it is given).
    """
    return _signer([key])
