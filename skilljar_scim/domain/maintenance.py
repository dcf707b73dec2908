"""Online backup and integrity check of the store.

SQLite: `backup` copies the live database with SQLite's online backup API in one step, from
one read snapshot, so the copy is consistent while the server keeps writing (in WAL mode a
reader never blocks writers). PostgreSQL has its own tools for this (pg_dump / pg_restore);
`check` works on both.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path

import peewee

from skilljar_scim.base.config import sqlite_file
from skilljar_scim.base.errors import Conflict, DatabaseError, InvalidValue, Unsupported
from skilljar_scim.store import db as store_db
from skilljar_scim.store import models

PG_BACKUP = (
    "scim db backup copies SQLite databases only: on PostgreSQL use pg_dump, e.g. "
    "`pg_dump --format=custom --file=scim.dump DBNAME` (restore with pg_restore)"
)
COUNTED = {"users": models.User, "groups": models.Group, "memberships": models.Membership,
           "mappings": models.RoleMapping, "tokens": models.Token}


# peewee wraps errors raised by execute(); fetching rows can raise sqlite3's own.
_DB_ERRORS = (peewee.DatabaseError, sqlite3.DatabaseError)


@dataclass(frozen=True)
class BackupReport:
    """Where the copy went and what it holds (checked on the copy itself)."""

    path: str
    bytes: int
    schema_version: int
    integrity: str
    counts: dict[str, int]

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class CheckReport:
    """What `scim db check` found; `problems` is empty when the database is healthy."""

    database: str
    backend: str
    schema_version: int | None = None
    expected_schema_version: int = store_db.SCHEMA_VERSION
    integrity: str = "not checked"
    foreign_key_violations: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    def raise_for_problems(self) -> None:
        """Raise DatabaseError (exit 8) naming every problem found."""
        if self.problems:
            raise DatabaseError("database check failed: " + "; ".join(self.problems))


def backup(url: str, target: Path, force: bool = False, busy_timeout_ms: int = 5000) -> BackupReport:
    """Copy the SQLite database at `url` to `target` (mode 0600) while it stays in use."""
    source = sqlite_file(url)
    if source is None:
        raise Unsupported(PG_BACKUP)
    target = _check_target(source, Path(target).expanduser().absolute(), force)
    db = store_db.open_database(url, busy_timeout_ms=busy_timeout_ms, migrate_schema=False)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        _owner_only_file(partial)
        report = _copy(db.connection(), partial, target)
        for leftover in (Path(f"{target}-wal"), Path(f"{target}-shm")):
            leftover.unlink(missing_ok=True)  # a stale WAL would be replayed over the new copy
        os.replace(partial, target)
        _sync_folder(target.parent)
        return report
    finally:
        db.close()
        for path in (partial, Path(f"{partial}-journal")):
            path.unlink(missing_ok=True)


def _check_target(source: Path, target: Path, force: bool) -> Path:
    if target.exists() and source.exists() and os.path.samefile(source, target):
        raise InvalidValue(f"{target} is the live database: choose another path for the backup")
    if target.is_dir():
        raise InvalidValue(f"{target} is a folder: give the path of the backup file to write")
    if not target.parent.is_dir():
        raise InvalidValue(f"folder {target.parent} does not exist")
    if target.exists() and not force:
        raise Conflict(f"{target} already exists: choose another path, or pass --force to replace it")
    return target


def _owner_only_file(path: Path) -> None:
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _copy(source: sqlite3.Connection, partial: Path, target: Path) -> BackupReport:
    """Run the online backup into `partial`, then check the copy; the copy's journal stays 0600."""
    copy = sqlite3.connect(partial)
    try:
        try:
            source.backup(copy)  # pages=-1: one step, one consistent snapshot
        except _DB_ERRORS as exc:
            raise DatabaseError(f"cannot back up the database: {' '.join(str(exc).split())}") from None
        integrity = copy.execute("PRAGMA integrity_check").fetchone()[0]
        if integrity != "ok":
            raise DatabaseError(f"the backup copy failed its integrity check: {integrity}")
        version = copy.execute(f'SELECT MAX(version) FROM "{models.SchemaVersion._meta.table_name}"').fetchone()[0]
        counts = {name: copy.execute(f'SELECT COUNT(*) FROM "{model._meta.table_name}"').fetchone()[0]
                  for name, model in COUNTED.items()}
    finally:
        copy.close()
    return BackupReport(str(target), partial.stat().st_size, version or 0, integrity, counts)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check(url: str, busy_timeout_ms: int = 5000) -> CheckReport:
    """Check integrity (SQLite), foreign keys (SQLite) and the schema version; never migrate."""
    db = store_db.open_database(url, busy_timeout_ms=busy_timeout_ms, migrate_schema=False)
    sqlite = isinstance(db, peewee.SqliteDatabase)
    report = CheckReport(database=store_db.redact(url), backend="sqlite" if sqlite else "postgresql")
    try:
        db.execute_sql("SELECT 1")
        if sqlite:
            _check_sqlite(db, report)
        else:
            report.integrity = "not checked: PostgreSQL checks its own pages (see pg_amcheck)"
        _check_schema(db, report)
    except _DB_ERRORS as exc:
        report.problems.append(f"cannot read the database: {' '.join(str(exc).split())}")
    finally:
        db.close()
    return report


def _check_sqlite(db: peewee.Database, report: CheckReport) -> None:
    try:
        rows = [row[0] for row in db.execute_sql("PRAGMA integrity_check").fetchall()]
    except _DB_ERRORS as exc:  # damage bad enough that SQLite stops reading
        rows = [" ".join(str(exc).split())]
    report.integrity = "ok" if rows == ["ok"] else "; ".join(rows[:5])
    if rows != ["ok"]:
        report.problems.append(f"integrity check failed: {report.integrity}")
    violations = db.execute_sql("PRAGMA foreign_key_check").fetchall()
    report.foreign_key_violations = len(violations)
    if violations:
        tables = sorted({row[0] for row in violations})
        report.problems.append(f"{len(violations)} row(s) point at missing rows (tables: {', '.join(tables)})")


def _check_schema(db: peewee.Database, report: CheckReport) -> None:
    report.schema_version = store_db.schema_version(db)
    if report.schema_version < store_db.SCHEMA_VERSION:
        report.problems.append(
            f"schema version {report.schema_version} is older than this scim's "
            f"({store_db.SCHEMA_VERSION}): run `scim init` to migrate it"
        )
    elif report.schema_version > store_db.SCHEMA_VERSION:
        report.problems.append(
            f"schema version {report.schema_version} is newer than this scim's ({store_db.SCHEMA_VERSION}): upgrade scim"
        )
