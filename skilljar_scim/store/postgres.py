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

import functools
import itertools
import logging
import threading
import time
from collections import OrderedDict

import peewee
from playhouse.pool import PooledPostgresqlDatabase

try:  # the PostgreSQL driver is an optional extra; store/db.py refuses a postgresql:// URL without it
    import psycopg2.extensions
    from psycopg2.extensions import TRANSACTION_STATUS_IDLE, TRANSACTION_STATUS_INTRANS
except ImportError:  # pragma: no cover - exercised only without the extra
    psycopg2 = None

log = logging.getLogger("skilljar_scim.store")

CHECK_AFTER = 30.0  # seconds idle before the pool checks a connection (pgbouncer's default)
_RELEASE = "RELEASE SAVEPOINT "
_SAVEPOINT = "SAVEPOINT "
_ROLLBACK_TO = "ROLLBACK TO SAVEPOINT "
_READ_BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ"  # what store.db.read_transaction() begins with
MAX_PREPARED = 100  # statements kept prepared per connection (psycopg 3's default); the least recently used go
_PREPARING = "scim_preparing"  # the savepoint a PREPARE sent inside a transaction runs in
_names = itertools.count(1)  # prepared statement names: never reused, so a PREPARE can never meet an old one
_unpreparable: set[str] = set()  # statements PostgreSQL refused to prepare (then run as they are)
# A page past the first is never prepared: a generic plan cannot know how far its OFFSET
# reaches, and PostgreSQL's plan cache was seen choosing one that scans every user (33 ms
# where the planned one takes 1); its own cost is its execution, not its planning.
_OFFSET = " OFFSET "


if psycopg2 is not None:
    class PreparingConnection(psycopg2.extensions.connection):
        """A psycopg2 connection that knows the statements prepared on it (they live as long as it does)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.prepared: OrderedDict[str, str] = OrderedDict()  # statement text -> its name, oldest use first


@functools.lru_cache(maxsize=1024)
def _numbered(sql: str) -> tuple[str, int]:
    """Return a psycopg2 statement with $1..$n for its %s placeholders (and % for %%), and n."""
    parts = sql.split("%%")
    count = 0
    for i, part in enumerate(parts):
        pieces = part.split("%s")
        parts[i] = "".join(piece + (f"${count + k + 1}" if k < len(pieces) - 1 else "") for k, piece in enumerate(pieces))
        count += len(pieces) - 1
    return "%".join(parts), count


@functools.lru_cache(maxsize=1024)
def _execute(name: str, count: int) -> str:
    """Return the EXECUTE of a prepared statement, its values bound by psycopg2 as for any statement."""
    return f"EXECUTE {name}({', '.join(['%s'] * count)})" if count else f"EXECUTE {name}"


class Deferred:
    """A PostgreSQL database whose transaction control rides with the next statement."""

    def __init__(self, *args, prepare: bool = True, **kwargs):
        if prepare:
            kwargs.setdefault("connection_factory", PreparingConnection)
        super().__init__(*args, **kwargs)
        self.prepare = prepare  # database.prepared_statements: off behind a pooler that moves sessions
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
            self.execute_prepared(sql, params)
            return
        name = self._prepared(sql)
        if name is not None:
            sql = _execute(name, _numbered(sql)[1])
        # Bound here by psycopg2 itself; `%` doubled, as the next statement's parameters are bound with it.
        self.queue(self.cursor().mogrify(sql, params).decode().replace("%", "%%"))
        self.pending.writes = True

    def execute_prepared(self, sql: str, params=()):
        """Run a statement that is run again and again (sqlcache's) by the name it is prepared under here."""
        name = self._prepared(sql)
        if name is None:
            return self.execute_sql(sql, params)
        return self.execute_sql(_execute(name, _numbered(sql)[1]), params)

    def _prepared(self, sql: str) -> str | None:
        """Return the name `sql` is prepared under on this connection, preparing it now; None to run it as it is."""
        if not self.prepare or sql in _unpreparable or _OFFSET in sql:
            return None
        conn = self.connection()
        name = conn.prepared.get(sql)
        if name is not None:
            conn.prepared.move_to_end(sql)
            return name
        name = f"scim_{next(_names)}"
        if not self._prepare(conn, name, sql):
            return None
        conn.prepared[sql] = name
        return name

    def _prepare(self, conn, name: str, sql: str) -> bool:
        """PREPARE `sql` on `conn` in a round trip of its own (the queue waits); say whether it is.

        Inside a transaction it runs in a savepoint, so a statement PostgreSQL cannot prepare
        (a parameter whose type it cannot infer) is run as it is instead of failing the
        transaction. The oldest statement past MAX_PREPARED is deallocated in the same round trip.
        """
        status = conn.info.transaction_status
        if status not in (TRANSACTION_STATUS_IDLE, TRANSACTION_STATUS_INTRANS):
            return False  # a failed transaction: its next statement fails as it would anyway
        inside = status == TRANSACTION_STATUS_INTRANS
        text = f"PREPARE {name} AS {_numbered(sql)[0]}"
        sent = [f"SAVEPOINT {_PREPARING}", text, f"RELEASE SAVEPOINT {_PREPARING}"] if inside else [text]
        if len(conn.prepared) >= MAX_PREPARED:
            sent.insert(0, f"DEALLOCATE {conn.prepared.popitem(last=False)[1]}")
        try:
            with peewee.__exception_wrapper__:
                conn.cursor().execute("; ".join(sent))  # no values: psycopg2 sends the text as it is
        except peewee.ProgrammingError as exc:  # SQLSTATE class 42: this statement cannot be prepared
            if inside:
                with peewee.__exception_wrapper__:
                    conn.cursor().execute(f"ROLLBACK TO SAVEPOINT {_PREPARING}; RELEASE SAVEPOINT {_PREPARING}")
            _unpreparable.add(sql)
            log.warning("PostgreSQL cannot prepare a statement; it runs unprepared: %s", " ".join(str(exc).split()))
            return False
        return True

    def begin(self, isolation_level=None):
        level = isolation_level or self._isolation_level
        self.connection()  # connect now, as peewee's own BEGIN would, so a refused connection fails here
        self.queue(f"BEGIN ISOLATION LEVEL {self._adapter.isolation_level_str(level)}" if level else "BEGIN")

    def execute_sql(self, sql, params=None):
        if sql.startswith((_SAVEPOINT, _RELEASE)):
            return self._savepoint(sql.rstrip(";"))
        if sql.startswith(_ROLLBACK_TO) and self._unsent_savepoint(sql.rstrip(";")):
            return None
        if getattr(self.pending, "sole_ran", False):
            raise RuntimeError("a read declared to be one statement ran another, outside that statement's snapshot")
        sole = self._sole()
        cursor = super().execute_sql(sql if sole else self._flushed(sql), params)
        self.pending.sole_ran = sole
        return cursor

    def sole(self) -> None:
        """Declare the next statement the whole of its read transaction: it is sent without BEGIN.

        One statement sees one snapshot on its own, so BEGIN and COMMIT would only cost a round
        trip. Only a read transaction with nothing sent yet qualifies; another statement in it
        raises RuntimeError rather than read outside that snapshot.
        """
        self.pending.sole = True

    def _sole(self) -> bool:
        """Take the sole() declaration; say whether the next statement goes without its transaction's BEGIN."""
        declared, self.pending.sole = getattr(self.pending, "sole", False), False
        queued = self._queue()
        return declared and self.transaction_depth() == 1 and queued == [_READ_BEGIN]

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
        self.pending.writes = self.pending.sole_ran = False
        queued = self._queue()
        unsent = any(s.startswith("BEGIN") for s in queued)
        queued.clear()
        return unsent

    def close(self):
        self._queue().clear()
        self.pending.writes = self.pending.sole_ran = False
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
        return self._again_if_lost(super().execute_sql, sql, params)

    def execute_prepared(self, sql: str, params=()):
        return self._again_if_lost(super().execute_prepared, sql, params)

    def _again_if_lost(self, run, sql: str, params):
        """Run `sql`; if the unchecked connection it went to was dead, run it again on a new one."""
        unchecked, self.pending.unchecked = getattr(self.pending, "unchecked", False), False
        try:
            return run(sql, params)
        except (peewee.OperationalError, peewee.InterfaceError):
            if not (unchecked and self._lost(sql)):
                raise
        # The server went away (a restart, a failover) since this connection's last use: the
        # others in the pool are suspect too, so each is checked before use; the read runs again
        # (prepared anew: what was prepared went with the old connection).
        log.warning("a pooled PostgreSQL connection was lost; reading again on a new one")
        self.returned.clear()
        self.close()
        self.connect()
        return run(sql, params)

    def _lost(self, sql: str) -> bool:
        """Say whether a statement failed because its unchecked connection was dead, and may run again.

        Only a read outside any transaction runs again: a request's first statement (its token).
        """
        return (self.transaction_depth() == 0 and sql.startswith("SELECT ")
                and bool(self.connection().closed))
