"""Requests refused below Flask still get SCIM error bodies (RFC 7644 §3.12) from a real `scim serve`."""

from __future__ import annotations

import socket

import pytest

from servers import assert_raw_error, raw_exchange, read_reply

pytestmark = pytest.mark.e2e

LIMITS = {"server": {"max_body_bytes": 1000, "header_timeout": 1, "body_timeout": 1},
          "limits": {"max_bulk_payload_bytes": 1000}}
HEAD = b"Host: 127.0.0.1\r\nContent-Type: application/scim+json\r\n"


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """One server with small limits and one-second timeouts for every refusal below."""
    from servers import Server

    server = Server(tmp_path_factory.mktemp("refusals"), workers=1, threads=2, settings=LIMITS)
    server.start()
    yield server
    server.kill()


@pytest.mark.parametrize(("data", "status"), [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + HEAD + b"\r\n", 414),
    (b"GET /scim/v2/Users HTTP/1.1\r\n" + HEAD + b"X-Big: " + b"b" * 40000 + b"\r\n\r\n", 431),
    (b"GET /scim/v2/Users HTTP/1.1\r\n" + HEAD + b"".join(b"X-%d: v\r\n" % i for i in range(5000)) + b"\r\n", 431),
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /scim/v2/Users HTTP/1.1 extra\r\n" + HEAD + b"\r\n", 400),
    (b"G(T /scim/v2/Users HTTP/1.1\r\n" + HEAD + b"\r\n", 400),
    (b"get /scim/v2/Users HTTP/1.1\r\n" + HEAD + b"\r\n", 501),
    (b"BREW /scim/v2/Users HTTP/1.1\r\n" + HEAD + b"\r\n", 501),
    (b"GET /scim/v2/Users HTTP/2.0\r\n" + HEAD + b"\r\n", 505),
    (b"POST /scim/v2/Users HTTP/1.1\r\n" + HEAD + b"Content-Length: abc\r\n\r\n{}", 400),
    (b"POST /scim/v2/Users HTTP/1.1\r\n" + HEAD + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400),
    (b"POST /scim/v2/Users HTTP/1.1\r\n" + HEAD + b"Content-Length: 5000\r\n\r\n", 413),
    (b"POST /scim/v2/Bulk HTTP/1.1\r\n" + HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
     + b"".join(b"64\r\n" + b" " * 100 + b"\r\n" for _ in range(11)) + b"0\r\n\r\n", 413),
    (b"POST /scim/v2/Users HTTP/1.1\r\n" + HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"POST /scim/v2/Users HTTP/1.1\r\n" + HEAD + b"Transfer-Encoding: gzip\r\n\r\n", 501),
])
def test_serve_refusal_below_app_is_scim_error(small, data: bytes, status: int) -> None:
    headers = assert_raw_error(raw_exchange(small.port, data), status)
    assert headers["connection"] == "close"


def test_serve_chunked_body_over_limit_refused_before_it_ends(small) -> None:
    """413 arrives as soon as the limit is passed, while the client could still be sending."""
    with socket.create_connection(("127.0.0.1", small.port), timeout=30) as sock:
        sock.sendall(b"POST /scim/v2/Users HTTP/1.1\r\n" + HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
                     + b"3e8\r\n" + b" " * 1000 + b"\r\n" + b"1\r\n \r\n")  # 1001 bytes, no last chunk
        assert_raw_error(read_reply(sock), 413)


def test_serve_chunked_body_within_limit_reaches_app(small) -> None:
    reply = raw_exchange(small.port, b"POST /scim/v2/Users HTTP/1.1\r\n" + HEAD + b"Connection: close\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    assert_raw_error(reply, 401)  # the app saw it: it wants a token


@pytest.mark.parametrize("data", [
    b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n",  # headers never finish
    b"",  # connects, sends nothing
    b"POST /scim/v2/Users HTTP/1.1\r\n" + HEAD + b"Content-Length: 10\r\n\r\n{",  # body never finishes
])
def test_serve_request_timeout_is_408(small, data: bytes) -> None:
    assert_raw_error(raw_exchange(small.port, data), 408)


def test_serve_port_in_use_is_one_line_error(make_server) -> None:
    running = make_server()
    second = make_server("second", start=False)
    second.config.write_text(running.config.read_text())
    assert second.cli("init").returncode == 0
    result = second.cli("serve")
    assert result.returncode == 9, result.stderr
    assert result.stderr.strip() == f"Error: cannot listen on 127.0.0.1 port {running.port}: " \
                                    "the port is already in use by another program"
