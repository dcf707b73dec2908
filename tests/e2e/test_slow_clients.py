"""Slow, idle and trickling clients cost a connection, never a worker, and never the write lock (issue 11)."""

from __future__ import annotations

import json
import socket
from contextlib import ExitStack

import pytest

from servers import assert_raw_error, raw_exchange, read_reply, split_reply

pytestmark = pytest.mark.e2e

USER = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "fast@example.com"}
HANG_GUARD_S = 30  # a socket timeout only so that a broken server fails the test instead of hanging it


def _connect(stack: ExitStack, port: int) -> socket.socket:
    sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_S))
    return sock


def _unanswered(sock: socket.socket) -> bool:
    """Say whether the server has neither answered nor closed this connection (a non-blocking peek)."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b"x"  # b"" would be a close, data an answer
    except BlockingIOError:
        return True
    finally:
        sock.settimeout(HANG_GUARD_S)


def _slow_clients(stack: ExitStack, port: int, token: str) -> list[socket.socket]:
    """500 idle connections, 30 trickling their headers, 30 trickling a create's body."""
    slow = [_connect(stack, port) for _ in range(500)]
    for _ in range(30):
        sock = _connect(stack, port)
        sock.sendall(b"GET /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
        slow.append(sock)
    for number in range(30):
        sock = _connect(stack, port)
        body = _slow_body(number)
        sock.sendall(f"POST /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                     f"Content-Type: application/scim+json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body[:5])
        slow.append(sock)
    return slow


def _slow_body(number: int) -> bytes:
    return json.dumps({**USER, "userName": f"slow{number:02d}@example.com"}).encode()


def test_serve_answers_reads_and_writes_while_slow_clients_hold_connections(make_server, database_url) -> None:
    server = make_server(database_url=database_url, workers=2, threads=2)
    token = server.token()["token"]
    with ExitStack() as stack:
        slow = _slow_clients(stack, server.port, token)
        status, _, created = server.request("POST", "/Users", token, USER, timeout=HANG_GUARD_S)
        assert status == 201, created
        status, _, found = server.request("GET", "/Users?filter=userName%20eq%20%22fast@example.com%22", token,
                                          timeout=HANG_GUARD_S)
        assert status == 200 and found["totalResults"] == 1
        # ...and every slow client is still connected, unanswered: it cost a connection, nothing more.
        assert all(_unanswered(sock) for sock in slow)
        trickled = slow[-1]  # a trickling write, finished now, is served like any other
        trickled.sendall(_slow_body(29)[5:])
        status, _, created = split_reply(read_reply(trickled))
        assert status == 201 and created["userName"] == "slow29@example.com"


def test_serve_trickled_write_is_served_once_complete(make_server, database_url) -> None:
    server = make_server(database_url=database_url, workers=1, threads=1)
    token = server.token()["token"]
    body = json.dumps({**USER, "userName": "trickle@example.com"}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as slow:
        slow.sendall(f"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: "
                     f"application/scim+json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body[:5])
        # With the only app thread, another client's write goes through while this body is pending.
        assert server.request("POST", "/Users", token, USER, timeout=HANG_GUARD_S)[0] == 201
        slow.sendall(body[5:])
        status, _, created = split_reply(read_reply(slow))
    assert status == 201 and created["userName"] == "trickle@example.com"


def test_serve_connection_limit_answers_503_with_retry_after(make_server) -> None:
    server = make_server(workers=1, threads=1, settings={"server": {"max_connections": 3}})
    with ExitStack() as stack:
        held = [_connect(stack, server.port) for _ in range(3)]
        headers = assert_raw_error(raw_exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"), 503)
        assert headers["retry-after"] == "1"
        assert all(_unanswered(sock) for sock in held)
    server.stop()
    assert "skilljar_scim.access - - 503" in server.log.read_text()


def test_serve_idle_keepalive_connection_closed_quietly(make_server) -> None:
    server = make_server(workers=1, threads=1, settings={"server": {"idle_timeout": 1}})
    with socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert split_reply(read_reply(sock))[0] == 200
        assert sock.recv(100) == b""  # the idle timeout closes it without an answer to no request
