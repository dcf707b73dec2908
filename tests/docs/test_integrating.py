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
