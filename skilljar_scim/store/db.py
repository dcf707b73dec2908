"""Open the store from a URL (sqlite:/// or postgresql://) and keep its schema current."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qsl, unquote, unquote_plus, urlparse

import peewee
from playhouse import migrate as schema_migrate

try:  # the PostgreSQL driver is an optional extra (peewee itself tries the same import)
    import psycopg2
except ImportError:
    psycopg2 = None

from skilljar_scim.base import clock, textkey
from skilljar_scim.base.config import URL_SECRET_PARAMETERS, DatabaseSettings, sqlite_file
from skilljar_scim.base.errors import ConfigError, DatabaseError, NotInitialised, StoreBusy
from skilljar_scim.store import models
from skilljar_scim.store.postgres import Deferred, DeferredPooledPostgresqlDatabase, DeferredPostgresqlDatabase
from skilljar_scim.store.writelock import LockedPooledSqliteDatabase, LockedSqliteDatabase, WriteLock, write_lock

log = logging.getLogger("skilljar_scim.store")

SCHEMA_VERSION = 10


def _migrate_to_1(db: peewee.Database) -> None:
    db.create_tables(models.V1_MODELS, safe=True)


def _migrate_to_2(db: peewee.Database) -> None:
    """Nothing now: this step added the auth_failure table, which schema 9 drops again.

    The failure limiter counts in each process's memory (domain/ratelimit.py); a store
    created by this release never had the table, and one that had it loses it at step 9.
    """


def _migrate_to_3(db: peewee.Database) -> None:
    """Index /Users' default order, so a deep page walks an index instead of sorting every user."""
    db.execute_sql('CREATE INDEX IF NOT EXISTS "user_listing" ON "user" ("deprovisioned_at", "created_at", "id")')


def recompute_keys(db: peewee.Database) -> None:
    """Recompute every *_key column with base/textkey.key (NFD, casefold, NFC) instead of NFKC+casefold.

    The new key is not simply finer than the old: it no longer equates compatibility
    look-alikes (full-width "Ｈｘ" and "Hx" part), but it does equate a few strings the old
    one kept apart (NFKC before case folding missed Greek letters with dialytika and tonos
    in upper case: "ΐ" and "ΐ".upper()). So two users or groups could now share a key:
    the step then stops with both named, and the old schema stays as it was (one transaction).
    Two mappings of one role that now share a key are one mapping: the older is kept.
    """
    _rekey(models.User, models.User.user_name, models.User.user_name_key, "userName")
    _rekey(models.Group, models.Group.display_name, models.Group.display_name_key, "displayName")
    _rekey(models.Token, models.Token.name, models.Token.name_key, None)
    _merge_mappings()
    _rekey(models.RoleMapping, models.RoleMapping.group_name, models.RoleMapping.group_key, None)
    _rekey_emails()


def _rekey(model, source: peewee.Field, column: peewee.Field, unique: str | None) -> None:
    """Set `column` to textkey.key(`source`) on every row; refuse two rows of a unique key."""
    pk = model._meta.primary_key
    rows = [(rid, textkey.key(value), old) for rid, value, old in model.select(pk, source, column).tuples()]
    if unique:
        _refuse_collisions(model, unique, rows)
    changed = [(rid, new) for rid, new, old in rows if new != old]
    for rid, _ in changed:  # first out of the way: a new key may equal another row's old one
        model.update({column: f"\x01{rid}"}).where(pk == rid).execute()
    for rid, new in changed:
        model.update({column: new}).where(pk == rid).execute()


def _refuse_collisions(model, label: str, rows: list[tuple]) -> None:
    seen: dict[str, object] = {}
    for rid, new, _ in rows:
        if new in seen:
            raise DatabaseError(
                f"cannot upgrade the schema: {model.__name__} {seen[new]} and {rid} now have the same "
                f"{label} (compared case-insensitively, base/textkey.py); rename or remove one with "
                "the previous scim version, then start this one again")
        seen[new] = rid


def _rekey_emails() -> None:
    """Rebuild the email index from each user's stored document (the old keys lost the look-alikes)."""
    user = models.User
    for user_id, attributes in list(user.select(user.id, user.attributes).tuples()):
        emails = (json.loads(attributes or "{}").get("emails") or [])
        keys = {textkey.key(e["value"]) for e in emails if isinstance(e, dict) and isinstance(e.get("value"), str)}
        models.UserEmail.delete().where(models.UserEmail.user == user_id).execute()
        if keys:
            models.UserEmail.insert_many([{"user": user_id, "value_key": k} for k in sorted(keys)]).execute()


def _merge_mappings() -> None:
    """Delete the younger of two mappings of one role whose group names now share a key."""
    kept: set[tuple[str, str]] = set()
    mapping = models.RoleMapping
    for rid, name, role in list(mapping.select(mapping.id, mapping.group_name, mapping.role).order_by(mapping.id).tuples()):
        if (textkey.key(name), role) in kept:
            mapping.delete().where(mapping.id == rid).execute()
        kept.add((textkey.key(name), role))


def _migrate_to_5(db: peewee.Database) -> None:
    """Add webhook endpoints and the delivery outbox, indexed for the worker's claim."""
    db.create_tables(models.WEBHOOK_MODELS, safe=True)
    # Partial indexes: only pending rows are searched, and they are few beside delivered ones.
    db.execute_sql('CREATE INDEX IF NOT EXISTS "webhook_delivery_due" ON "webhook_delivery" '
                   '("next_attempt_at", "id") WHERE "state" = \'pending\'')
    db.execute_sql('CREATE INDEX IF NOT EXISTS "webhook_delivery_order" ON "webhook_delivery" '
                   '("endpoint_id", "subject", "id") WHERE "state" = \'pending\'')
    db.execute_sql('CREATE INDEX IF NOT EXISTS "webhook_delivery_history" ON "webhook_delivery" ("endpoint_id", "id")')


def record_token_keys(db: peewee.Database) -> None:
    """Record which key signed each token; earlier tokens' key is unknown until their next use."""
    _add_column(db, "token", "key_id", peewee.CharField(max_length=16, null=True))


def _add_column(db: peewee.Database, table: str, name: str, column: peewee.Field) -> None:
    """Add a column unless step 1 made it already (it creates the tables as the models are now)."""
    if name not in {c.name for c in db.get_columns(table)}:
        schema_migrate.migrate(schema_migrate.SchemaMigrator.from_database(db).add_column(table, name, column))


def pin_mappings(db: peewee.Database) -> None:
    """Add role_mapping.group_id and pin each mapping to the group whose name matches it now.

    The column may exist already: schema 1 creates tables from today's models.
    """
    _add_column(db, "role_mapping", "group_id", peewee.CharField(max_length=36, null=True))
    db.execute_sql('CREATE INDEX IF NOT EXISTS "role_mapping_group_id" ON "role_mapping" ("group_id")')
    mapping, group = models.RoleMapping, models.Group
    pairs = (mapping.select(mapping.id, mapping.group_name, mapping.role, group.id)
             .join(group, on=(group.display_name_key == mapping.group_key)).where(mapping.group_id.is_null()).tuples())
    for mapping_id, name, role, group_id in list(pairs):
        mapping.update(group_id=group_id).where(mapping.id == mapping_id).execute()
        summary = json.dumps({"group": name, "role": role, "group_id": group_id, "reason": "upgrade"},
                             sort_keys=True, ensure_ascii=False)
        # Plain SQL: later schema versions may give the event model columns this one lacks.
        db.execute_sql('INSERT INTO "event" ("at", "actor", "action", "resource_type", "resource_id", "summary") '
                       f"VALUES ({', '.join([db.param] * 6)})",
                       (models.Event.at.db_value(clock.utcnow()), "migration", "mapping.bound", "Mapping",
                        str(mapping_id), summary))


def record_scopes_and_feed(db: peewee.Database) -> None:
    """Give tokens a scope (existing ones provision), events their feed snapshot, and the prune mark."""
    _add_column(db, "token", "scope", peewee.CharField(max_length=16, default="provision"))
    _add_column(db, "event", "data", peewee.TextField(null=True))
    db.create_tables([models.EventsPruned], safe=True)


def drop_auth_failures(db: peewee.Database) -> None:
    """Drop the auth_failure table: nothing reads or writes it since the limiter counts in memory."""
    db.execute_sql('DROP TABLE IF EXISTS "auth_failure"')


def stream_from_cursors(db: peewee.Database) -> None:
    """Give each endpoint a delivery stream cursor; pending outbox rows stay rows and go out as before.

    An enabled endpoint's stream starts after the newest event (every earlier one has its row);
    a disabled one's after the last event before it was disabled, so enabling it sends what
    it missed, as enabling always did.
    """
    # Plain ALTER TABLE: peewee's SQLite migrator rebuilds a table to add a NOT NULL column, and
    # dropping the old webhook_endpoint would cascade to every delivery row.
    present = {c.name for c in db.get_columns("webhook_endpoint")}
    for name, kind in (("stream_cursor", "INTEGER NOT NULL DEFAULT 0"), ("stream_claimed_by", "VARCHAR(32)"),
                       ("stream_lease_until", "TIMESTAMP" if isinstance(db, peewee.PostgresqlDatabase) else "DATETIME")):
        if name not in present:
            db.execute_sql(f'ALTER TABLE "webhook_endpoint" ADD COLUMN "{name}" {kind}')
    db.execute_sql('UPDATE "webhook_endpoint" SET "stream_cursor" = COALESCE((SELECT MAX("id") FROM "event"), 0) '
                   'WHERE "disabled_at" IS NULL')
    db.execute_sql('UPDATE "webhook_endpoint" SET "stream_cursor" = COALESCE((SELECT MAX("id") FROM "event" '
                   'WHERE "event"."at" < "webhook_endpoint"."disabled_at"), 0) WHERE "disabled_at" IS NOT NULL')


SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


# Each step brings the schema from version N-1 to N; never edit a released step.
MIGRATIONS: dict[int, Callable[[peewee.Database], None]] = {
    1: _migrate_to_1, 2: _migrate_to_2, 3: _migrate_to_3, 4: recompute_keys, 5: _migrate_to_5,
    6: record_token_keys, 7: pin_mappings, 8: record_scopes_and_feed, 9: drop_auth_failures,
    10: stream_from_cursors,
}


def open_database(url: str, *, create: bool = False, busy_timeout_ms: int = 5000, migrate_schema: bool = True,
                  reuse_connections: bool = False, prepared_statements: bool = True) -> peewee.Database:
    """Open (or with `create`, create) the database at `url`, bind the models, migrate it.

    With `reuse_connections` (the server), a closed connection goes back to a pool instead of
    closing: on SQLite, closing the last connection checkpoints the WAL (an fsync) and a new one
    re-reads the schema; on PostgreSQL a new connection starts a server process; either costs
    more than a lookup (README "Performance"). `prepared_statements` (PostgreSQL) prepares the
    statements run again and again once per connection (store/postgres.py).
    """
    db = _connect(url, create, busy_timeout_ms, reuse_connections, prepared_statements)
    models.database.initialize(db)
    if not migrate_schema:  # `scim db check` looks at the schema as it is
        return db
    try:
        _refuse_foreign(db, url)
        migrate(db)
    except peewee.DatabaseError as exc:
        db.close()
        raise DatabaseError(f"cannot use database {redact(url)}: {exc}") from None
    return db


def open_configured(database: DatabaseSettings, **options) -> peewee.Database:
    """open_database() for the [database] settings (url, busy_timeout_ms, prepared_statements)."""
    return open_database(database.url, busy_timeout_ms=database.busy_timeout_ms,
                         prepared_statements=database.prepared_statements, **options)


def _refuse_foreign(db: peewee.Database, url: str) -> None:
    """Refuse a database that holds tables but none of ours: it belongs to something else."""
    if schema_version(db) == 0:
        tables = db.get_tables()
        if tables:
            db.close()
            shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
            raise DatabaseError(f"{redact(url)} is not a skilljar-scim database (it holds other tables: {shown}); "
                                "point database.url at a new or skilljar-scim database")


def _connect(url: str, create: bool, busy_timeout_ms: int, reuse_connections: bool = False,
             prepared_statements: bool = True) -> peewee.Database:
    path = sqlite_file(url)
    if path is not None:
        return _sqlite(path, create, busy_timeout_ms, reuse_connections)
    if url.startswith(("postgresql://", "postgres://")):
        return _postgres(url, reuse_connections, prepared_statements)
    raise ConfigError(f"unsupported database URL {redact(url)}: use sqlite:///PATH or postgresql://")


def _sqlite(path: Path, create: bool, busy_timeout_ms: int, reuse_connections: bool = False) -> peewee.SqliteDatabase:
    if not path.exists():
        if not create:
            raise NotInitialised(f"no database at {path}: run `scim init` first")
        path.parent.mkdir(parents=True, exist_ok=True)
        # Owner-only from the first byte: SQLite gives its -wal/-shm files the same mode.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    else:
        _refuse_not_sqlite(path)
    pragmas = {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": busy_timeout_ms,
        # FULL: every commit is fsynced before it is acknowledged, so an acknowledged write
        # survives a power cut too (NORMAL in WAL mode survives only a process crash).
        # Writes are rare for an identity store; one fsync each is cheap (README "After a crash").
        "synchronous": "full",
    }
    lock = WriteLock(path, busy_timeout_ms / 1000)
    if reuse_connections:
        # A pooled connection serves one thread at a time, so sharing it across threads is safe;
        # busy_timeout comes from the pragma (the pool takes `timeout` as its own wait).
        return LockedPooledSqliteDatabase(str(path), write_lock=lock, pragmas=pragmas, max_connections=None,
                                          check_same_thread=False)
    return LockedSqliteDatabase(str(path), write_lock=lock, pragmas=pragmas, timeout=busy_timeout_ms / 1000)


def _refuse_not_sqlite(path: Path) -> None:
    """Refuse an existing file that is not a SQLite database: SQLite would quietly start an
    empty (0-byte) one afresh, and say only "file is not a database" of anything else."""
    with open(path, "rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if not header:
        raise DatabaseError(f"{path} is an empty file, not a skilljar-scim database: move it away "
                            "(or point database.url elsewhere), then run `scim init`")
    if header != SQLITE_HEADER:
        raise DatabaseError(f"{path} is not a SQLite database: point database.url at the skilljar-scim "
                            "database (or move this file away and run `scim init`)")


def close_all(db: peewee.Database) -> None:
    """Close every connection, pooled ones too (gunicorn forks its workers after this)."""
    close = getattr(db, "close_all", db.close)
    close()


def _postgres(url: str, reuse_connections: bool = False, prepared_statements: bool = True) -> peewee.PostgresqlDatabase:
    if psycopg2 is None:  # said here, so every command that opens a store says it the same way
        raise ConfigError(f"{redact(url)} needs the PostgreSQL driver: pip install \"skilljar-scim[postgres]\" "
                          "(in a checkout: pip install \".[postgres]\")")
    parts = urlparse(url)
    name, options = unquote(parts.path.lstrip("/")), {
        "user": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "host": parts.hostname,
        "port": parts.port,
    }
    options.update(_url_parameters(url, parts.query, {**options, "dbname": name or None}))
    name = options.pop("dbname", name)
    if reuse_connections:
        # A new connection per request makes PostgreSQL start a server process and authenticate,
        # which cost more than a lookup itself (README "Performance"); the pool rolls back anything
        # a request left open before it hands the connection out again. Transaction control
        # rides with the next statement (store/postgres.py): a lookup is three round trips.
        return DeferredPooledPostgresqlDatabase(name, max_connections=None, stale_timeout=300,
                                                prepare=prepared_statements, **options)
    return DeferredPostgresqlDatabase(name, prepare=prepared_statements, **options)


# libpq's connection parameters ("Parameter Key Words" in PostgreSQL's manual) that a URL may
# carry as its query, as libpq's own URIs do: ?sslmode=verify-full&sslrootcert=/etc/ssl/ca.pem.
# `replication` is left out: a replication connection cannot run the store's statements.
PG_URL_PARAMETERS = frozenset({
    "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "channel_binding", "connect_timeout",
    "client_encoding", "options", "application_name", "fallback_application_name", "keepalives", "keepalives_idle",
    "keepalives_interval", "keepalives_count", "tcp_user_timeout", "gssencmode", "sslmode", "requiressl",
    "sslcompression", "sslcert", "sslkey", "sslpassword", "sslcertmode", "sslrootcert", "sslcrl", "sslcrldir", "sslsni",
    "requirepeer", "ssl_min_protocol_version", "ssl_max_protocol_version", "krbsrvname", "gsslib", "gssdelegation",
    "service", "target_session_attrs", "load_balance_hosts",
})


def _url_parameters(url: str, query: str, given: dict) -> dict[str, str]:
    """Return a PostgreSQL URL's query as libpq connection parameters; refuse what libpq would not take.

    Silently dropping one would be worse than failing: `?sslmode=verify-full` left out means a
    connection that neither requires TLS nor checks the server's certificate.
    """
    found: dict[str, str] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ConfigError(f"{redact(url)}: its query is not key=value pairs joined by &") from None
    for key, value in pairs:
        if key not in PG_URL_PARAMETERS:
            raise ConfigError(f"{redact(url)}: {key!r} is not a PostgreSQL connection parameter (libpq's, such as "
                              "sslmode, sslrootcert, connect_timeout or application_name)")
        if key in found or given.get(key) is not None:
            raise ConfigError(f"{redact(url)}: {key!r} is given twice")
        found[key] = value
    return found


def migrate(db: peewee.Database) -> int:
    """Apply every pending migration in one transaction; return the schema version."""
    current = schema_version(db)
    if current == SCHEMA_VERSION:
        return current
    with _WriteTransaction(db):
        current = schema_version(db)  # again, under the write lock: another process may have migrated
        if current > SCHEMA_VERSION:
            raise DatabaseError(
                f"database schema version {current} is newer than this scim ({SCHEMA_VERSION}): upgrade scim"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version](db)
            models.SchemaVersion.create(version=version, applied_at=clock.utcnow())
    return SCHEMA_VERSION


def schema_version(db: peewee.Database) -> int:
    """Return the highest applied schema version (0 for an empty database)."""
    if not db.table_exists(models.SchemaVersion._meta.table_name):
        return 0
    return models.SchemaVersion.select(peewee.fn.MAX(models.SchemaVersion.version)).scalar() or 0


def redact(url: str) -> str:
    """Hide the passwords in a database URL (its own, and a query's password= or sslpassword=) before it is shown."""
    parts = urlparse(url)
    if parts.password:
        url = url.replace(f":{parts.password}@", ":***@", 1)
    if parts.query:
        # A key compared as the driver reads it (parse_qsl decodes it): pass%77ord= is password= too.
        hidden = [f"{part.partition('=')[0]}=***" if unquote_plus(part.partition("=")[0]) in URL_SECRET_PARAMETERS
                  else part for part in parts.query.split("&")]
        url = url.replace(f"?{parts.query}", "?" + "&".join(hidden), 1)
    return url


def write_transaction():
    """Open a write transaction that holds the store's single write lock until it ends.

    On SQLite it is BEGIN IMMEDIATE: the lock is taken up front, so concurrent writers (any
    thread, any gunicorn worker, the CLI) queue on busy_timeout instead of failing with
    "database is locked" when a read lock cannot be upgraded; in WAL mode that BEGIN is the
    only place a writer can meet SQLITE_BUSY, so a whole transaction never half-runs.
    On PostgreSQL a transaction-scoped advisory lock gives the same one-writer-at-a-time
    order, so a read-check-write (If-Match, uniqueness) cannot interleave with another.
    Nested (a domain function inside the transaction a web request opened), it joins the
    outer transaction: no savepoint, so no statements; an error leaving it leaves the outer
    one too, which rolls the whole back.
    """
    return _WriteTransaction(models.database.obj)


@contextlib.contextmanager
def best_effort_write(wait_ms: int = 100):
    """Run bookkeeping (a token's last use) that may be skipped when other writes hold the lock.

    It runs on a read path (every authenticated request), so it must neither wait out
    busy_timeout nor fail the request: it waits `wait_ms` at most, then gives up quietly.
    """
    db = models.database.obj
    sqlite = isinstance(db, peewee.SqliteDatabase) and db.transaction_depth() == 0
    if sqlite:
        previous = db.execute_sql("PRAGMA busy_timeout").fetchone()[0]
        db.execute_sql(f"PRAGMA busy_timeout = {int(wait_ms)}")
    try:
        yield
    except peewee.OperationalError as exc:
        if not (sqlite and _is_busy(exc)):
            raise
        log.info("skipped a bookkeeping write: the database is busy")
    finally:
        if sqlite:
            db.execute_sql(f"PRAGMA busy_timeout = {int(previous)}")


# peewee wraps errors raised by execute(); fetching rows can raise sqlite3's own.
READ_ERRORS = (peewee.DatabaseError, sqlite3.DatabaseError)


def one_line(exc: Exception) -> str:
    """Return a database error's message on one line (SQLite's span several)."""
    return " ".join(str(exc).split())


def _is_busy(exc: Exception) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def read_transaction():
    """Open a read-only transaction, so every read of a request sees one snapshot."""
    db = models.database.obj
    if isinstance(db, peewee.PostgresqlDatabase):
        return db.atomic(isolation_level="REPEATABLE READ")
    return db.atomic()  # SQLite WAL: the first read fixes the snapshot until the end


BUSY = "the database is busy with other writes: try again in a moment"
# Any constant: PostgreSQL advisory locks live in one namespace per database.
_PG_WRITE_LOCK = 0x5C1A_0001


class _WriteTransaction:
    """write_transaction() for a given database (migrate() runs before the models are bound)."""

    def __init__(self, db: peewee.Database):
        self.db = db
        self.outermost = db.transaction_depth() == 0
        if self.outermost:  # a nested one joins the outer transaction: nothing of its own to begin
            self.atomic = db.atomic("IMMEDIATE") if isinstance(db, peewee.SqliteDatabase) else db.atomic()

    def __enter__(self):
        if not self.outermost:  # the outer transaction holds the lock and commits or rolls back
            return self.db.top_transaction()
        self.lock = write_lock(self.db)
        if self.lock is not None and not self.lock.acquire():
            self.lock = None
            raise StoreBusy(BUSY)
        try:
            transaction = self._begin()
        except BaseException:
            self._release()
            raise
        if isinstance(self.db, Deferred):
            # Sent with BEGIN and the writer's first statement, in one round trip (store/postgres.py).
            self.db.queue(f"SELECT pg_advisory_xact_lock({_PG_WRITE_LOCK})")
        return transaction

    def _begin(self):
        try:
            return self.atomic.__enter__()
        except peewee.OperationalError as exc:
            if _is_busy(exc):
                raise StoreBusy(BUSY) from None
            raise

    def _release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def __exit__(self, exc_type, exc, traceback):
        if not self.outermost:
            return None
        try:
            return self.atomic.__exit__(exc_type, exc, traceback)
        finally:
            self._release()
