"""Workers share new connections: one per wake-up, the least loaded first (reads on every core, issue 11 rule 6)."""

from __future__ import annotations

import asyncio
import socket
from contextlib import ExitStack

from skilljar_scim.web import worker
from skilljar_scim.web.worker import Acceptor


class _Loop:
    """The calls an Acceptor makes on its loop, recorded; nothing runs by itself (no wall clock)."""

    def __init__(self, real: asyncio.AbstractEventLoop):
        self.real, self.armed, self.timers = real, False, []

    def add_reader(self, _fd, _callback) -> None:
        self.armed = True

    def remove_reader(self, _fd) -> None:
        self.armed = False

    def call_later(self, delay: float, callback) -> None:
        self.timers.append((delay, callback))

    def create_task(self, coroutine):
        return self.real.create_task(coroutine)


async def _acceptor(pending: int, held: int = 0):
    """Yield (acceptor, its loop, accepted sockets) with `pending` connections queued on its socket."""
    accepted: list[socket.socket] = []

    async def serve(conn: socket.socket) -> None:
        accepted.append(conn)

    stack = ExitStack()
    listener = stack.enter_context(socket.create_server(("127.0.0.1", 0), backlog=16))
    for _ in range(pending):  # the kernel completes each handshake before any accept
        stack.enter_context(socket.create_connection(listener.getsockname(), timeout=5))
    loop = _Loop(asyncio.get_running_loop())
    return Acceptor(loop, listener, serve, lambda: held), loop, accepted, stack


async def _wakeups(pending: int, wakeups: int) -> list[int]:
    acceptor, _, accepted, stack = await _acceptor(pending)
    with stack:
        counts = []
        for _ in range(wakeups):
            acceptor._ready()
            while acceptor.tasks:  # until the connection is set up (a few loop turns)
                await asyncio.sleep(0)
            counts.append(len(accepted))
        for conn in accepted:
            conn.close()
    return counts


def test_worker_accept_takes_one_pending_connection_per_wakeup() -> None:
    """asyncio's own server took every pending connection on one wake-up, so one worker got a whole burst."""
    assert asyncio.run(_wakeups(4, 2)) == [1, 2]


def test_worker_accept_with_nothing_pending_accepts_nothing() -> None:
    """Another worker woken by the same connection took it first: this one goes back to its loop."""
    assert asyncio.run(_wakeups(0, 2)) == [0, 0]


async def _deferred(held: int) -> tuple[list, bool, int, bool]:
    acceptor, loop, accepted, stack = await _acceptor(1, held)
    with stack:
        acceptor._ready()
        await asyncio.sleep(0)
        timers, armed, before = list(loop.timers), loop.armed, len(accepted)
        for _delay, callback in timers:  # the moment has passed and no other worker took it
            callback()
        await asyncio.sleep(0)
        for conn in accepted:
            conn.close()
        return [delay for delay, _ in timers], armed, before, len(accepted) == 1 and loop.armed


def test_worker_accept_busy_worker_leaves_a_new_connection_to_the_others_first() -> None:
    """A worker holding connections waits in proportion (bounded) before it takes one itself."""
    assert asyncio.run(_deferred(held=4)) == ([4 * worker.DEFER_PER_CONNECTION_S], False, 0, True)
    assert asyncio.run(_deferred(held=worker.DEFER_BELOW - 1))[0] == [worker.MAX_DEFER_S]


def test_worker_accept_crowded_worker_takes_a_new_connection_at_once() -> None:
    """Holding many connections (mostly idle ones, or an attacker's), a deferral per connection
    would delay a genuine client queued behind the crowd by seconds: past DEFER_BELOW, none."""
    assert asyncio.run(_deferred(held=worker.DEFER_BELOW)) == ([], True, 1, True)
    assert asyncio.run(_deferred(held=1000)) == ([], True, 1, True)


def test_worker_accept_idle_worker_takes_a_new_connection_at_once() -> None:
    assert asyncio.run(_deferred(held=0)) == ([], True, 1, True)
