"""Crash safety: SIGKILL `scim serve` (master and workers) in the middle of a stream of writes.

After a restart on the same database every acknowledged write is there, no PATCH is
half-applied, and the database passes its integrity check.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
from dataclasses import dataclass, field

import pytest

from skilljar_scim.store import db as store_db

pytestmark = [pytest.mark.e2e, pytest.mark.sqlite]

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
WRITERS = 6


@dataclass
class Writer:
    """One client: its own group; creates users, adds each to the group, renames them, in order."""

    number: int
    group_id: str
    users: dict[str, str] = field(default_factory=dict)  # acknowledged creates: id -> userName
    members: list[str] = field(default_factory=list)  # acknowledged adds
    steps: dict[str, int] = field(default_factory=dict)  # acknowledged step per user
    error: str | None = None

    def run(self, server, token: str, stop: threading.Event) -> None:
        try:
            for index in range(10_000):
                if stop.is_set():
                    return
                self._one(server, token, index)
        except (urllib.error.URLError, OSError, http.client.HTTPException):
            return  # the server is gone: what was acknowledged is recorded
        except AssertionError as error:  # an answer that was not a success, before the kill
            self.error = str(error)

    def _one(self, server, token: str, index: int) -> None:
        name = f"w{self.number}-{index}@example.com"
        status, _, user = server.request("POST", "/Users", token, {"schemas": [USER_SCHEMA], "userName": name})
        assert status == 201, user
        self.users[user["id"]] = name
        # Two operations that must land together: the member, and the count it makes (externalId).
        ops = [{"op": "add", "path": "members", "value": [{"value": user["id"]}]},
               {"op": "replace", "path": "externalId", "value": str(len(self.members) + 1)}]
        status, headers, group = server.request("PATCH", f"/Groups/{self.group_id}", token, _patch(*ops))
        assert status == 204 and group is None and headers.get("ETag"), (status, group)
        self.members.append(user["id"])
        for step in (1, 2):  # three attributes that must always agree
            value = f"step {step}"
            ops = [{"op": "replace", "path": path, "value": value} for path in ("title", "displayName", "nickName")]
            status, _, body = server.request("PATCH", f"/Users/{user['id']}", token, _patch(*ops))
            assert status == 200, body
            self.steps[user["id"]] = step


def _patch(*operations: dict) -> dict:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def test_crash_sigkill_mid_stream_keeps_every_acknowledged_write(server) -> None:
    token = server.token()["token"]
    writers = []
    for number in range(WRITERS):
        body = {"schemas": [GROUP_SCHEMA], "displayName": f"Writers {number}", "externalId": "0"}
        status, _, group = server.request("POST", "/Groups", token, body)
        assert status == 201
        writers.append(Writer(number, group["id"]))
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(server, token, stop)) for w in writers]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while sum(len(w.members) for w in writers) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()  # SIGKILL to the master and every worker, with requests in flight
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert [w.error for w in writers if w.error] == []
    assert sum(len(w.members) for w in writers) >= 40, "the stream did not get going"

    with server.sqlite() as db:  # before anything else opens it: the crashed file, WAL and all
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    server.start()
    check = server.cli("--json", "db", "check")
    assert check.returncode == 0 and json.loads(check.stdout)["integrity"] == "ok", check.stdout + check.stderr
    for writer in writers:
        _assert_writer_survived(server, token, writer)


def _assert_writer_survived(server, token: str, writer: Writer) -> None:
    status, _, group = server.request("GET", f"/Groups/{writer.group_id}", token)
    assert status == 200
    members = [m["value"] for m in group.get("members", [])]
    assert set(writer.members) <= set(members), "an acknowledged member add is lost"
    assert len(members) - len(writer.members) <= 1, "more than the one in-flight PATCH landed"
    assert group["externalId"] == str(len(members)), "a group PATCH landed half-way"
    for user_id, name in writer.users.items():
        status, _, user = server.request("GET", f"/Users/{user_id}", token)
        assert status == 200 and user["userName"] == name, "an acknowledged create is lost"
        values = {user.get("title"), user.get("displayName"), user.get("nickName")}
        assert len(values) == 1, f"a user PATCH landed half-way: {values}"
        acknowledged = writer.steps.get(user_id, 0)
        assert values.pop() in {None if s == 0 else f"step {s}" for s in (acknowledged, acknowledged + 1)}


def test_crash_sqlite_commits_are_fsynced_before_they_are_acknowledged(tmp_path) -> None:
    database = store_db.open_database(f"sqlite:///{tmp_path / 's.db'}", create=True)
    try:
        assert database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
        # 2 = FULL: an acknowledged write survives a power cut too, not only a process crash.
        assert database.execute_sql("PRAGMA synchronous").fetchone()[0] == 2
    finally:
        database.close()
