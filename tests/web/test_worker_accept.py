"""Workers share a burst of new connections: each takes one per wake-up (reads on every core, issue 11 rule 6)."""

from __future__ import annotations

import asyncio
import socket
from contextlib import ExitStack

from skilljar_scim.web.worker import Acceptor


async def _accepted_on_one_wakeup(pending: int) -> tuple[int, int]:
    """Queue `pending` connections on a listening socket; return (accepted by one wake-up, by the next)."""
    loop = asyncio.get_running_loop()
    accepted: list[socket.socket] = []

    async def serve(conn: socket.socket) -> None:
        accepted.append(conn)

    with ExitStack() as stack:
        listener = stack.enter_context(socket.create_server(("127.0.0.1", 0), backlog=16))
        clients = [stack.enter_context(socket.create_connection(listener.getsockname(), timeout=5))
                   for _ in range(pending)]  # the kernel completes each handshake before any accept
        acceptor = Acceptor(loop, listener, serve)
        acceptor.close()  # no wake-ups from the loop: this test calls them by hand
        acceptor._ready()
        await asyncio.sleep(0)
        first = len(accepted)
        acceptor._ready()
        await asyncio.sleep(0)
        second = len(accepted) - first
        for conn in accepted:
            conn.close()
        assert len(clients) == pending
    return first, second


def test_worker_accept_takes_one_pending_connection_per_wakeup() -> None:
    """asyncio's own server took every pending connection on one wake-up, so one worker got a whole burst."""
    assert asyncio.run(_accepted_on_one_wakeup(4)) == (1, 1)


def test_worker_accept_with_nothing_pending_accepts_nothing() -> None:
    """Another worker woken by the same connection took it first: this one goes back to its loop."""
    assert asyncio.run(_accepted_on_one_wakeup(0)) == (0, 0)
