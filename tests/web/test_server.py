"""The serving process's settings: one worker per core by default, listening errors in one line (issue 11)."""

from __future__ import annotations

import os
import socket
from dataclasses import replace

import pytest

from skilljar_scim.base.config import ServerSettings
from skilljar_scim.base.errors import ExitCode, ListenError
from skilljar_scim.web import server as web_server


def test_server_workers_default_one_per_core() -> None:
    settings = ServerSettings()
    assert settings.workers == 0 and settings.worker_count == os.cpu_count()
    assert web_server.gunicorn_options(settings)["workers"] == os.cpu_count()
    assert web_server.gunicorn_options(replace(settings, workers=3))["workers"] == 3


def test_server_listen_port_in_use_is_one_line_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ListenError) as caught:
            web_server.listen(ServerSettings(host="127.0.0.1", port=port))
    assert caught.value.exit_code == ExitCode.LISTEN == 9
    assert str(caught.value) == f"cannot listen on 127.0.0.1 port {port}: the port is already in use by another program"


def test_server_listen_foreign_address_is_one_line_error() -> None:
    with pytest.raises(ListenError, match="192.0.2.1 is not an address of this machine"):
        web_server.listen(ServerSettings(host="192.0.2.1", port=0))


def test_server_listen_gives_gunicorn_the_bound_socket() -> None:
    listener = web_server.listen(ServerSettings(host="127.0.0.1", port=0))
    with listener:
        assert web_server.gunicorn_options(ServerSettings(), listener)["bind"] == f"fd://{listener.fileno()}"
