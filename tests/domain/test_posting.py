"""domain/posting.py: webhook POSTs over kept-alive connections, against scripted receivers on real sockets."""

from __future__ import annotations

import base64
import contextlib
import select
import socket
import threading
import time

import pytest

from skilljar_scim.domain import delivery, posting


class Scripted:
    """A receiver on 127.0.0.1 that answers the Nth request of each connection with answers[N] (raw bytes).

    It reads each request's head and Content-Length body first; after the script of a
    connection is used up, it closes that connection. `connections` counts accepted ones.
    """

    def __init__(self, answers: list[bytes]):
        self.answers, self.connections, self.requests = answers, 0, []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.listener.getsockname()[1]

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn, conn.makefile("rb") as reader, contextlib.suppress(OSError):  # the client may hang up
                for answer in self.answers:
                    if not self._read_request(reader):
                        break
                    conn.sendall(answer)

    def _read_request(self, reader) -> bool:
        head = b""
        while (line := reader.readline()) not in (b"\r\n", b""):
            head += line
        if not head:
            return False
        length = next(int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length"))
        self.requests.append((head, reader.read(length)))
        return True

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def scripted():
    made = []

    def start(answers: list[bytes]) -> Scripted:
        made.append(Scripted(answers))
        return made[-1]

    yield start
    for server in made:
        server.close()


def _post_twice(server: Scripted) -> list[int]:
    connection = posting.Connection("http", "127.0.0.1", server.port, 5.0, None)
    head = posting.request_head("POST", "/hooks", f"127.0.0.1:{server.port}", {"webhook-id": "evt_1"}, 2)
    try:
        return [connection.post(head + b"{}") for _ in range(2)]
    finally:
        connection.close()


NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


@pytest.mark.parametrize("answer, status, connections", [
    (NO_CONTENT, 204, 1),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, 1),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n", 202, 1),
    (b"HTTP/1.1 500 Oops\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno", 500, 2),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 200, 2),
    (b"HTTP/1.0 204 No Content\r\n\r\n", 204, 2),
    (b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://elsewhere/\r\nContent-Length: 0\r\n\r\n", 307, 1),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + b"x" * 70000, 200, 2),
])
def test_post_reads_the_status_and_keeps_the_connection_only_when_the_answer_allows(scripted, answer, status,
                                                                                    connections):
    server = scripted([answer] * 2)
    assert _post_twice(server) == [status, status]
    assert server.connections == connections


def test_post_sends_one_well_formed_request(scripted):
    server = scripted([NO_CONTENT])
    connection = posting.Connection("http", "127.0.0.1", server.port, 5.0, None)
    head = posting.request_head("POST", "/hooks?a=1", "example.test:8443", {"webhook-id": "evt_1"}, 7)
    assert connection.post(head + b'{"a":1}') == 204
    connection.close()
    [(got, body)] = server.requests
    assert got.split(b"\r\n") == [b"POST /hooks?a=1 HTTP/1.1", b"Host: example.test:8443", b"webhook-id: evt_1",
                                  b"Content-Length: 7", b""]
    assert body == b'{"a":1}'


def test_post_sends_again_once_when_a_kept_connection_was_closed_unanswered(scripted):
    # The receiver closes each connection after one answer without saying so (an idle timeout).
    server = scripted([NO_CONTENT])
    assert _post_twice(server) == [204, 204]
    assert (server.connections, len(server.requests)) == (2, 2)


def test_post_on_a_new_connection_closed_unanswered_is_an_error(scripted):
    server = scripted([])
    connection = posting.Connection("http", "127.0.0.1", server.port, 5.0, None)
    head = posting.request_head("POST", "/", "127.0.0.1", {}, 0)
    with pytest.raises(ConnectionError, match="without answering"):
        connection.post(head)


@pytest.mark.parametrize("answer", [b"hello there\r\n\r\n", b"HTTP/2 200\r\n\r\n", b"HTTP/1.1 2000 OK\r\n\r\n",
                                    b"HTTP/1.1 200 OK\r\nX: " + b"y" * 9000 + b"\r\n\r\n"])
def test_post_refuses_what_is_not_an_http1_answer(scripted, answer):
    server = scripted([answer])
    connection = posting.Connection("http", "127.0.0.1", server.port, 5.0, None)
    with pytest.raises(posting.ProtocolError):
        connection.post(posting.request_head("POST", "/", "127.0.0.1", {}, 0))
    connection.close()


@pytest.mark.parametrize("target, authority", [("/a b", "h"), ("/a\r\nX: y", "h"), ("/é", "h"), ("/", "hé")])
def test_request_head_refuses_what_is_not_one_ascii_line(target, authority):
    with pytest.raises(posting.ProtocolError, match="ASCII"):
        posting.request_head("POST", target, authority, {}, 0)


class Trickler:
    """A receiver on 127.0.0.1 that reads one request, then sends `answer` one byte per `interval`.

    Each wait between bytes also watches the connection, so `closed` records that the client hung
    up (its read of end-of-file); `cap` bytes bound the receiver if the client never does.
    """

    def __init__(self, answer: bytes, interval: float, cap: int = 400):
        self.answer, self.interval, self.cap = answer, interval, cap
        self.closed, self.sent = threading.Event(), 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError), self.listener.accept()[0] as conn:
            with conn.makefile("rb") as reader:
                Scripted._read_request(Scripted([]), reader)
            for byte in self.answer[:self.cap]:
                conn.sendall(bytes([byte]))
                self.sent += 1
                if select.select([conn], [], [], self.interval)[0] and conn.recv(1) == b"":
                    self.closed.set()
                    return


TRICKLED = [b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 8000 + b"\r\n\r\n",  # the head, within MAX_LINE
            b"HTTP/1.1 200 OK\r\nContent-Length: 9000\r\n\r\n" + b"b" * 9000]  # the body, within MAX_BODY


@pytest.mark.parametrize("answer", TRICKLED, ids=["head", "body"])
def test_post_timeout_bounds_the_whole_exchange_not_each_read(answer):
    # One byte per quarter timeout: every read is well within the timeout, the exchange never is.
    receiver = Trickler(answer, interval=0.05)
    port = receiver.listener.getsockname()[1]
    connection = posting.Connection("http", "127.0.0.1", port, 0.2, None)
    with pytest.raises(TimeoutError):
        connection.post(posting.request_head("POST", "/", "127.0.0.1", {}, 0))
    assert connection.sock is None
    assert receiver.closed.wait(10)  # safety net only: the receiver saw the hang-up
    assert receiver.sent < receiver.cap
    receiver.listener.close()


def test_sender_reports_a_trickling_receiver_as_timed_out():
    receiver = Trickler(TRICKLED[1], interval=0.05)
    sender = delivery.Sender(timeout_ms=200)
    item = delivery.Claimed(1, "ep_1", f"http://127.0.0.1:{receiver.listener.getsockname()[1]}/hook", "evt_1",
                            b"{}", ("whsec_" + base64.b64encode(b"k" * 32).decode(),))
    outcome = sender.send(item)
    assert (outcome.status, outcome.error) == (None, "timed out after 0.2 s")
    assert receiver.closed.wait(10)
    sender.close()
    receiver.listener.close()


def test_resolve_waits_for_the_system_resolver_only_until_the_deadline(monkeypatch):
    # A resolver that never answers (until released): getaddrinfo itself takes no timeout.
    release = threading.Event()
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *args, **kwargs: real(host, *args, **kwargs)
                        if host == "127.0.0.1" else (release.wait(10), [])[1])
    try:
        with pytest.raises(TimeoutError, match="resolving hooks.example.test"):
            posting.resolve("hooks.example.test", 443, time.monotonic() + 0.1)
    finally:
        release.set()
    assert posting.resolve("127.0.0.1", 80, time.monotonic() + 5)[0][4] == ("127.0.0.1", 80)
