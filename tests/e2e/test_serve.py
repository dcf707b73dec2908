"""`scim serve` for real: HTTP over a socket, tokens from the CLI, clean shutdown."""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest

from servers import assert_raw_error, raw_exchange

pytestmark = pytest.mark.e2e

USER = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "e2e@example.com",
        "name": {"givenName": "Edna", "familyName": "Two"}, "password": "Pa55word!"}


def test_serve_initialises_and_provisions_over_http(server) -> None:
    token = server.token()["token"]
    status, headers, created = server.request("POST", "/Users", token, USER)
    assert status == 201 and headers["Location"].endswith(created["id"])
    assert headers["Content-Type"].startswith("application/scim+json")
    status, _, found = server.request("GET", '/Users?filter=userName%20eq%20%22E2E@example.com%22', token)
    assert status == 200 and found["totalResults"] == 1 and found["Resources"][0]["id"] == created["id"]
    status, _, body = server.request("DELETE", f"/Users/{created['id']}", token)
    assert status == 204 and body is None


def test_serve_revoked_token_refused_on_next_request(server) -> None:
    made = server.token()
    assert server.request("GET", "/Users", made["token"])[0] == 200
    assert server.cli("token", "revoke", made["id"], "--yes").returncode == 0
    status, headers, body = server.request("GET", "/Users", made["token"])
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert body["status"] == "401" and "revoked" in body["detail"]


def test_serve_access_log_has_token_name_never_value_or_password(server) -> None:
    made = server.token("Okta Production")
    server.request("POST", "/Users", made["token"], USER)
    server.stop()
    log = server.log.read_text()
    assert "POST /scim/v2/Users 201" in log and "token=Okta Production" in log
    assert made["token"] not in log and made["token"].split(".")[1] not in log
    assert USER["password"] not in log


def test_serve_sigterm_finishes_request_in_flight(server) -> None:
    token = server.token()["token"]
    body = json.dumps(USER).encode()
    head = (f"POST /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/scim+json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(head.encode() + body[:10])
        time.sleep(0.5)  # the request is now in flight: headers read, body pending
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        sock.sendall(body[10:])
        reply = _read_all(sock)
    assert reply.startswith(b"HTTP/1.1 201"), reply[:200]
    assert server.process.wait(timeout=30) == 0


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("authorization", [
    ["Token {t}"], ["Basic {t}"], ["Bearer\t{t}"], ["Bearer {t} {t}"],
    ["Bearer {t}", "Bearer {t}"], ["Bearer {t}", "Basic dXNlcjpwYXNz"],
])
def test_serve_valid_token_outside_the_bearer_grammar_is_401_on_the_wire(server, authorization) -> None:
    """RFC 6750 §2.1 over a real socket: other schemes, a tab, two words, two Authorization lines: all 401."""
    token = server.token()["token"]
    lines = "".join(f"Authorization: {value.format(t=token)}\r\n" for value in authorization)
    reply = raw_exchange(server.port, (f"GET /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\n{lines}"
                                       "Connection: close\r\n\r\n").encode())
    assert assert_raw_error(reply, 401)["www-authenticate"].startswith("Bearer realm=")
    assert server.request("GET", "/Users", token)[0] == 200  # the token itself is fine
