"""The access log: request data never forges a line; text and JSON formats (issue 11 rule 8)."""

from __future__ import annotations

import json

import pytest

from servers import raw_exchange
from skilljar_scim.web.access import escape

pytestmark = pytest.mark.e2e

FORGED = "2026-01-01 00:00:00,000 INFO skilljar_scim.access GET /admin 200 1.0ms token=root"
# CR LF, ESC, NUL, DEL, a C1 control (NEL), and a backslash, percent-encoded in the path.
HOSTILE = "/scim/v2/Users%0D%0A" + FORGED.replace(" ", "%20") + "%1B[31m%00%7F%C2%85%5Cx"


@pytest.mark.parametrize(("text", "expected"), [
    ("a\r\nb", "a\\x0d\\x0ab"),
    ("\x1b[2J", "\\x1b[2J"),
    ("\x00\x7f\x85\x9f", "\\x00\\x7f\\x85\\x9f"),
    ("\u2028\u2029", "\\x2028\\x2029"),
    ("back\\slash", "back\\\\slash"),
    ("plain /Users/é", "plain /Users/é"),
])
def test_access_escape_writes_controls_as_escapes(text: str, expected: str) -> None:
    assert escape(text) == expected


def test_text_log_escapes_data_in_any_message() -> None:
    """Not only access lines: a warning quoting data (a group name, a receiver's answer) stays one line."""
    import logging

    from skilljar_scim.web.access import TextFormatter, record

    hostile = "Team\r\n" + FORGED + "\x1b[31m"
    warning = logging.LogRecord("skilljar_scim.roles", logging.WARNING, __file__, 1, "mapping %s", (hostile,), None)
    line = TextFormatter().format(warning)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and line.endswith("\\x1b[31m")
    seen: list[logging.LogRecord] = []
    handler = type("Keep", (logging.Handler,), {"emit": lambda self, r: seen.append(r)})()
    access, level = logging.getLogger("skilljar_scim.access"), logging.getLogger("skilljar_scim.access").level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        record("GET", "/Users\\x", 200, 1.0)
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    assert TextFormatter().format(seen[0]).endswith("GET /Users\\\\x 200 1.0ms token=-")  # escaped once, not twice


def _hostile_requests(server) -> None:
    raw_exchange(server.port, f"GET {HOSTILE} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    raw_exchange(server.port, f"BREW {HOSTILE} HTTP/1.1\r\nHost: x\r\n\r\n".encode())  # refused below the app


def test_serve_access_log_text_never_forged(make_server) -> None:
    server = make_server(workers=1, threads=1)
    _hostile_requests(server)
    server.stop()
    lines = server.log.read_text(encoding="utf-8", errors="strict").splitlines()
    assert not any(line.startswith(FORGED[:10]) for line in lines)
    logged = [line for line in lines if "skilljar_scim.access" in line and "/scim/v2/Users" in line]
    assert len(logged) == 2 and all("\\x0d\\x0a2026-01-01" in line for line in logged), logged
    assert all(ch >= " " for line in lines for ch in line)


def test_serve_access_log_json_one_object_per_line(make_server) -> None:
    server = make_server(workers=1, threads=1, settings={"server": {"log_format": "json"}}, start=False)
    assert server.cli("init").returncode == 0  # so that `scim serve` itself prints only log lines
    server.start()
    token = server.token("Okta Production")["token"]
    assert server.request("GET", "/Users?filter=userName%20eq%20%22secret%40example.com%22", token)[0] == 200
    _hostile_requests(server)
    server.stop()
    text = server.log.read_text()
    entries = [json.loads(line) for line in text.splitlines()]  # every line, gunicorn's own too
    access = [e for e in entries if e["logger"] == "skilljar_scim.access" and e["path"] != "/healthz"]
    assert {"method": "GET", "path": "/scim/v2/Users", "status": "200", "token": "Okta Production"}.items() \
        <= access[0].items()
    assert [(e["method"], e["status"]) for e in access[1:]] == [("GET", "404"), ("BREW", "501")]
    assert all(e["path"].startswith("/scim/v2/Users\r\n2026-01-01") and "\x1b" in e["path"] for e in access[1:])
    assert token not in text and "secret@example.com" not in text and "filter" not in text
