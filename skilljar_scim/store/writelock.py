"""The write lock of a SQLite store: writers queue here, threads of one process, then processes.

SQLite lets one writer in at a time and parks the others in a busy handler that polls with
growing sleeps (up to 100 ms), so writers queued there leave the lock idle much of the
time and a write's tail latency grows with the number of writers (README "Performance"
has the figures). A writer here first takes its process's lock, handed over the moment it
is released, then an exclusive lock on a small file next to the database (`<database>-lock`,
mode 600), which every process using the store takes the same way (`scim serve` workers and
CLI commands alike) and which is tried every millisecond. BEGIN IMMEDIATE then finds
SQLite's lock free, unless a program other than skilljar-scim writes to the file; SQLite's
busy_timeout still covers that case.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # not on Windows: one process's threads still queue on the lock
    fcntl = None

import peewee
from playhouse.pool import PooledSqliteDatabase

log = logging.getLogger("skilljar_scim.store")
POLL_SECONDS = 0.001


class WriteLock:
    """One store's writers' queue: `acquire()` within the wait, then `release()` after COMMIT."""

    def __init__(self, database_path: Path, wait_s: float):
        self.path = database_path.with_name(database_path.name + "-lock")
        self.wait_s = wait_s
        self.threads = threading.Lock()
        self._fd: int | None = None
        self._pid: int | None = None

    def acquire(self) -> bool:
        """Take the lock, or return False when `wait_s` passes first."""
        deadline = time.monotonic() + self.wait_s
        if not self.threads.acquire(timeout=self.wait_s):
            return False
        try:
            if self._lock_file(deadline):
                return True
        except BaseException:
            self.threads.release()
            raise
        self.threads.release()
        return False

    def __del__(self) -> None:
        """Close this process's descriptor with the lock (tests and tools open many stores)."""
        if getattr(self, "_fd", None) is not None and self._pid == os.getpid():
            os.close(self._fd)

    def release(self) -> None:
        try:
            if self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self.threads.release()

    def _lock_file(self, deadline: float) -> bool:
        fd = self._file()
        if fd is None:
            return True  # no lock file: writers of other processes meet on SQLite's lock alone
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(POLL_SECONDS)

    def _file(self) -> int | None:
        """Return this process's descriptor of the lock file (a forked worker opens its own)."""
        if fcntl is None:
            return None
        if self._pid != os.getpid():
            self._pid = os.getpid()
            try:  # a descriptor inherited across fork shares its lock with the parent: not that one
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                self._fd = None
                log.warning("cannot open %s (%s): writers of several processes will queue on SQLite's lock", self.path,
                            exc.strerror)
        return self._fd


class WriteLocked:
    """A database whose writers queue on its `write_lock` (see store.db.write_transaction)."""

    write_lock: WriteLock

    def __init__(self, database: str, *, write_lock: WriteLock, **kwargs):
        super().__init__(database, **kwargs)
        self.write_lock = write_lock


class LockedSqliteDatabase(WriteLocked, peewee.SqliteDatabase):
    """A SQLite database with its write lock."""


class LockedPooledSqliteDatabase(WriteLocked, PooledSqliteDatabase):
    """The pooled SQLite database `scim serve` uses, with its write lock."""


def write_lock(db: peewee.Database) -> WriteLock | None:
    """Return the write lock of a store opened by store.db, or None (PostgreSQL, a bare database)."""
    return db.write_lock if isinstance(db, WriteLocked) else None
