"""docs/integrating.md: its Flask receiver, taken from the page as written, verifies and applies deliveries."""

from __future__ import annotations

import json
import re
import runpy
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from skilljar_scim.domain import delivery, events, users, webhooks, worker

PAGE = Path(__file__).resolve().parents[2] / "docs" / "integrating.md"


def _receiver_source() -> str:
    """Return the first python block under the page's "A receiver" heading."""
    section = PAGE.read_text().split("## A receiver", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def doc_receiver(store, keys, tmp_path, monkeypatch):
    """Run the page's receiver on a real port; return (endpoint, secret, base url, its database)."""
    script = tmp_path / "receiver.py"
    script.write_text(_receiver_source())
    server = make_server("127.0.0.1", 0, lambda *a: app(*a), threaded=True)
    url = f"http://127.0.0.1:{server.server_port}/scim-events"
    added = webhooks.add(keys, url)
    monkeypatch.setenv("SCIM_WEBHOOK_SECRET", added.secret)
    monkeypatch.setenv("RECEIVER_DB", str(tmp_path / "dashboard.db"))
    app = runpy.run_path(str(script))["app"]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield added, url, tmp_path / "dashboard.db"
    server.shutdown()


def _stored(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT id, event_id FROM users").fetchall())


def test_integrating_receiver_is_about_thirty_lines() -> None:
    assert len(_receiver_source().strip().splitlines()) <= 35


def test_integrating_receiver_applies_signed_deliveries_once(doc_receiver, settings) -> None:
    added, url, database = doc_receiver
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "doc@example.com"}
    user_id = users.create(events.CLI, body).user.id
    users.delete(events.CLI, user_id)
    tally = worker.drain(settings)
    assert tally == {"sent": 2, "delivered": 2, "failed": 0}
    newest = events.feed_item(events.query(user_id=user_id, limit=1)[0])["id"]
    assert _stored(database) == {user_id: newest}
    # An older event sent again (a resend, a late retry) changes nothing.
    first = events.query(user_id=user_id, action="user.created")[0]
    webhooks.resend(first.id)
    assert worker.drain(settings)["delivered"] == 1
    assert _stored(database) == {user_id: newest}


def test_integrating_receiver_refuses_a_bad_signature(doc_receiver) -> None:
    _, url, database = doc_receiver
    item = {"id": "evt_1", "type": "user.created", "created_at": "2026-01-01T00:00:00Z", "data": {"id": "u1"}}
    body = json.dumps(item).encode()
    claimed = delivery.Claimed(1, "ep", url, "evt_1", body, (webhooks.new_secret(),))
    request = urllib.request.Request(url, data=body, headers=delivery.headers_for(claimed, int(time.time())))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    assert _stored(database) == {}


class _CaughtUp(Exception):
    """Raised by the poller's sleep: it has read everything there is."""


def _poller(tmp_path, monkeypatch, base: str, token: str):
    """Load the page's poller as written, with its sleep ending the loop; return (poll_forever, cursor file)."""
    section = PAGE.read_text().split("## A poller on the events API", 1)[1]
    script = tmp_path / "poller.py"
    script.write_text(re.search(r"```python\n(.*?)```", section, re.S).group(1))
    cursor = tmp_path / "events.cursor"
    monkeypatch.setenv("SCIM_BASE", base)
    monkeypatch.setenv("SCIM_READ_TOKEN", token)
    monkeypatch.setenv("SCIM_CURSOR_FILE", str(cursor))
    poll_forever = runpy.run_path(str(script))["poll_forever"]

    def caught_up(seconds):
        raise _CaughtUp()

    poll_forever.__globals__["time"] = type("Clock", (), {"sleep": staticmethod(caught_up)})
    return poll_forever, cursor


@pytest.fixture
def events_server(app, keys):
    """The app on a real port; return its base URL and a read token."""
    from skilljar_scim.domain import tokens

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", tokens.generate(keys, "Dashboard", None, scope="read").value
    server.shutdown()


def _poll(poll_forever, resync=lambda: None) -> list[dict]:
    seen: list[dict] = []
    with pytest.raises(_CaughtUp):
        poll_forever(seen.append, resync)
    return seen


def test_integrating_poller_reads_the_feed_and_resumes_from_its_cursor(events_server, tmp_path, monkeypatch) -> None:
    poll_forever, cursor = _poller(tmp_path, monkeypatch, *events_server)
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "poll@example.com"}
    user_id = users.create(events.CLI, body).user.id
    first = _poll(poll_forever)
    assert [e["type"] for e in first] == ["user.created"] and first[0]["data"]["id"] == user_id
    assert cursor.read_text() == first[-1]["id"]
    users.delete(events.CLI, user_id)
    again = _poll(poll_forever)  # a restart: the cursor file says where it stopped
    assert [e["type"] for e in again] == ["user.deprovisioned"] and again[0]["id"] > first[0]["id"]


def test_integrating_poller_resyncs_after_410_and_reads_the_whole_feed(events_server, tmp_path, monkeypatch) -> None:
    poll_forever, cursor = _poller(tmp_path, monkeypatch, *events_server)
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "gap@example.com"}
    users.create(events.CLI, body)
    cursor.write_text(events.event_id(10**9))  # ahead of every event (a restored backup): 410 Gone
    resyncs: list[int] = []

    def resync() -> None:
        resyncs.append(1)
        assert len(resyncs) == 1, "410 again after a resync: the poller kept its stale cursor"

    seen = _poll(poll_forever, resync)
    assert resyncs == [1] and [e["type"] for e in seen] == ["user.created"]
    assert cursor.read_text() == seen[-1]["id"]
