"""The write lock of a SQLite store: writers queue here, threads of one process, then processes.

SQLite lets one writer in at a time and parks the others in a busy handler that polls with
growing sleeps (up to 100 ms), so writers queued there leave the lock idle much of the
time and a write's tail latency grows with the number of writers (README "Performance"
has the figures). A writer here first takes its process's lock, handed over the moment it
is released, then an exclusive lock on a small file next to the database (`<database>-lock`,
mode 600), which every process using the store takes the same way (`scim serve` workers and
CLI commands alike). BEGIN IMMEDIATE then finds SQLite's lock free, unless a program other
than skilljar-scim writes to the file; SQLite's busy_timeout still covers that case.

A process waiting for the file watches it (inotify) and sleeps until it changes: every
writer writes a byte into the file as it lets go, so the turn passes to another process as
soon as it is free. Polling the file every millisecond instead left the lock idle for half a
millisecond a turn on average, a third of a create's whole turn. Each process has a watch
of its own, so a wake-up reaches every waiting process (a pipe's byte is read by one). The
watch only wakes waiters early: each still checks the file at least every WAKE_AT_LEAST
seconds (a writer killed while writing wakes no one), and where inotify is missing (not
Linux) or refused (its per-user limits reached), waiters check every POLL_SECONDS.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import select
import sys
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
POLL_SECONDS = 0.001  # how often a waiter checks the file when it cannot watch it
WAKE_AT_LEAST = 0.01  # how often a waiter checks the file it watches: a wake-up may never come
_IN_MODIFY = 0x2  # inotify: the file was written


class WriteLock:
    """One store's writers' queue: `acquire()` within the wait, then `release()` after COMMIT."""

    def __init__(self, database_path: Path, wait_s: float):
        self.path = database_path.with_name(database_path.name + "-lock")
        self.wait_s = wait_s
        self.threads = threading.Lock()
        self._fd: int | None = None
        self._wake: int | None = None  # this process's inotify watch of the lock file, made at the first wait
        self._watching = True  # False once a watch was refused: poll
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
        """Close this process's descriptors with the lock (tests and tools open many stores)."""
        if getattr(self, "_pid", None) == os.getpid():
            for fd in (self._fd, self._wake):
                if fd is not None:
                    os.close(fd)

    def release(self) -> None:
        try:
            if self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                self._wake_others()
        finally:
            self.threads.release()

    def _lock_file(self, deadline: float) -> bool:
        fd = self._file()
        if fd is None:
            return True  # no lock file: writers of other processes meet on SQLite's lock alone
        while True:
            self._drain()  # changes made before this try are answered by it
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
            if self._wake is None and self._watching:
                self._wake = _watch(self.path)  # then try again: a release just before the watch began is unseen
                self._watching = self._wake is not None
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._sleep(left)

    def _sleep(self, left: float) -> None:
        """Wait until a writer lets go (the file changes), WAKE_AT_LEAST, or `left` seconds."""
        if self._wake is None:
            time.sleep(min(POLL_SECONDS, left))
            return
        waiting = select.poll()  # not select(): a busy server's descriptors go past FD_SETSIZE
        waiting.register(self._wake, select.POLLIN)
        waiting.poll(max(1, int(min(WAKE_AT_LEAST, left) * 1000)))

    def _drain(self) -> None:
        if self._wake is None:
            return
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake, 4096):
                pass

    def _wake_others(self) -> None:
        """Tell the processes waiting for the file that it is free: change it (it holds nothing else)."""
        with contextlib.suppress(OSError):  # a full disk: they find out at their next check
            os.pwrite(self._fd, b"w", 0)

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
            self._wake, self._watching = None, True  # an inherited watch reports to the parent too
        return self._fd


def _watch(path: Path) -> int | None:
    """Return an inotify descriptor (non-blocking) that turns readable when `path` is written, or None."""
    libc = _libc()
    if libc is None:
        return None
    fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)  # IN_NONBLOCK, IN_CLOEXEC
    if fd < 0 or libc.inotify_add_watch(fd, os.fsencode(path), _IN_MODIFY) < 0:
        error = ctypes.get_errno()
        if fd >= 0:
            os.close(fd)
        log.info("cannot watch %s (%s): waiting writers poll it instead", path, os.strerror(error))
        return None
    return fd


@functools.lru_cache(maxsize=1)
def _libc():
    """Return the C library, for inotify; None where it has none (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1, libc.inotify_add_watch  # noqa: B018 - present since glibc 2.9 and in musl
    except (OSError, AttributeError):
        return None
    return libc


class WriteLocked:
    """A database whose writers queue on its `write_lock` (see store.db.write_transaction).

    It also runs the statements store/sqlcache.py sends the way SQLite needs them: at once.
    PostgreSQL's database (store/postgres.py Deferred) prepares them, sends a one-statement
    read without BEGIN and holds writes nothing reads for the next round trip; here each of
    those is simply the statement itself.
    """

    write_lock: WriteLock

    def __init__(self, database: str, *, write_lock: WriteLock, **kwargs):
        super().__init__(database, **kwargs)
        self.write_lock = write_lock

    def execute_prepared(self, sql: str, params=()):
        return self.execute_sql(sql, params)

    def sole(self) -> None:
        """A read transaction on SQLite costs no round trip: nothing to leave out."""

    def queue_write(self, sql: str, params) -> None:
        self.execute_sql(sql, params)


class LockedSqliteDatabase(WriteLocked, peewee.SqliteDatabase):
    """A SQLite database with its write lock."""


class LockedPooledSqliteDatabase(WriteLocked, PooledSqliteDatabase):
    """The pooled SQLite database `scim serve` uses, with its write lock."""


def write_lock(db: peewee.Database) -> WriteLock | None:
    """Return the write lock of a store opened by store.db, or None (PostgreSQL, a bare database)."""
    return db.write_lock if isinstance(db, WriteLocked) else None
