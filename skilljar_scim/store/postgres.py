"""PostgreSQL connections that spend no round trip on transaction control alone.

Peewee sends BEGIN, SAVEPOINT, RELEASE SAVEPOINT and the pool's liveness check (`SELECT 1`)
each as a statement of its own, and psycopg2 waits for every answer: a lookup made six round
trips to the server, of which two read data (README "Performance"). Here transaction control
is queued and sent in front of the next real statement, in the same simple-query message
(PostgreSQL runs a message's statements in order and answers with the last one's rows):

- BEGIN (and a write's advisory lock, `queue()`) goes with the transaction's first statement.
  A REPEATABLE READ snapshot is taken by the first statement after BEGIN either way, and
  the write lock is held before any statement of the writer runs, so nothing changes but
  the count of round trips. A transaction that ran no statement sends nothing at all.
- A write whose answer nothing reads (an event row: `queue_write`) goes with the next
  statement, or with COMMIT.
- SAVEPOINT goes with the statement it guards; a savepoint released before any statement
  ran is dropped; RELEASE goes with the next statement, and at COMMIT is left out (COMMIT
  releases every savepoint).
- The pool checks a connection with `SELECT 1` only when it has been idle for CHECK_AFTER
  seconds, as pgbouncer's `server_check_delay` does: a connection handed back a moment ago
  is as alive as the request that used it found it. If the server went away meanwhile (a
  restart), a request's first statement (a read outside any transaction) fails on the dead
  connection: it runs again on a new one, and every other pooled connection is checked.
"""

from __future__ import annotations

import logging
import threading
import time

import peewee
from playhouse.pool import PooledPostgresqlDatabase

log = logging.getLogger("skilljar_scim.store")

CHECK_AFTER = 30.0  # seconds idle before the pool checks a connection (pgbouncer's default)
_RELEASE = "RELEASE SAVEPOINT "
_SAVEPOINT = "SAVEPOINT "
_ROLLBACK_TO = "ROLLBACK TO SAVEPOINT "


class Deferred:
    """A PostgreSQL database whose transaction control rides with the next statement."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pending = threading.local()  # per thread, like peewee's connection state

    def _queue(self) -> list[str]:
        if not hasattr(self.pending, "statements"):
            self.pending.statements = []
        return self.pending.statements

    def queue(self, statement: str) -> None:
        """Send `statement` (literal SQL, no parameters) with the next one, in the same round trip."""
        self._queue().append(statement)

    def queue_write(self, sql: str, params) -> None:
        """Send a write whose answer nothing reads with the next statement, or with COMMIT.

        Only for rows nothing in the transaction checks (an event, a user's email index): an
        error in it surfaces at the next statement, and rolls the whole transaction back all the same.
        """
        if self.transaction_depth() == 0:  # no COMMIT will come to carry it
            self.execute_sql(sql, params)
            return
        # Bound here by psycopg2 itself; `%` doubled, as the next statement's parameters are bound with it.
        self.queue(self.cursor().mogrify(sql, params).decode().replace("%", "%%"))
        self.pending.writes = True

    def begin(self, isolation_level=None):
        level = isolation_level or self._isolation_level
        self.connection()  # connect now, as peewee's own BEGIN would, so a refused connection fails here
        self.queue(f"BEGIN ISOLATION LEVEL {self._adapter.isolation_level_str(level)}" if level else "BEGIN")

    def execute_sql(self, sql, params=None):
        if sql.startswith((_SAVEPOINT, _RELEASE)):
            return self._savepoint(sql.rstrip(";"))
        if sql.startswith(_ROLLBACK_TO) and self._unsent_savepoint(sql.rstrip(";")):
            return None
        return super().execute_sql(self._flushed(sql), params)

    def _flushed(self, sql: str) -> str:
        queued = self._queue()
        if not queued:
            return sql
        text = "; ".join([*queued, sql])
        queued.clear()
        return text

    def _savepoint(self, statement: str) -> None:
        queued = self._queue()
        if statement.startswith(_RELEASE) and queued and queued[-1] == _SAVEPOINT + statement[len(_RELEASE):]:
            queued.pop()  # nothing ran inside it: it never needs to exist
            return None
        queued.append(statement)
        return None

    def _unsent_savepoint(self, statement: str) -> bool:
        """Drop a savepoint not sent yet and all queued after it; say whether there was one."""
        queued = self._queue()
        opened = _SAVEPOINT + statement[len(_ROLLBACK_TO):]
        if opened not in queued:
            return False
        del queued[queued.index(opened):]
        return True

    def commit(self):
        if getattr(self.pending, "writes", False):
            self.pending.writes = False
            self.execute_sql("COMMIT")  # the queued writes run first, in the same round trip
            return None
        if self._discard_unsent():
            return None
        return super().commit()

    def rollback(self):
        if self._discard_unsent():
            return None
        return super().rollback()

    def _discard_unsent(self) -> bool:
        """Forget queued statements; say whether BEGIN itself was never sent (nothing to end)."""
        self.pending.writes = False
        queued = self._queue()
        unsent = any(s.startswith("BEGIN") for s in queued)
        queued.clear()
        return unsent

    def close(self):
        self._queue().clear()
        self.pending.writes = False
        return super().close()


class DeferredPostgresqlDatabase(Deferred, peewee.PostgresqlDatabase):
    """The PostgreSQL database the CLI opens: one connection, control sent with statements."""


class DeferredPooledPostgresqlDatabase(Deferred, PooledPostgresqlDatabase):
    """The pooled PostgreSQL database `scim serve` uses; it checks only connections idle a while."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.returned: dict = {}  # connection key -> monotonic time it came back to the pool
        self.clock = time.monotonic  # tests pass a controlled one

    def _close(self, conn, close_conn=False):
        if not close_conn:
            self.returned[self.conn_key(conn)] = self.clock()
        return super()._close(conn, close_conn)

    def _is_closed(self, conn):
        returned = self.returned.pop(self.conn_key(conn), None)
        if conn.closed or self._adapter.txn_status(conn) != self._adapter.txn_idle:
            return super()._is_closed(conn)
        if returned is not None and self.clock() - returned < CHECK_AFTER:
            self.pending.unchecked = True
            return False
        return super()._is_closed(conn)

    def execute_sql(self, sql, params=None):
        unchecked, self.pending.unchecked = getattr(self.pending, "unchecked", False), False
        try:
            return super().execute_sql(sql, params)
        except (peewee.OperationalError, peewee.InterfaceError):
            if not (unchecked and self._lost(sql)):
                raise
        # The server went away (a restart, a failover) since this connection's last use: the
        # others in the pool are suspect too, so each is checked before use; the read runs again.
        log.warning("a pooled PostgreSQL connection was lost; reading again on a new one")
        self.returned.clear()
        self.close()
        self.connect()
        return super().execute_sql(sql, params)

    def _lost(self, sql: str) -> bool:
        """Say whether a statement failed because its unchecked connection was dead, and may run again.

        Only a read outside any transaction runs again: a request's first statement (its token).
        """
        return (self.transaction_depth() == 0 and sql.startswith("SELECT ")
                and bool(self.connection().closed))
