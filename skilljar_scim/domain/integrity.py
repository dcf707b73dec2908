"""Integrity check of the store (`scim db check`): pages and foreign keys (SQLite), schema version (both)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import peewee

from skilljar_scim.base.errors import DatabaseError
from skilljar_scim.store import db as store_db


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
    except store_db.READ_ERRORS as exc:
        report.problems.append(f"cannot read the database: {store_db.one_line(exc)}")
    finally:
        db.close()
    return report


def _check_sqlite(db: peewee.Database, report: CheckReport) -> None:
    report.integrity = pragma_verdict(db, "integrity_check")
    if report.integrity != "ok":
        report.problems.append(f"integrity check failed: {report.integrity}")
    violations = db.execute_sql("PRAGMA foreign_key_check").fetchall()
    report.foreign_key_violations = len(violations)
    if violations:
        tables = sorted({row[0] for row in violations})
        report.problems.append(f"{len(violations)} row(s) point at missing rows (tables: {', '.join(tables)})")


def _check_schema(db: peewee.Database, report: CheckReport) -> None:
    report.schema_version = store_db.schema_version(db)
    problem = schema_problem(report.schema_version)
    if problem:
        report.problems.append(problem)


def pragma_verdict(db: peewee.Database, pragma: str) -> str:
    """Run a SQLite check pragma (integrity_check, quick_check): "ok", or its first five findings."""
    try:
        rows = [row[0] for row in db.execute_sql(f"PRAGMA {pragma}").fetchall()]
    except store_db.READ_ERRORS as exc:  # damage bad enough that SQLite stops reading
        rows = [store_db.one_line(exc)]
    return "ok" if rows == ["ok"] else "; ".join(rows[:5])


def schema_problem(version: int) -> str | None:
    """Say what to do about a schema version other than this scim's, or None when it matches."""
    if version < store_db.SCHEMA_VERSION:
        return f"schema version {version} is older than this scim's ({store_db.SCHEMA_VERSION}): run `scim init` to migrate it"
    if version > store_db.SCHEMA_VERSION:
        return f"schema version {version} is newer than this scim's ({store_db.SCHEMA_VERSION}): upgrade scim"
    return None
