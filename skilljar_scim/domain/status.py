"""What an admin reads first (`scim status`): the store, tokens, users, mappings, the last provisioning.

`problems` lists what will stop provisioning or grant the wrong roles if nobody acts: a live
token that expires soon (or already has), a mapping to a role the catalog no longer has, a
store that fails its quick integrity check or has another schema version.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import peewee

from skilljar_scim.base import clock
from skilljar_scim.base.config import Settings
from skilljar_scim.base.errors import DatabaseError
from skilljar_scim.domain import tokens, webhooks
from skilljar_scim.store import db as store_db
from skilljar_scim.store.models import Event, Group, RoleMapping, Token, User, WebhookDelivery, WebhookEndpoint

DEFAULT_EXPIRING_DAYS = 14
_DB_ERRORS = (peewee.DatabaseError, sqlite3.DatabaseError)


@dataclass(frozen=True)
class StoreState:
    """Where the store is, what schema it has, how big it is, whether it reads cleanly."""

    kind: str
    location: str
    schema_version: int
    expected_schema_version: int
    size_bytes: int | None
    integrity: str


@dataclass(frozen=True)
class TokenState:
    """A live token: when it was last used, what it refused, how soon it expires."""

    id: str
    name: str
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
    groups: int = 0
    mappings_waiting_for_group: list[dict] = field(default_factory=list)
    mappings_to_missing_roles: list[dict] = field(default_factory=list)
    last_provisioning: dict | None = None
    webhooks: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def collect(settings: Settings, expiring_within_days: int = DEFAULT_EXPIRING_DAYS,
            now: datetime | None = None) -> Status:
    """Read the store once, never migrating it, and say what needs attention."""
    url = settings.database.url
    db = store_db.open_database(url, busy_timeout_ms=settings.database.busy_timeout_ms, migrate_schema=False)
    try:
        return _collect(db, settings, expiring_within_days, now or clock.utcnow())
    except _DB_ERRORS as exc:  # damage bad enough that nothing reads
        raise DatabaseError(f"cannot read the store {store_db.redact(url)}: {' '.join(str(exc).split())}") from None
    finally:
        db.close()


def _collect(db: peewee.Database, settings: Settings, days: int, now: datetime) -> Status:
    """Check the store first: a damaged one is reported, not read further."""
    report = Status(store=_store_state(db, settings), expiring_within_days=days)
    report.problems.extend(_store_problems(report.store))
    if report.problems:
        return report  # a damaged store, or tables of another shape: what follows would not read right
    with db.atomic():  # one snapshot for every figure
        _read_directory(report, settings, days, now)
    return report


def _read_directory(report: Status, settings: Settings, days: int, now: datetime) -> None:
    report.tokens = _token_states(now, timedelta(days=days))
    report.users = _user_counts()
    report.groups = Group.select().count()
    report.mappings_waiting_for_group, report.mappings_to_missing_roles = _mapping_gaps(settings.roles.catalog)
    report.last_provisioning = _last_provisioning()
    report.webhooks = _webhook_states()
    report.problems.extend(_token_problems(report.tokens))
    report.problems.extend(
        f"mapping {m['group']!r} -> {m['role']!r}: the role is not in [roles.catalog]"
        for m in report.mappings_to_missing_roles
    )
    report.problems.extend(
        f"webhook endpoint {w['id']} ({w['url']}) is disabled since {clock.iso(w['disabled_at'])}: "
        f"{w['disabled_reason']}; fix the receiver, then `scim webhooks enable {w['id']}`"
        for w in report.webhooks if w["status"] == "disabled"
    )


def _store_state(db: peewee.Database, settings: Settings) -> StoreState:
    sqlite = isinstance(db, peewee.SqliteDatabase)
    return StoreState(
        kind="sqlite" if sqlite else "postgresql",
        location=str(settings.sqlite_path) if sqlite else store_db.redact(settings.database.url),
        schema_version=store_db.schema_version(db),
        expected_schema_version=store_db.SCHEMA_VERSION,
        size_bytes=_sqlite_size(settings.sqlite_path) if sqlite else _postgres_size(db),
        integrity=_quick_check(db) if sqlite else "not checked: PostgreSQL checks its own pages (pg_amcheck)",
    )


def _sqlite_size(path: Path) -> int:
    """Return the bytes of the database and its write-ahead log."""
    files = (path, path.with_name(path.name + "-wal"))
    return sum(os.stat(f).st_size for f in files if f.exists())


def _postgres_size(db: peewee.Database) -> int:
    return db.execute_sql("SELECT pg_database_size(current_database())").fetchone()[0]


def _quick_check(db: peewee.Database) -> str:
    """Run SQLite's quick_check: page and index structure, without the full index cross-check."""
    try:
        rows = [row[0] for row in db.execute_sql("PRAGMA quick_check").fetchall()]
    except _DB_ERRORS as exc:  # fetching rows raises sqlite3's own errors, unwrapped by peewee
        rows = [" ".join(str(exc).split())]
    return "ok" if rows == ["ok"] else "; ".join(rows[:5])


def _store_problems(store: StoreState) -> list[str]:
    problems = []
    if store.kind == "sqlite" and store.integrity != "ok":
        problems.append(f"the store fails its integrity check: {store.integrity} (see `scim db check`)")
    if store.schema_version < store.expected_schema_version:
        problems.append(f"the store has schema version {store.schema_version}, this scim "
                        f"{store.expected_schema_version}: run `scim init` to migrate it")
    elif store.schema_version > store.expected_schema_version:
        problems.append(f"the store has schema version {store.schema_version}, newer than this scim's "
                        f"{store.expected_schema_version}: upgrade scim")
    return problems


def _token_states(now: datetime, soon: timedelta) -> list[TokenState]:
    live = Token.select().where(Token.revoked_at.is_null()).order_by(Token.expires_at.asc(nulls="LAST"), Token.name)
    return [_token_state(token, now, soon) for token in live]


def _token_state(token: Token, now: datetime, soon: timedelta) -> TokenState:
    left = token.expires_at - now if token.expires_at else None
    return TokenState(
        id=token.id, name=token.name, status=tokens.status(token, now), expires_at=token.expires_at,
        days_left=round(left / timedelta(days=1), 2) if left is not None else None,
        expiring_soon=left is not None and left <= soon,
        last_used_at=token.last_used_at, refused_requests=token.refused_count,
    )


def _token_problems(states: list[TokenState]) -> list[str]:
    problems = []
    for token in states:
        if token.status == "expired":
            problems.append(f"token {token.name!r} ({token.id}) expired at {clock.iso(token.expires_at)}: "
                            "its identity provider can no longer provision")
        elif token.expiring_soon:
            problems.append(f"token {token.name!r} ({token.id}) expires in {token.days_left:g} days, at "
                            f"{clock.iso(token.expires_at)}: generate a new one and switch the identity provider")
    return problems


def _user_counts() -> dict[str, int]:
    deprovisioned = User.deprovisioned_at.is_null(False)
    return {
        "active": User.select().where(User.active & ~deprovisioned).count(),
        "inactive": User.select().where(~User.active & ~deprovisioned).count(),
        "deprovisioned": User.select().where(deprovisioned).count(),
    }


def _mapping_gaps(catalog: dict) -> tuple[list[dict], list[dict]]:
    """Return the mappings whose group was not pushed yet, and those whose role left the catalog."""
    pushed = Group.select(Group.id).where(Group.display_name_key == RoleMapping.group_key)
    mappings = RoleMapping.select(RoleMapping.group_name, RoleMapping.role, peewee.fn.EXISTS(pushed).alias("pushed"))
    waiting, missing = [], []
    for row in mappings.order_by(RoleMapping.group_key, RoleMapping.role).dicts():
        pair = {"group": row["group_name"], "role": row["role"]}
        if not row["pushed"]:
            waiting.append(pair)
        if row["role"] not in catalog:
            missing.append(pair)
    return waiting, missing


def _last_provisioning() -> dict | None:
    """Return the newest change an identity provider made (through a token), if any."""
    event = Event.select().where(Event.token_id.is_null(False)).order_by(Event.id.desc()).first()
    if event is None:
        return None
    return {"at": event.at, "action": event.action, "actor": event.actor,
            "resource_type": event.resource_type, "resource_id": event.resource_id}


def _webhook_states() -> list[dict]:
    """Return each endpoint (never a secret) with the deliveries still waiting for it."""
    waiting = (WebhookDelivery.select(peewee.fn.COUNT(WebhookDelivery.id))
               .where((WebhookDelivery.endpoint == WebhookEndpoint.id) & (WebhookDelivery.state == "pending")))
    endpoints = WebhookEndpoint.select(WebhookEndpoint, waiting.alias("pending")).order_by(WebhookEndpoint.created_at)
    return [{**_endpoint_state(e), "pending_deliveries": e.pending} for e in endpoints]


def _endpoint_state(endpoint: WebhookEndpoint) -> dict:
    keys = ("id", "url", "status", "disabled_at", "disabled_reason", "failing_since")
    shown = webhooks.as_dict(endpoint)
    return {**{key: shown[key] for key in keys}, "url": webhooks.redacted(endpoint.url)}
