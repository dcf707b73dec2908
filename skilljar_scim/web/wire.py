"""HTTP/1.1 on one client connection: whole requests in (h11, limits, deadlines), answers out.

A request reaches the app only once its request line, headers and whole body (chunked or
not) are in memory, so a slow or idle client holds a connection, never an app thread, and
never a lock. Everything refused here is answered with a SCIM error body (RFC 7644 §3.12).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import unquote_to_bytes

import h11

from skilljar_scim.scim.errors import error_body
from skilljar_scim.web.access import record

# The methods some endpoint serves; any other token is answered 501 (RFC 9110 §9.1: methods
# are case-sensitive, so "get" is an unknown method, not GET).
METHODS = frozenset({b"GET", b"HEAD", b"POST", b"PUT", b"PATCH", b"DELETE", b"OPTIONS"})
READ_SIZE = 65536
_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}


@dataclass(frozen=True)
class Limits:
    """The connection settings ([server] in the settings file), in seconds and bytes."""

    header_timeout: float
    body_timeout: float
    idle_timeout: float
    max_request_line: int
    max_header_bytes: int
    max_body_bytes: int


@dataclass
class Request:
    """One whole request, read and buffered."""

    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    http_version: bytes


@dataclass
class Answer:
    """The app's answer, ready to write."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class Refusal(Exception):
    """A request refused below the app: the SCIM error it gets, then the connection closes."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None, headers: tuple = ()):
        super().__init__(detail)
        self.status, self.detail, self.scim_type, self.headers = status, detail, scim_type, headers


class ClientGone(Exception):
    """The client closed the connection, or went quiet between requests: close without a word."""


def refusal_bytes(refusal: Refusal) -> bytes:
    """Serialise a refusal as a complete HTTP/1.1 response that closes the connection."""
    body = json.dumps(error_body(refusal.status, refusal.detail, refusal.scim_type), separators=(",", ":")).encode()
    reason = HTTPStatus(refusal.status).phrase
    lines = [f"HTTP/1.1 {refusal.status} {reason}", "Content-Type: application/scim+json",
             f"Content-Length: {len(body)}", "Connection: close", *(f"{k}: {v}" for k, v in refusal.headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Wire:
    """One connection's HTTP/1.1 state: read the next whole request, write one answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limits: Limits):
        self.reader, self.writer, self.limits = reader, writer, limits
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
        self.busy = False  # a request has begun and is not yet answered (SIGTERM lets it finish)
        self.started = time.perf_counter()
        self._line_bytes = 0
        self._line_done = False
        self.method = self.path = "-"  # for the access log: never the query string

    async def next_request(self, first: bool) -> Request:
        """Read the next whole request; ClientGone when the client closes, or idles out between requests.

        The header timeout runs from the connection's start for its first request (a client
        that connects and sends nothing gets 408), from the first byte for later ones.
        """
        self._line_bytes, self._line_done, self.method, self.path = 0, False, "-", "-"
        header_deadline = self._now() + self.limits.header_timeout
        if not self.h11.trailing_data[0]:  # else a pipelined request is already buffered
            await self._first_byte(header_deadline if first else self._now() + self.limits.idle_timeout, first)
        self.busy, self.started = True, time.perf_counter()
        if not first:
            header_deadline = self._now() + self.limits.header_timeout
        head = await self._next_event(header_deadline, header=True)
        if isinstance(head, h11.ConnectionClosed):
            raise ClientGone()
        request = self._check_head(head)
        request.body = await self._body(request, self._now() + self.limits.body_timeout)
        return request

    async def _first_byte(self, deadline: float, first: bool) -> None:
        try:
            async with asyncio.timeout_at(deadline):
                data = await self.reader.read(READ_SIZE)
        except TimeoutError:
            if first:
                raise Refusal(408, "no request arrived within the server's header timeout") from None
            raise ClientGone() from None  # an idle keep-alive connection: close it quietly
        if not data:
            raise ClientGone()
        self._feed(data, header=True)

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def _next_event(self, deadline: float, header: bool):
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                if header:
                    self._check_line()  # an over-long request line is 414, not h11's 431
                raise _protocol_refusal(exc) from None
            if event is not h11.NEED_DATA:
                return event
            if header:
                self._check_line()
            data = await self._read(deadline, header)
            self._feed(data, header)

    async def _read(self, deadline: float, header: bool) -> bytes:
        try:
            async with asyncio.timeout_at(deadline):
                return await self.reader.read(READ_SIZE)
        except TimeoutError:
            what = "the request line and headers" if header else "the request body"
            raise Refusal(408, f"{what} did not arrive within the server's timeout") from None

    def _feed(self, data: bytes, header: bool) -> None:
        if header and not self._line_done:
            end = data.find(b"\n")
            self._line_bytes += len(data) if end < 0 else end
            self._line_done = end >= 0
        self.h11.receive_data(data)

    def _check_line(self) -> None:
        """Refuse a request line longer than max_request_line_bytes (RFC 9112 §3)."""
        if self._line_bytes > self.limits.max_request_line:
            raise Refusal(414, f"the request line is longer than {self.limits.max_request_line} bytes")

    def _check_head(self, event) -> Request:
        self._check_line()
        self.method = event.method.decode("latin-1")
        self.path = unquote_to_bytes(event.target.partition(b"?")[0]).decode("latin-1")  # as the app logs it
        if _head_size(event) > self.limits.max_header_bytes:  # h11 bounds only a head still arriving
            raise Refusal(431, f"the request line and headers are larger than {self.limits.max_header_bytes} bytes")
        if event.method not in METHODS:
            raise Refusal(501, "the request method is not implemented by this server")
        if event.http_version != b"1.1" and event.http_version != b"1.0":
            raise Refusal(505, "only HTTP/1.0 and HTTP/1.1 are served")
        length = _content_length(event.headers)
        if length is not None and length > self.limits.max_body_bytes:
            raise Refusal(413, f"the request body is larger than {self.limits.max_body_bytes} bytes")
        return Request(event.method, event.target, list(event.headers), b"", event.http_version)

    async def _body(self, request: Request, deadline: float) -> bytes:
        """Read the whole body, refusing it (413) the moment it passes the limit."""
        if self.h11.they_are_waiting_for_100_continue:
            await self._write(self.h11.send(h11.InformationalResponse(status_code=100, headers=[])))
        chunks, size = [], 0
        while True:
            event = await self._next_event(deadline, header=False)
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > self.limits.max_body_bytes:
                    raise Refusal(413, f"the request body is larger than {self.limits.max_body_bytes} bytes")
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            elif isinstance(event, h11.ConnectionClosed):
                raise ClientGone()

    async def answer(self, request: Request, answer: Answer, close: bool = False) -> bool:
        """Write the app's answer; return whether the connection stays open for another request."""
        headers = [(k, v) for k, v in answer.headers if k.lower() not in ("connection", "transfer-encoding")]
        if close:
            headers.append(("Connection", "close"))
        if not any(k.lower() == "content-length" for k, _ in headers) and answer.status not in (204, 304):
            headers.append(("Content-Length", str(len(answer.body))))
        reason = _REASONS.get(answer.status, b"")
        data = self.h11.send(h11.Response(status_code=answer.status, headers=headers, reason=reason))
        if answer.body and request.method != b"HEAD" and answer.status not in (204, 304):
            data += self.h11.send(h11.Data(data=answer.body))
        data += self.h11.send(h11.EndOfMessage())
        await self._write(data)
        self.busy = False
        if self.h11.our_state is not h11.DONE or self.h11.their_state is not h11.DONE:
            return False
        self.h11.start_next_cycle()
        return True

    async def refuse(self, refusal: Refusal) -> None:
        """Answer a refusal with a SCIM error body, log it, and leave the connection to be closed."""
        record(self.method, self.path, refusal.status, (time.perf_counter() - self.started) * 1000)
        try:
            await self._write(refusal_bytes(refusal))
        except (ConnectionError, TimeoutError):
            pass

    async def _write(self, data: bytes) -> None:
        """Write and drain, giving up on a client that does not read within the body timeout."""
        self.writer.write(data)
        async with asyncio.timeout(self.limits.body_timeout):
            await self.writer.drain()


def _content_length(headers) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value)  # h11 has checked it is digits, and the same in every copy
    return None


def _head_size(event: h11.Request) -> int:
    """Return about how many bytes the request line and headers took on the wire."""
    return len(event.method) + len(event.target) + 12 + sum(len(n) + len(v) + 4 for n, v in event.headers)


def _protocol_refusal(exc: h11.RemoteProtocolError) -> Refusal:
    """Map h11's refusal of malformed input to the SCIM error it gets (RFC 9112 §2.2, §3, §6)."""
    if exc.error_status_hint == 431:
        return Refusal(431, "the request line and headers are too large")
    if exc.error_status_hint == 501:
        return Refusal(501, "the request's Transfer-Encoding is not implemented; send chunked or Content-Length")
    return Refusal(400, "malformed HTTP request line, headers or chunked body")
