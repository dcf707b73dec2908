"""POST webhook deliveries over kept-alive HTTP/1.1 connections, reading only what the answer needs.

http.client cost about half of the delivery process's CPU per event (a request written in
many small pieces, every answer's headers parsed by the email package), CPU taken from
provisioning on the same box. A delivery needs less: one write of the request, and of the
answer its status and how to find its end (RFC 9112 section 6.3), so the connection can
carry the next request. Nothing here follows a redirect: a 3xx is an answer like any other.

The receiver's timeout bounds each whole exchange (name resolution, connect, TLS handshake,
sending, the answer's head and body), not each socket operation: a receiver trickling its
answer a byte at a time must not hold a delivery thread, and the stream's round, for ever.
"""

from __future__ import annotations

import io
import ipaddress
import queue
import socket
import ssl
import threading
import time

MAX_LINE = 8192  # bytes of one status or header line a receiver may send
MAX_HEAD = 65536  # bytes of status line and headers together
MAX_BODY = 65536  # an answer body longer than this is not read: the connection is closed instead


class ProtocolError(Exception):
    """The receiver's answer is not HTTP/1.x, or the URL cannot be sent as a request line."""


class _Unanswered(Exception):
    """A kept-alive connection was closed by the receiver before it answered (it may time idle ones out)."""


class _Deadline(io.RawIOBase):
    """The socket as a raw stream whose every read waits at most until the exchange's deadline."""

    def __init__(self, connection: "Connection"):
        self.connection = connection

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self.connection.arm().recv_into(buffer)


class Connection:
    """One connection to a receiver: opened on first use, kept while its answers allow it."""

    def __init__(self, scheme: str, host: str, port: int | None, timeout: float, context: ssl.SSLContext | None):
        self.host, self.port = host, port or (443 if scheme == "https" else 80)
        self.timeout, self.context = timeout, context if scheme == "https" else None
        self.sock: socket.socket | None = None
        self.reader = None
        self.deadline = 0.0

    def post(self, request: bytes) -> int:
        """Send one whole request; return the answer's status.

        A kept-alive connection the receiver closed meanwhile is opened again once and the
        request sent again: at least once allows it, and a retry 30 s later would cost more.
        """
        self.deadline = time.monotonic() + self.timeout
        for _ in range(2 if self.sock is not None else 1):  # a reused connection gets one fresh try
            try:
                return self._exchange(request)
            except _Unanswered:
                self.close()
        raise ConnectionError("the receiver closed the connection without answering")

    def _exchange(self, request: bytes) -> int:
        if self.sock is None:
            self._open()
        try:
            self._send(request)
            status, keep = self._answer()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise _Unanswered from exc
        except BaseException:
            self.close()  # a timed-out or broken exchange leaves the connection in no known state
            raise
        if not keep:
            self.close()
        return status

    def arm(self) -> socket.socket:
        """Return the socket with its timeout set to what is left of the exchange; raise TimeoutError if nothing is."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the exchange's deadline passed")
        self.sock.settimeout(left)
        return self.sock

    def _send(self, request: bytes) -> None:
        """Send all of the request, each piece within what is left of the deadline (sendall's timeout is per piece on TLS)."""
        view = memoryview(request)
        while view:
            view = view[self.arm().send(view):]

    def _open(self) -> None:
        """Connect, resolution and TLS handshake included, within the exchange's deadline."""
        try:
            self._connect()
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.context is not None:
                self.sock = self.context.wrap_socket(self.arm(), server_hostname=self.host)  # one deadline
            self.reader = io.BufferedReader(_Deadline(self))
        except BaseException:
            self.close()
            raise

    def _connect(self) -> None:
        """Connect to the first resolved address that accepts (as socket.create_connection, with our deadline)."""
        error: OSError = ConnectionError(f"no address for {self.host}")
        for family, kind, proto, _, address in resolve(self.host, self.port, self.deadline):
            self.sock = socket.socket(family, kind, proto)
            try:
                self.arm().connect(address)
                return
            except OSError as exc:
                self.close()
                error = exc
        raise error

    def _answer(self) -> tuple[int, bool]:
        """Read one answer (skipping interim 1xx ones); return its status and whether the connection stays usable."""
        budget = [MAX_HEAD]
        while True:
            line = self._line(budget)
            if not line:
                raise _Unanswered
            version, status = status_line(line)
            headers = self._headers(budget)
            if not 100 <= status < 200 or status == 101:
                break
        return status, self._skip_body(version, status, headers)

    def _line(self, budget: list[int]) -> bytes:
        line = self.reader.readline(min(MAX_LINE, budget[0]) + 1)
        budget[0] -= len(line)
        if len(line) > MAX_LINE or budget[0] < 0:
            raise ProtocolError("the receiver's answer headers are too long")
        return line

    def _headers(self, budget: list[int]) -> dict[bytes, bytes]:
        """Read header lines up to the blank one; keep the three that say where the body ends."""
        found: dict[bytes, bytes] = {}
        while (line := self._line(budget)) not in (b"\r\n", b"\n"):
            if not line:
                raise ProtocolError("the receiver closed the connection in the middle of its answer")
            name, colon, value = line.partition(b":")
            name = name.strip().lower()
            if colon and name in (b"content-length", b"transfer-encoding", b"connection"):
                found[name] = (found[name] + b"," if name in found else b"") + value.strip().lower()
        return found

    def _skip_body(self, version: bytes, status: int, headers: dict[bytes, bytes]) -> bool:
        """Read the body to its end if that is cheap; return False when the connection must close (RFC 9112 6.3)."""
        keep = version == b"HTTP/1.1" and b"close" not in headers.get(b"connection", b"")
        if status in (101, 204, 304):
            return keep and status != 101
        if b"transfer-encoding" in headers or b"content-length" not in headers:
            return False  # chunked, or read until close: not worth reading, just reconnect
        try:
            length = int(headers[b"content-length"])
        except ValueError:
            return False
        if not 0 <= length <= MAX_BODY:
            return False
        return keep and len(self.reader.read(length)) == length

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
        if self.sock is not None:
            self.sock.close()
        self.sock = self.reader = None


def resolve(host: str, port: int, deadline: float) -> list[tuple]:
    """Return getaddrinfo's addresses for a TCP connection, waiting for them at most until the deadline.

    getaddrinfo takes no timeout, so a host name is resolved in a daemon thread this one stops
    waiting for at the deadline (that thread ends when the system resolver gives up). An IP
    literal needs no resolver and is answered here.
    """
    try:
        ipaddress.ip_address(host)
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except ValueError:
        pass
    answer: queue.SimpleQueue = queue.SimpleQueue()
    threading.Thread(target=_lookup, args=(host, port, answer), daemon=True, name="webhook-resolve").start()
    try:
        result = answer.get(timeout=max(deadline - time.monotonic(), 0))
    except queue.Empty:
        raise TimeoutError(f"resolving {host} took too long") from None
    if isinstance(result, OSError):
        raise result
    return result


def _lookup(host: str, port: int, answer: queue.SimpleQueue) -> None:
    try:
        answer.put(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    except OSError as exc:
        answer.put(exc)


def status_line(line: bytes) -> tuple[bytes, int]:
    """Return (HTTP version, status) of an answer's first line (RFC 9112 section 4)."""
    version, _, rest = line.partition(b" ")
    code = rest[:3]
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit() or rest[3:4] not in (b" ", b"\r", b"\n", b""):
        raise ProtocolError(f"not an HTTP/1.x answer: {line[:40]!r}")
    return version, int(code)


def request_head(method: str, target: str, authority: str, headers: dict[str, str], length: int) -> bytes:
    """Return a request's line and headers as bytes; refuse what would not be one line each (RFC 9112 3)."""
    text = f"{method} {target} HTTP/1.1\r\nHost: {authority}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()) + f"Content-Length: {length}\r\n\r\n"
    if not (target + authority).isascii() or any(c <= " " or c == "\x7f" for c in target + authority):
        raise ProtocolError("the URL must be ASCII without spaces or control characters: percent-encode it "
                            "(and give an internationalised host in its xn-- form)")
    return text.encode("latin-1")
