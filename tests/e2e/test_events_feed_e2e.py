"""The events API and token scopes against a real `scim serve`: paging across retention, 403s by scope."""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from contextlib import closing
from datetime import datetime, timedelta, timezone

import pytest

pytestmark = pytest.mark.e2e

USER = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}


def _events(server, token: str, query: str = "") -> tuple[int, dict, object]:
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/api/v1/events{query}")
    request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def _walk(server, token: str, limit: int) -> list[dict]:
    items, after = [], ""
    for _ in range(50):
        status, _, body = _events(server, token, f"?limit={limit}" + (f"&after={after}" if after else ""))
        assert status == 200, body
        items += body["data"]
        after = body["next"]
        if not body["has_more"]:
            return items
    raise AssertionError("has_more never became false")


def _backdate(server, through_row_id: int, days: int) -> None:
    """Move events up to a row id `days` into the past: the test's clock, not the wall's, decides retention."""
    then = (datetime.now(timezone.utc) - timedelta(days=days)).replace(tzinfo=None, microsecond=0)
    sql = 'UPDATE "event" SET "at" = ? WHERE "id" <= ?'
    if not server.database_url.startswith("postgresql"):
        with closing(sqlite3.connect(server.db_path, timeout=30)) as db, db:
            db.execute(sql, (then.isoformat(sep=" "), through_row_id))
        return
    import psycopg2

    with closing(psycopg2.connect(server.database_url)) as db, db, db.cursor() as cursor:
        cursor.execute(sql.replace("?", "%s"), (then, through_row_id))


def _error(status: int, body: dict, expected: int) -> str:
    assert status == expected, body
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and body["status"] == str(expected)
    return body["detail"]


def test_events_feed_e2e_scopes_refuse_the_wrong_token(server) -> None:
    provision = server.token("Okta")["token"]
    read = json.loads(server.cli("token", "generate", "--name", "Dashboard", "--expires", "1d", "--scope", "read",
                                 "--json").stdout)["token"]
    status, _, body = server.request("POST", "/Users", read, {**USER, "userName": "x@example.com"})
    assert "read token" in _error(status, body, 403) and "scimType" not in body
    status, _, created = server.request("POST", "/Users", provision, {**USER, "userName": "y@example.com"})
    assert status == 201
    assert server.request("GET", f"/Users/{created['id']}", read)[0] == 200
    status, _, body = server.request("DELETE", f"/Users/{created['id']}", read)
    _error(status, body, 403)
    status, _, body = _events(server, provision)
    assert "provision token" in _error(status, body, 403)
    status, headers, body = _events(server, read)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert [i["data"]["userName"] for i in body["data"]] == ["y@example.com"]


def test_events_feed_e2e_cursor_paging_across_retention(server) -> None:
    provision = server.token("Okta")["token"]
    read = json.loads(server.cli("token", "generate", "--name", "Dashboard", "--expires", "1d", "--scope", "read",
                                 "--json").stdout)["token"]
    for n in range(4):
        assert server.request("POST", "/Users", provision, {**USER, "userName": f"old{n}@example.com"})[0] == 201
    first = _walk(server, read, limit=3)
    assert [i["data"]["userName"] for i in first] == [f"old{n}@example.com" for n in range(4)]
    status, _, early = _events(server, read, "?limit=1")
    cursor = early["next"]  # a consumer that read one event, then went away for 100 days
    old_rows = [row for (row,) in server.query('SELECT "id" FROM "event" ORDER BY "id"')]
    _backdate(server, old_rows[-2], days=100)  # retention is 90 days: all but the last old event expire
    for n in range(2):
        assert server.request("POST", "/Users", provision, {**USER, "userName": f"new{n}@example.com"})[0] == 201
    kept = [i["data"]["userName"] for i in _walk(server, read, limit=1)]
    assert kept == ["old3@example.com", "new0@example.com", "new1@example.com"]
    status, _, body = _events(server, read, f"?after={cursor}")
    assert "SCIM" in _error(status, body, 410)
    # A server prunes when it starts (then every few minutes); the deleted range still answers 410.
    server.stop()
    server.start()
    assert server.query('SELECT COUNT(*) FROM "event" WHERE "id" <= ?', old_rows[-2]) == [(0,)]
    status, _, body = _events(server, read, f"?after={cursor}")
    _error(status, body, 410)
    assert [i["data"]["userName"] for i in _walk(server, read, limit=2)] == kept
