"""Real `scim serve` processes for end-to-end tests: start, talk HTTP, stop, SIGKILL, restart.

Loaded as a pytest plugin by tests/conftest.py; tests/e2e and tests/hardening pick the
worker and thread counts of their `server` fixture.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
from contextlib import closing
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`scim serve` (2 workers x 4 threads by default) in its own session, on its own files."""

    def __init__(self, folder: Path, workers: int = 2, threads: int = 4, database_url: str = "sqlite:///scim.db",
                 settings: dict[str, dict] | None = None):
        self.folder = folder
        self.database_url = database_url
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config = folder / "scim.toml"
        self.db_path = folder / "scim.db"
        self.key_path = folder / "scim.key"
        sections = {"server": {"port": self.port, "workers": workers, "threads": threads, "graceful_timeout": 10}}
        for section, values in (settings or {}).items():
            sections.setdefault(section, {}).update(values)
        self.config.write_text(
            f'[database]\nurl = "{database_url}"\n[security]\nsecret_key_file = "scim.key"\n'
            + "".join(f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
                      for name, values in sections.items())
        )
        self.scheme = "https" if sections["server"].get("certfile") else "http"
        self.log = folder / "serve.log"
        self.process: subprocess.Popen | None = None
        self.base = f"{self.scheme}://127.0.0.1:{self.port}/scim/v2"
        self.ssl_context = None  # set by a TLS test: how this test's client trusts the server

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "skilljar_scim", "--config", str(self.config), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=self.folder)

    def start(self) -> None:
        command = [sys.executable, "-m", "skilljar_scim", "--config", str(self.config), "serve"]
        with open(self.log, "ab") as log:
            # Its own session, so kill() can reach the gunicorn master and every worker at once.
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder,
                                            start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"scim serve exited: {self.log.read_text()}")
            try:
                urllib.request.urlopen(f"{self.scheme}://127.0.0.1:{self.port}/healthz", timeout=1,
                                       context=self.ssl_context).read()
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        self.kill()
        raise RuntimeError("scim serve did not come up in 30 s")

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def kill(self) -> None:
        """SIGKILL the master and its workers (the whole process group), like a power cut for the process."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        self._wait_group_gone(self.process.pid)

    @staticmethod
    def _wait_group_gone(pgid: int) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def request(self, method: str, path: str, token: str, body=None, headers: dict | None = None,
                timeout: float = 30) -> tuple[int, dict, object]:
        """Send one request; return status, headers and the parsed body (raw text if not JSON)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", "application/scim+json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self.ssl_context) as response:
                return response.status, dict(response.headers), _parse(response.read())
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), _parse(error.read())

    def token(self, name: str = "hardening") -> dict:
        result = self.cli("token", "generate", "--name", name, "--expires", "1d", "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def sqlite(self) -> sqlite3.Connection:
        """Open the server's database file directly (read what the store really holds)."""
        return sqlite3.connect(self.db_path, timeout=30)

    def query(self, sql: str, *params) -> list[tuple]:
        """Run one SELECT on the server's database, SQLite or PostgreSQL, bypassing the app."""
        if not self.database_url.startswith("postgresql"):
            with closing(self.sqlite()) as db:
                return db.execute(sql, params).fetchall()
        import psycopg2

        with closing(psycopg2.connect(self.database_url)) as db, db.cursor() as cursor:
            cursor.execute(sql.replace("?", "%s"), params)
            return cursor.fetchall()


def raw_exchange(port: int, data: bytes, timeout: float = 30) -> bytes:
    """Send raw bytes on a fresh connection and return everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_reply(sock)


def read_reply(sock: socket.socket) -> bytes:
    """Read one answer whole: to its Content-Length, or until the server closes (timeout: a hang guard)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                   if line.lower().startswith(b"content-length:")), None)
    while length is not None and len(body) < length and (chunk := sock.recv(65536)):
        body += chunk
    return head + b"\r\n\r\n" + body


def split_reply(reply: bytes) -> tuple[int, dict[str, str], object]:
    """Parse an HTTP/1.1 answer: status, headers (lower-case names), parsed body."""
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), reply[:200]
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, _parse(body)


def assert_raw_error(reply: bytes, status: int, scim_type: str | None = None) -> dict:
    """Assert a raw answer is a SCIM error body (RFC 7644 §3.12) with this status and scimType."""
    code, headers, body = split_reply(reply)
    assert code == status, reply[:300]
    assert headers["content-type"].startswith("application/scim+json"), headers
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"], body
    assert body["status"] == str(status) and body.get("scimType") == scim_type and body.get("detail"), body
    return headers


def _parse(raw: bytes) -> object:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


@pytest.fixture
def clean_env():
    backup = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SKILLJAR_SCIM_")}
    yield
    os.environ.update(backup)


@pytest.fixture
def make_server(tmp_path: Path, clean_env):
    """Build servers on demand (each in its own folder, on SQLite); every one is stopped at the end."""
    made: list[Server] = []

    def factory(name: str = "server", start: bool = True, **kwargs) -> Server:
        server = Server(tmp_path / name, **kwargs)
        made.append(server)
        if start:
            server.start()
        return server

    yield factory
    for server in made:
        if server.process is not None and server.process.poll() is None:
            server.kill()
