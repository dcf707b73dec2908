"""Online backup of a SQLite store (`scim db backup`).

`backup` copies the live database with SQLite's online backup API in one step, from one
read snapshot, so the copy is consistent while the server keeps writing (in WAL mode a
reader never blocks writers). PostgreSQL has its own tools for this (pg_dump / pg_restore).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path

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
        except store_db.READ_ERRORS as exc:
            raise DatabaseError(f"cannot back up the database: {store_db.one_line(exc)}") from None
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
