"""What an admin reads first (`scim status`): the store, tokens, users, mappings, the last provisioning, webhooks.

`problems` lists what stops provisioning, or grants roles nobody chose, unless someone acts:
a store that cannot be read, fails its quick integrity check or has another schema version; a
live token that expires soon, has expired, or that no current key can verify; a mapping to a
role missing from the catalog, or one whose group's name now belongs to another group; a
disabled webhook endpoint, or one whose signing secret the key file cannot open. The store is only
read: never migrated, never written.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import peewee

from skilljar_scim.base import clock, keyfile
from skilljar_scim.base.config import Settings
from skilljar_scim.base.errors import ConfigError, DatabaseError, SkilljarError
from skilljar_scim.domain import events, integrity, listings, roles, stream, tokens, webhooks
from skilljar_scim.store import db as store_db
from skilljar_scim.store.models import Event, Group, Token, User, WebhookDelivery, WebhookEndpoint

DEFAULT_EXPIRING_DAYS = 14
PG_INTEGRITY = "connected (PostgreSQL checks its own pages: pg_amcheck)"
_WAITING = ("waiting", "group deleted")  # roles.list_mappings states with no group to grant through
_USES = {"provision": "its identity provider can no longer provision",
         "read": "the application that reads with it gets nothing"}


@dataclass(frozen=True)
class StoreState:
    """Where the store is, what schema it has, how big it is, whether it reads cleanly."""

    kind: str
    location: str
    schema_version: int | None
    expected_schema_version: int
    size_bytes: int | None
    integrity: str


@dataclass(frozen=True)
class TokenState:
    """A token that is not revoked: its use, what it refused, how soon it expires."""

    id: str
    name: str
    scope: str
    status: str
    expires_at: datetime | None
    days_left: float | None
    expiring_soon: bool
    last_used_at: datetime | None
    refused_requests: int


@dataclass
class Status:
    """Everything `scim status` shows; `problems` is empty when nothing needs an admin."""

    store: StoreState
    expiring_within_days: int
    tokens: list[TokenState] = field(default_factory=list)
    users: dict[str, int] = field(default_factory=dict)
    groups: int | None = None
    mappings_waiting_for_group: list[dict] = field(default_factory=list)
    mappings_in_conflict: list[dict] = field(default_factory=list)
    mappings_to_missing_roles: list[dict] = field(default_factory=list)
    last_provisioning: dict | None = None
    webhooks: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def collect(settings: Settings, expiring_within_days: int = DEFAULT_EXPIRING_DAYS,
            now: datetime | None = None) -> Status:
    """Read the store in one snapshot and say what needs attention; a store that cannot be read is a problem."""
    try:
        db = store_db.open_configured(settings.database, migrate_schema=False)
    except DatabaseError as exc:  # an empty file, or not SQLite: `scim init` refuses it too
        return _unreadable(settings, expiring_within_days, exc.detail)
    report = Status(store=_store_unread(settings, "not read"), expiring_within_days=expiring_within_days)
    try:
        _collect(db, report, settings, now or clock.utcnow())
    except store_db.READ_ERRORS as exc:  # unreachable server, or pages too damaged to read
        return _unreadable(settings, expiring_within_days, store_db.one_line(exc))
    finally:
        db.close()
    return report


def _unreadable(settings: Settings, days: int, reason: str) -> Status:
    """Return a report of the store's failure alone: nothing read from it could be trusted."""
    report = Status(store=_store_unread(settings, f"cannot read: {reason}"), expiring_within_days=days)
    report.problems.append(f"the store {report.store.location} cannot be read: {reason}")
    return report


def _store_unread(settings: Settings, integrity: str) -> StoreState:
    sqlite = settings.sqlite_path is not None
    return StoreState(kind="sqlite" if sqlite else "postgresql", location=_location(settings), schema_version=None,
                      expected_schema_version=store_db.SCHEMA_VERSION, size_bytes=None, integrity=integrity)


def _location(settings: Settings) -> str:
    path = settings.sqlite_path
    return str(path.resolve()) if path is not None else store_db.redact(settings.database.url)


def _collect(db: peewee.Database, report: Status, settings: Settings, now: datetime) -> None:
    """Check the store first: a damaged one, or one of another schema, is reported and not read further."""
    report.store = _store_state(db, settings)
    report.problems.extend(_store_problems(report.store))
    if report.problems:
        return
    key_ids = _key_ids(settings, report.problems)
    with store_db.read_transaction():  # one snapshot for every figure
        _read_directory(report, settings.roles.catalog, now, key_ids)
        report.problems.extend(_secret_problems(_keys(settings), now) if key_ids else [])


def _read_directory(report: Status, catalog: dict[str, str], now: datetime, key_ids: set[str]) -> None:
    report.tokens = _token_states(now, timedelta(days=report.expiring_within_days), key_ids)
    report.users = _user_counts()
    report.groups = Group.select().count()
    _mapping_gaps(report, catalog)
    report.last_provisioning = _last_provisioning()
    report.webhooks = _webhook_states()
    report.problems.extend(_token_problems(report.tokens, bool(key_ids)))
    report.problems.extend(_mapping_problems(report))
    report.problems.extend(_webhook_problems(report.webhooks))


# --- the store ------------------------------------------------------------------------


def _store_state(db: peewee.Database, settings: Settings) -> StoreState:
    sqlite = isinstance(db, peewee.SqliteDatabase)
    return StoreState(
        kind="sqlite" if sqlite else "postgresql",
        location=_location(settings),
        schema_version=store_db.schema_version(db),  # on PostgreSQL, the first query: the connection check
        expected_schema_version=store_db.SCHEMA_VERSION,
        size_bytes=_sqlite_size(settings.sqlite_path) if sqlite else _postgres_size(db),
        integrity=integrity.pragma_verdict(db, "quick_check") if sqlite else PG_INTEGRITY,
    )


def _sqlite_size(path: Path) -> int:
    """Return the bytes of the database file and its write-ahead log."""
    files = (path, path.with_name(path.name + "-wal"))
    return sum(os.stat(f).st_size for f in files if f.exists())


def _postgres_size(db: peewee.Database) -> int:
    return db.execute_sql("SELECT pg_database_size(current_database())").fetchone()[0]


def _store_problems(store: StoreState) -> list[str]:
    if store.kind == "sqlite" and store.integrity != "ok":
        return [f"the store fails its quick integrity check: {store.integrity} (see `scim db check`)"]
    if store.schema_version == 0:
        return ["the store has no skilljar-scim schema (empty, or another application's): "
                "point database.url at the store, or run `scim init`"]
    problem = integrity.schema_problem(store.schema_version)
    return [f"the store's {problem}"] if problem else []


# --- tokens ---------------------------------------------------------------------------


def _key_ids(settings: Settings, problems: list[str]) -> set[str]:
    """Return the ids of the current keys; a missing or unusable key file is a problem (no token verifies)."""
    try:
        found = keyfile.key_ids(settings.key_path)
    except ConfigError as exc:
        problems.append(f"{exc.detail}; until then no token can be verified")
        return set()
    if not found:
        problems.append(f"no secret key file at {settings.key_path}: no token can be verified, "
                        "every request is refused (restore it from a backup)")
    return found


def _token_states(now: datetime, soon: timedelta, key_ids: set[str]) -> list[TokenState]:
    live = Token.select().where(Token.revoked_at.is_null()).order_by(Token.expires_at.asc(nulls="LAST"), Token.name)
    return [_token_state(token, now, soon, key_ids) for token in live]


def _token_state(token: Token, now: datetime, soon: timedelta, key_ids: set[str]) -> TokenState:
    left = token.expires_at - now if token.expires_at else None
    return TokenState(
        id=token.id, name=token.name, scope=token.scope, status=tokens.status(token, now, key_ids),
        expires_at=token.expires_at, days_left=round(left / timedelta(days=1), 2) if left is not None else None,
        expiring_soon=left is not None and timedelta(0) < left <= soon,
        last_used_at=token.last_used_at, refused_requests=token.refused_count,
    )


def _token_problems(states: list[TokenState], have_keys: bool) -> list[str]:
    """Say what is wrong with each token; without any key, the key file's own problem says it for all."""
    return [problem for problem in (_token_problem(token, have_keys) for token in states) if problem]


def _token_problem(token: TokenState, have_keys: bool) -> str | None:
    """Say what is wrong with one token, if anything (an expired one first: it is refused either way)."""
    named = f"token {token.name!r} ({token.id}, scope {token.scope})"
    if token.status == "expired":
        return (f"{named} expired at {clock.iso(token.expires_at)}: {_USES[token.scope]}; "
                "generate a new one, or revoke it if nothing uses it")
    if token.status == "unverifiable" and have_keys:
        return (f"{named} was signed by a key no longer in the secret key file: every request with it is "
                "refused; generate a new one (or put the old key back)")
    if token.expiring_soon:
        return (f"{named} expires in {token.days_left:g} days, at {clock.iso(token.expires_at)}: "
                "generate a new one and switch to it before then")
    return None


# --- users, groups, mappings ----------------------------------------------------------


def _user_counts() -> dict[str, int]:
    """Count users by listings.STATUSES in one scan."""
    state = peewee.Case(None, [(User.deprovisioned_at.is_null(False), "deprovisioned"),
                               (User.active == True, "active")], "inactive")  # noqa: E712 (SQL, not Python)
    counts = dict(User.select(state, peewee.fn.COUNT(User.id)).group_by(state).tuples())
    return {name: counts.get(name, 0) for name in listings.STATUSES}


def _mapping_gaps(report: Status, catalog: dict[str, str]) -> None:
    """Sort out the mappings that grant nothing yet, those in conflict, and those outside the catalog."""
    for mapping in roles.list_mappings(catalog):
        pair = {"id": mapping["id"], "group": mapping["group"], "role": mapping["role"]}
        if mapping["status"] in _WAITING:
            report.mappings_waiting_for_group.append({**pair, "status": mapping["status"]})
        elif mapping["status"] == "conflict":
            report.mappings_in_conflict.append(
                {**pair, "group_id": mapping["group_id"], "conflict_group_id": mapping["conflict_group_id"]})
        if not mapping["in_catalog"]:
            report.mappings_to_missing_roles.append(pair)


def _mapping_problems(report: Status) -> list[str]:
    missing = [f"mapping {m['group']!r} -> {m['role']!r}: the role is not in [roles.catalog] (still granted); "
               "add it to the catalog, or `scim mappings remove`" for m in report.mappings_to_missing_roles]
    conflicts = [f"mapping {m['group']!r} -> {m['role']!r} is pinned to another group than the one named so now "
                 f"({m['conflict_group_id']}), whose members get nothing; if that is the group meant, "
                 f"`scim mappings rebind {m['group']!r}`" for m in report.mappings_in_conflict]
    return missing + conflicts


def _last_provisioning() -> dict | None:
    """Return the newest change an identity provider made (through a token), if any."""
    event = Event.select().where(Event.token_id.is_null(False)).order_by(Event.id.desc()).first()
    if event is None:
        return None
    ids = [event.resource_id] if event.resource_id else []
    named = listings.names(ids if event.resource_type == "User" else [], ids if event.resource_type == "Group" else [])
    return {"id": events.event_id(event.id), "at": event.at, "action": event.action, "actor": event.actor,
            "resource_type": event.resource_type, "resource_id": event.resource_id,
            "resource_name": named.get(event.resource_id)}


# --- webhooks -------------------------------------------------------------------------


def _webhook_states() -> list[dict]:
    """Return each endpoint (never a secret, the URL without its query) with the deliveries waiting for it."""
    waiting = (WebhookDelivery.select(peewee.fn.COUNT(WebhookDelivery.id))
               .where((WebhookDelivery.endpoint == WebhookEndpoint.id) & (WebhookDelivery.state == "pending")))
    endpoints = WebhookEndpoint.select(WebhookEndpoint, waiting.alias("pending")).order_by(WebhookEndpoint.created_at)
    return [{**_endpoint_state(e), "pending_deliveries": e.pending + stream.backlog(e)} for e in endpoints]


def _endpoint_state(endpoint: WebhookEndpoint) -> dict:
    shown = webhooks.as_dict(endpoint)
    keys = ("status", "disabled_at", "disabled_reason", "failing_since")
    return {"id": shown["id"], "url": webhooks.redacted(endpoint.url), **{key: shown[key] for key in keys}}


def _keys(settings: Settings) -> list[str]:
    """Return the key file's keys; one that cannot be read is already a problem (_key_ids)."""
    try:
        return keyfile.load(settings.key_path)
    except SkilljarError:
        return []


def _secret_problems(keys: list[str], now: datetime) -> list[str]:
    """Name each endpoint whose signing secret the key file cannot open: nothing is sent to it."""
    problems = []
    for endpoint in WebhookEndpoint.select().order_by(WebhookEndpoint.created_at) if keys else []:
        try:
            webhooks.signing_secrets(keys, endpoint, now)
        except ConfigError:
            problems.append(f"webhook endpoint {endpoint.id} ({webhooks.redacted(endpoint.url)}): its signing "
                            "secret cannot be decrypted with the secret key file (was its key removed?), so "
                            f"nothing is sent to it; run `scim webhooks rotate-secret {endpoint.id}`")
    return problems


def _webhook_problems(endpoints: list[dict]) -> list[str]:
    return [f"webhook endpoint {w['id']} ({w['url']}) is disabled since {clock.iso(w['disabled_at'])}: "
            f"{w['disabled_reason']}; fix the receiver, then `scim webhooks enable {w['id']}`"
            for w in endpoints if w["status"] == "disabled"]
