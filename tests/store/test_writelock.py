"""Writers take turns: threads of one process, then processes, before SQLite's own lock (store/writelock.py)."""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import stat
import threading
from pathlib import Path

import peewee
import pytest

from skilljar_scim.base.errors import StoreBusy
from skilljar_scim.store import db as store_db
from skilljar_scim.store import models
from skilljar_scim.store.models import User
from skilljar_scim.store.writelock import WriteLock, WriteLocked, write_lock

pytestmark = pytest.mark.sqlite  # the turn is SQLite's: PostgreSQL queues writers on an advisory lock


def _hold_turn(url: str, holding, release) -> None:
    """In another process: open the store, take a write transaction, hold it until told."""
    database = store_db.open_database(url)
    with store_db.write_transaction():
        User.update(version=User.version).execute()
        holding.set()
        release.wait(20)
    database.close()


@pytest.fixture
def url(settings, store) -> str:
    return settings.database.url


@pytest.fixture
def acquisitions(store, monkeypatch) -> list[bool]:
    """Record what each take of the store's write lock returned (False: it gave up after wait_s).

    The verdicts below rest on these results and on the order of events, never on how long
    anything took: a loaded machine may be slow, not wrong.
    """
    results: list[bool] = []
    real = store.write_lock.acquire

    def acquire() -> bool:
        results.append(real())
        return results[-1]

    monkeypatch.setattr(store.write_lock, "acquire", acquire)
    return results


def test_turn_threads_of_one_process_queue_then_time_out(store, acquisitions):
    holding, release = threading.Event(), threading.Event()

    def hold():
        store.connect(reuse_if_open=True)
        with store_db.write_transaction():
            holding.set()
            release.wait(10)
        store.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    store.write_lock.wait_s = 0.2
    with pytest.raises(StoreBusy):
        with store_db.write_transaction():
            pass
    assert acquisitions == [True, False]  # the holder took it; ours gave up after wait_s, never reaching SQLite
    release.set()
    holder.join(10)
    with store_db.write_transaction():  # free again once the holder commits
        User.update(version=User.version).execute()


@pytest.mark.parametrize("wait_s, times_out", [(0.3, True), (10, False)])
def test_turn_processes_queue_on_the_lock_file(url, store, acquisitions, wait_s, times_out):
    context = multiprocessing.get_context("fork")
    holding, release = context.Event(), context.Event()
    other = context.Process(target=_hold_turn, args=(url, holding, release))
    other.start()
    try:
        assert holding.wait(20)
        store.write_lock.wait_s = wait_s
        if times_out:
            with pytest.raises(StoreBusy):
                with store_db.write_transaction():
                    pass
            assert acquisitions == [False]  # the lock file's wait gave up, not SQLite's 5 s busy_timeout
            return
        threading.Timer(0.3, release.set).start()
        with store_db.write_transaction():
            assert release.is_set()  # the lock came only after the other process was told to commit
            User.update(version=User.version).execute()
        assert acquisitions == [True]
    finally:
        release.set()
        other.join(20)


def test_turn_lock_file_is_owner_only_and_next_to_the_database(settings, store):
    with store_db.write_transaction():
        pass
    lock = settings.sqlite_path.with_name(settings.sqlite_path.name + "-lock")
    assert lock.exists()
    assert stat.S_IMODE(os.stat(lock).st_mode) == 0o600


def test_turn_is_released_when_the_transaction_fails(store):
    with pytest.raises(RuntimeError):
        with store_db.write_transaction():
            raise RuntimeError("boom")
    store.write_lock.wait_s = 0.2
    with store_db.write_transaction():  # would time out if the failed one kept the turn
        User.update(version=User.version).execute()
    assert models.database.obj.transaction_depth() == 0


def test_turn_without_a_lock_file_still_serialises_and_warns(settings, store, monkeypatch, caplog):
    """A folder where the lock file cannot be made (read-only): writes go on, SQLite's lock alone queues them."""
    real_open = os.open

    def refuse(path, *args, **kwargs):
        if str(path).endswith("-lock"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    turn = store.write_lock
    monkeypatch.setattr(os, "open", refuse)
    monkeypatch.setattr(turn, "_pid", None)  # as in a freshly forked worker: open the file again
    with caplog.at_level("WARNING", logger="skilljar_scim.store"):
        with store_db.write_transaction():
            User.update(version=User.version).execute()
    assert turn._fd is None
    assert "cannot open" in caplog.text and "Permission denied" in caplog.text
    assert not turn.threads.locked()  # the process's turn was released after the commit


def test_write_lock_is_part_of_the_sqlite_database(store, settings) -> None:
    """The lock is a typed attribute of the database object store.db opens, pooled or not."""
    assert isinstance(store, WriteLocked) and write_lock(store) is store.write_lock
    pooled = store_db.open_database(settings.database.url, reuse_connections=True)
    try:
        assert isinstance(pooled, WriteLocked) and isinstance(pooled.write_lock, WriteLock)
    finally:
        store_db.close_all(pooled)
    assert write_lock(peewee.SqliteDatabase(":memory:")) is None


def _descriptors_on(path: Path) -> int:
    """Count this process's descriptors open on `path` (other descriptors may come and go meanwhile)."""
    found = 0
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # one closed while listing
            found += os.readlink(f"/proc/self/fd/{name}") == str(path)
    return found


def test_writelock_closes_its_descriptors_with_the_lock(tmp_path: Path) -> None:
    """A process that opens and drops many stores (tests, tools) keeps no lock-file or watch descriptors."""
    watches = _watches()
    for _ in range(20):
        lock, other = WriteLock(tmp_path / "s.db", wait_s=1.0), WriteLock(tmp_path / "s.db", wait_s=0.01)
        assert lock.acquire()
        assert other.acquire() is False  # it waited: it made its watch
        lock.release()
        assert _descriptors_on(lock.path) == 2 and _watches() == watches + 1
        del lock, other
    gc.collect()
    assert _descriptors_on(tmp_path / "s.db-lock") == 0
    assert _watches() == watches


def _hand_over(holder: WriteLock, waiter: WriteLock, monkeypatch) -> list[bool]:
    """Let `waiter` go to sleep waiting for the file `holder` holds, release it; return what the waiter's acquire gave."""
    asleep, got, real = threading.Event(), [], waiter._sleep

    def sleep(left: float) -> None:
        asleep.set()
        real(left)

    monkeypatch.setattr(waiter, "_sleep", sleep)
    assert holder.acquire()
    thread = threading.Thread(target=lambda: got.append(waiter.acquire()), daemon=True)
    thread.start()
    assert asleep.wait(30)
    holder.release()
    thread.join(60)
    return got


def test_turn_passes_to_a_waiting_process_the_moment_the_holder_lets_go(tmp_path: Path, monkeypatch) -> None:
    """The waiter is woken by the holder's release, not by its own next check (an hour away here)."""
    monkeypatch.setattr("skilljar_scim.store.writelock.WAKE_AT_LEAST", 3600.0)
    # Two locks on one file: two descriptors, which flock treats as two processes' locks.
    holder, waiter = WriteLock(tmp_path / "s.db", 1.0), WriteLock(tmp_path / "s.db", 3600.0)
    assert _hand_over(holder, waiter, monkeypatch) == [True]
    waiter.release()


def test_turn_waiters_that_cannot_watch_the_file_poll_it_and_still_pass(tmp_path: Path, monkeypatch) -> None:
    """No inotify (not Linux, or its per-user limits reached): a waiting process checks the file every POLL_SECONDS."""
    monkeypatch.setattr("skilljar_scim.store.writelock._libc", lambda: None)
    holder, waiter = WriteLock(tmp_path / "s.db", 1.0), WriteLock(tmp_path / "s.db", 30.0)
    assert _hand_over(holder, waiter, monkeypatch) == [True]
    assert waiter._wake is None and waiter._watching is False
    waiter.release()


def test_turn_changes_seen_while_not_waiting_never_make_a_waiter_spin(tmp_path: Path, monkeypatch) -> None:
    """A watch keeps reporting the other writers' releases between waits; a waiter drains them before sleeping."""
    monkeypatch.setattr("skilljar_scim.store.writelock.WAKE_AT_LEAST", 0.1)
    holder, waiter = WriteLock(tmp_path / "s.db", 1.0), WriteLock(tmp_path / "s.db", 0.05)
    assert holder.acquire()
    assert waiter.acquire() is False and waiter._wake is not None  # waited once: it watches the file from now on
    holder.release()
    for _ in range(5):  # releases nobody waits for
        assert holder.acquire()
        holder.release()
    assert holder.acquire()
    waiter.wait_s = 0.3
    sleeps, real = [], waiter._sleep
    monkeypatch.setattr(waiter, "_sleep", lambda left: (sleeps.append(left), real(left)))
    assert waiter.acquire() is False  # the holder kept it
    holder.release()
    assert 1 <= len(sleeps) <= 4  # slept 0.1 s at a time; waking at once on old changes would spin thousands


def _watches() -> int:
    """Count this process's inotify descriptors."""
    return _descriptors_on(Path("anon_inode:inotify"))
