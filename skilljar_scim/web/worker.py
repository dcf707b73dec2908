"""The gunicorn worker `scim serve` runs: an asyncio loop holds the connections, a few threads run the app.

gunicorn stays the process manager (pre-fork, SIGTERM drain, SIGHUP reload, restarting a
dead worker); this worker replaces its thread-per-connection model. The loop reads each
request whole (wire.Wire: h11, deadlines, size limits), then a pool of `server.threads`
threads runs the WSGI app on it, and the loop writes the answer. A connection that is idle
or trickles costs a few kilobytes of the loop's memory, never a thread (README "Serving model").
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor

from gunicorn.workers.base import Worker

from skilljar_scim.base.config import Settings
from skilljar_scim.web import gateway
from skilljar_scim.web.access import record
from skilljar_scim.web.wire import ClientGone, Limits, Refusal, Wire, refusal_bytes

HEARTBEAT_S = 1.0  # how often the worker tells the master it is alive and checks the master is
LINGER_S = 2.0  # after a refusal, how long unread input is drained so the client sees the answer
ACCEPT_RETRY_S = 1.0  # after accept() failed for want of descriptors or memory (asyncio waits as long)
DEFER_PER_CONNECTION_S = 0.0005  # how long a worker leaves a new connection to the others, per connection it holds
MAX_DEFER_S = 0.005
# A worker holding this many connections takes new ones at once: among that many most are idle
# (balance by count means little), and a deferral per connection would let a crowd of idle or
# trickling connections (500 in README's test) delay the genuine client queued behind them.
DEFER_BELOW = 32
log = logging.getLogger("skilljar_scim.server")


def limits_of(settings: Settings) -> Limits:
    """Return the connection limits a worker applies, from the [server] and [limits] settings."""
    server = settings.server
    return Limits(header_timeout=server.header_timeout, body_timeout=server.body_timeout,
                  idle_timeout=server.idle_timeout, max_request_line=server.max_request_line_bytes,
                  max_header_bytes=server.max_header_bytes,
                  max_body_bytes=max(server.max_body_bytes, settings.limits.max_bulk_payload_bytes))


class ScimWorker(Worker):
    """A gunicorn worker: asyncio for connections, a thread pool for the app, nothing slow in between."""

    def init_process(self) -> None:
        self.settings: Settings = self.app.scim_settings
        self.ssl: ssl.SSLContext | None = self.app.scim_ssl
        self.limits = limits_of(self.settings)
        self.clients: dict[asyncio.Task, Wire] = {}
        self.stopping: asyncio.Event | None = None
        super().init_process()

    def run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        self._signals(loop)
        self.pool = ThreadPoolExecutor(max(self.settings.server.threads, 1), thread_name_prefix="scim-app")
        servers = [Acceptor(loop, listener.sock, self._accepted, lambda: len(self.clients)) for listener in self.sockets]
        await self._heartbeat()
        await self._drain(servers)

    def _signals(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)  # graceful: finish requests in flight
        loop.add_signal_handler(signal.SIGINT, self._quit)
        loop.add_signal_handler(signal.SIGQUIT, self._quit)
        loop.add_signal_handler(signal.SIGUSR1, self.log.reopen_files)

    def _quit(self) -> None:
        self.alive = False
        os._exit(0)  # SIGINT / SIGQUIT: stop at once, as gunicorn's own workers do

    async def _heartbeat(self) -> None:
        """Tell the master we are alive until SIGTERM, or until the master itself is gone."""
        while not self.stopping.is_set():
            self.notify()
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                break
            try:
                await asyncio.wait_for(self.stopping.wait(), HEARTBEAT_S)
            except TimeoutError:
                pass
        self.stopping.set()

    async def _drain(self, servers: list) -> None:
        """Stop accepting, let requests in flight finish (up to graceful_timeout), then close the rest."""
        for server in servers:
            server.close()
        deadline = asyncio.get_running_loop().time() + self.cfg.graceful_timeout
        while asyncio.get_running_loop().time() < deadline:
            for task, wire in list(self.clients.items()):
                if not wire.busy:
                    task.cancel()  # idle between requests: nothing to finish
            if not self.clients:
                break
            self.notify()
            await asyncio.sleep(0.05)
        for task in list(self.clients):
            task.cancel()
        await asyncio.gather(*self.clients, return_exceptions=True)
        self.pool.shutdown(wait=True)

    async def _accepted(self, conn: socket.socket) -> None:
        """Set up an accepted connection (its TLS handshake too) and serve it as _client."""
        loop = asyncio.get_running_loop()

        def protocol() -> asyncio.StreamReaderProtocol:
            return asyncio.StreamReaderProtocol(asyncio.StreamReader(loop=loop), self._client, loop=loop)

        try:
            await loop.connect_accepted_socket(protocol, conn, ssl=self.ssl,
                                               ssl_handshake_timeout=self.limits.header_timeout if self.ssl else None)
        except (OSError, ssl.SSLError, TimeoutError):  # a failed handshake or a reset: nothing to answer
            conn.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.clients) >= self.settings.server.max_connections:
            await self._turn_away(writer)
            return
        task = asyncio.current_task()
        wire = Wire(reader, writer, self.limits)
        # Accepted as the worker stops (a SIGHUP or SIGTERM race): its request is served, then
        # the connection closes; counting it busy keeps the drain from cancelling it unanswered.
        wire.busy = self.stopping.is_set()
        self.clients[task] = wire
        try:
            await self._converse(wire)
        finally:
            self.clients.pop(task, None)
            writer.close()

    async def _converse(self, wire: Wire) -> None:
        """Serve one connection's requests in turn until it closes, idles out, or is refused."""
        peer = wire.writer.get_extra_info("peername")
        local = wire.writer.get_extra_info("sockname") or ("", "")
        scheme = "https" if self.ssl else "http"
        first = True
        try:
            while first or not self.stopping.is_set():
                request = await wire.next_request(first)
                env = gateway.environ(request, peer, local, scheme)
                answer = await asyncio.get_running_loop().run_in_executor(self.pool, gateway.call, self.wsgi, env)
                if not await wire.answer(request, answer, close=self.stopping.is_set()):
                    return
                first = False
        except Refusal as refusal:
            await wire.refuse(refusal)
            await _linger(wire)
        except (ClientGone, ConnectionError, TimeoutError, ssl.SSLError):
            pass

    async def _turn_away(self, writer: asyncio.StreamWriter) -> None:
        """Answer 503 + Retry-After when this worker holds its connection limit (RFC 9110 §15.6.4)."""
        refusal = Refusal(503, "the server is at its connection limit; retry shortly", headers=(("Retry-After", "1"),))
        record("-", "-", 503, 0.0)
        try:
            writer.write(refusal_bytes(refusal))
            async with asyncio.timeout(1):
                await writer.drain()
        except (ConnectionError, TimeoutError, ssl.SSLError):
            pass
        writer.close()


class Acceptor:
    """Accept connections on a listening socket shared with the other workers, spread across them.

    asyncio's own server accepts every pending connection when the socket wakes it (up to its
    backlog): the worker that woke first took a whole burst of new connections and served
    them on one core while the other workers idled. Here a worker takes one connection per
    wake-up, and one that already holds connections first leaves the others a moment to take
    it (DEFER_PER_CONNECTION_S a connection held, at most MAX_DEFER_S, none from DEFER_BELOW on):
    a new connection goes to the worker holding the fewest, so reads run on every core.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, serve, held=lambda: 0):
        self.loop, self.sock, self.serve, self.held = loop, sock, serve, held
        self.tasks: set[asyncio.Task] = set()  # being set up; the loop keeps only weak references
        self.closed = False
        sock.setblocking(False)
        self._resume()

    def _ready(self) -> None:
        held = self.held() + len(self.tasks)
        delay = min(held * DEFER_PER_CONNECTION_S, MAX_DEFER_S) if held < DEFER_BELOW else 0.0
        if delay > 0:
            self._pause(delay, self._after_deferring)
        else:
            self._accept()

    def _after_deferring(self) -> None:
        if not self.closed:
            self._resume()
            self._accept()  # still pending: no worker holding fewer connections took it

    def _accept(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another worker took it
        except OSError as exc:  # out of descriptors or memory: pause rather than spin on a ready socket
            log.error("cannot accept a connection (%s); retrying in %.0f s", exc.strerror, ACCEPT_RETRY_S)
            self._pause(ACCEPT_RETRY_S, self._resume)
            return
        conn.setblocking(False)
        task = self.loop.create_task(self.serve(conn))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _pause(self, seconds: float, then) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.loop.call_later(seconds, then)

    def _resume(self) -> None:
        if not self.closed:
            self.loop.add_reader(self.sock.fileno(), self._ready)

    def close(self) -> None:
        """Stop accepting (a stopping worker); the connections already accepted carry on."""
        self.closed = True
        self.loop.remove_reader(self.sock.fileno())


async def _linger(wire: Wire) -> None:
    """Half-close, then read and drop what the client still sends, so it reads our refusal.

    Closing a socket with unread input makes the kernel reset the connection, and the reset
    can destroy the refusal before the client reads it (RFC 9112 §9.6).
    """
    try:
        if wire.writer.can_write_eof():
            wire.writer.write_eof()
        async with asyncio.timeout(LINGER_S):
            while await wire.reader.read(65536):
                pass
    except (ConnectionError, TimeoutError, ssl.SSLError):
        pass
