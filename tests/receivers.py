"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 that records what it is sent.

Loaded as a pytest plugin by tests/conftest.py (fixture `receiver`). Tell it how to answer
with `answers` (a queue of statuses, or "hang" to hold the request without answering);
when the queue is empty it answers `default`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int | None  # the status it got, None when the receiver hung up without answering

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """An HTTP/1.1 server in a thread; every POST is kept in `received`, in arrival order."""

    def __init__(self, default: int = 204):
        self.default = default
        self.delay = 0.0  # seconds to wait before each answer (a slow receiver)
        self.keep_alive = True  # False: close each connection after its answer without saying so (idle timeout)
        self.answers: deque = deque()
        self.received: list[Received] = []
        self.release = threading.Event()  # set it to let hung requests go (they then get no answer)
        self.together: threading.Barrier | None = None  # see gather()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                answer = receiver._next_answer()
                if answer == "hang":
                    receiver._keep(dict(self.headers), body, None)
                    receiver.release.wait(30)
                    self.close_connection = True
                    return
                receiver.release.wait(receiver.delay)
                answer = receiver._after_gathering(answer)
                receiver._keep(dict(self.headers), body, answer)
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.close_connection = not receiver.keep_alive

            def log_message(self, *args) -> None:
                pass

        return Handler

    def _next_answer(self):
        with self.lock:
            return self.answers.popleft() if self.answers else self.default

    def gather(self, count: int) -> None:
        """Hold each request until `count` are waiting at once, then answer them; 500 if they never are."""
        self.together = threading.Barrier(count)

    def _after_gathering(self, answer):
        if self.together is None:
            return answer
        try:
            self.together.wait(10)
            return answer
        except threading.BrokenBarrierError:  # fewer than `count` requests were ever in flight together
            return 500

    def _keep(self, headers: dict, body: bytes, answered: int | None) -> None:
        with self.lock:
            self.received.append(Received({k.lower(): v for k, v in headers.items()}, body, answered))

    def delivered(self) -> list[Received]:
        """Return the requests that were answered 2xx."""
        with self.lock:
            return [r for r in self.received if r.answered is not None and 200 <= r.answered < 300]

    def wait_for(self, check, seconds: float = 30) -> None:
        """Wait until check(self) is true; fail the test after `seconds` (a bound, not a verdict)."""
        deadline = time.monotonic() + seconds
        while not check(self):
            assert time.monotonic() < deadline, f"receiver still waiting after {seconds} s: {len(self.received)} requests"
            time.sleep(0.02)

    def start(self) -> "Receiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    """A receiver answering 204 to everything until told otherwise; stopped after the test."""
    made = Receiver().start()
    yield made
    made.stop()
