"""The webhook delivery worker `scim serve` runs: one process beside the HTTP workers.

A process of its own, so sending to slow receivers never takes a request thread or the
interpreter lock from provisioning (a SCIM request only writes outbox rows). It is forked
before gunicorn starts (no threads or connections exist yet; plain os.fork, because
multiprocessing's exit handlers would run in gunicorn's workers too), opens its own connection, and
stops on SIGTERM/SIGINT from `serve`, or by itself when `serve` dies (its parent changes).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time

import peewee

from skilljar_scim.base.config import Settings
from skilljar_scim.domain import worker
from skilljar_scim.store import db as store_db

log = logging.getLogger("skilljar_scim.webhooks")
STOP_TIMEOUT = 10  # seconds a stopping worker may take to finish the round it is in


def start(settings: Settings, listener: socket.socket | None = None) -> int:
    """Fork the delivery worker for `settings`; return its process id."""
    parent = os.getpid()
    child = os.fork()
    if child == 0:  # the worker: never return into the caller's stack
        code = 1
        try:
            if listener is not None:
                listener.close()  # the port must close when `serve` dies, whatever this process does
            _main(settings, parent)
            code = 0
        finally:
            os._exit(code)
    return child


def stop(child: int, owner: int) -> None:
    """Ask the worker to stop after its current round; kill it if it does not.

    Only `owner` (the process that started it) does: gunicorn's workers are forked inside
    `serve` and unwind through the same code when they exit.
    """
    if os.getpid() != owner:
        return
    for number in (signal.SIGTERM, signal.SIGKILL):
        if _signal_and_wait(child, number, STOP_TIMEOUT):
            return


def _signal_and_wait(child: int, number: int, seconds: float) -> bool:
    """Send `number`; return True once the child is gone (reaped here or by gunicorn's arbiter)."""
    try:
        os.kill(child, number)
    except ProcessLookupError:
        return True
    for _ in range(int(seconds * 20)):
        try:
            if os.waitpid(child, os.WNOHANG)[0] == child:
                return True
        except ChildProcessError:  # already reaped
            return True
        time.sleep(0.05)
    return False


def _main(settings: Settings, parent: int) -> None:
    """Run in the child: deliver until told to stop or orphaned."""
    # Delivery never slows provisioning: when both want the CPU, the HTTP workers get it
    # (README "Webhooks"). Its write transactions are a few statements, so a lower priority
    # holds the store's write lock no longer than a busy box would anyway.
    os.nice(settings.webhooks.niceness)
    stopping = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stopping.set())
    database = store_db.open_configured(settings.database, migrate_schema=False)
    if isinstance(database, peewee.SqliteDatabase):
        # Claims and outcomes need not survive a power cut: a lost claim is claimed again and a
        # lost "delivered" is sent again (at least once either way), so they skip the fsync that
        # provisioning commits pay (README "Webhooks").
        database.pragma("synchronous", "normal", permanent=True)
    try:
        worker.run_until_stopped(settings, stopping, alive=lambda: os.getppid() == parent)
    finally:
        database.close()
        log.info("webhook delivery worker stopped")
