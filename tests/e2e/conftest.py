"""Start a real `scim serve` on a free port and talk HTTP to it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A `scim serve` subprocess with its own settings, database and key."""

    def __init__(self, folder: Path, database_url: str = "sqlite:///scim.db"):
        self.folder = folder
        self.port = free_port()
        self.config = folder / "scim.toml"
        self.config.write_text(
            f'[database]\nurl = "{database_url}"\n[security]\nsecret_key_file = "scim.key"\n'
            f'[server]\nport = {self.port}\nworkers = 1\nthreads = 4\ngraceful_timeout = 10\n'
        )
        self.log = folder / "serve.log"
        self.process: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{self.port}/scim/v2"

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "skilljar_scim", "--config", str(self.config), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=self.folder)

    def start(self) -> None:
        command = [sys.executable, "-m", "skilljar_scim", "--config", str(self.config), "serve"]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"scim serve exited: {self.log.read_text()}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1).read()
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        raise RuntimeError("scim serve did not come up in 30 s")

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def request(self, method: str, path: str, token: str, body=None) -> tuple[int, dict, dict | None]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", "application/scim+json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                return response.status, dict(response.headers), json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            return error.code, dict(error.headers), json.loads(raw) if raw else None

    def token(self, name: str = "e2e") -> dict:
        result = self.cli("token", "generate", "--name", name, "--expires", "1d", "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def server(tmp_path: Path, database_url: str):
    env_backup = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SKILLJAR_SCIM_")}
    running = Server(tmp_path, database_url)
    running.start()
    yield running
    running.stop()
    os.environ.update(env_backup)
