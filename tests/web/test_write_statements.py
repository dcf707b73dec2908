"""A user write runs only the statements it needs (issue 11 rule 6: creates under the write lock).

Counted through sqlite3's trace callback (the `sql` fixture). A write inside the request's
transaction opens no savepoint, never reads back the user it just wrote (the event's feed
snapshot and the answer are built from what it wrote), and reads the user's groups at most
once; what it builds must equal what reading back would have given.
"""

from __future__ import annotations

import json

import flask
import pytest

from skilljar_scim.domain import events, roles, snapshots
from skilljar_scim.scim import resources
from skilljar_scim.store import models
from skilljar_scim.store.db import write_transaction

pytestmark = pytest.mark.sqlite  # statements are counted with sqlite3 trace callbacks

CATALOG = {"global-admin": "All"}
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def _kinds(statements: list[str]) -> dict[str, int]:
    """Count the statements a request ran by what they are (the token read of auth aside)."""
    counts = {"savepoint": 0, "user_reads": 0, "membership_reads": 0, "writes": 0}
    for text in statements:
        head = text.lstrip().upper()
        if head.startswith(("SAVEPOINT", "RELEASE")):
            counts["savepoint"] += 1
        elif head.startswith("SELECT") and 'FROM "user" AS' in text:
            counts["user_reads"] += 1
        elif head.startswith("SELECT") and 'FROM "membership"' in text:
            counts["membership_reads"] += 1
        elif head.startswith(("INSERT", "UPDATE", "DELETE")):
            counts["writes"] += 1
    return counts


def _stored_snapshot(action: str, user_id: str) -> dict:
    event = (models.Event.select().where((models.Event.action == action) & (models.Event.resource_id == user_id))
             .order_by(models.Event.id.desc()).get())  # the newest
    return json.loads(event.data)


def test_write_statements_create_of_a_new_person_reads_nothing(api, sql) -> None:
    """The insert is the uniqueness check (ON CONFLICT DO NOTHING under the write lock): no read first."""
    api.get("/Users?count=1")  # the token's last_used is written once; keep it out of the count
    sql.clear()
    created = api.post("/Users", {"schemas": [USER], "userName": "ada@example.com", "externalId": "e-1",
                                  "emails": [{"value": "ada@example.com", "primary": True}]})
    assert created.status_code == 201
    assert _kinds(sql) == {"savepoint": 0, "user_reads": 0, "membership_reads": 0, "writes": 3}  # user, email, event
    user_id = created.get_json()["id"]
    assert _stored_snapshot("user.created", user_id) == snapshots.users([user_id])[user_id]
    assert "groups" not in created.get_json() and api.get(f"/Users/{user_id}").get_json() == created.get_json()


def test_write_statements_create_meeting_a_taken_key_writes_nothing_and_decides_under_the_lock(api, sql) -> None:
    """An insert that meets a held userName or externalId writes no row; the held account then decides (409 or back)."""
    bob = api.create_user("bob@example.com", externalId="b-1", emails=[{"value": "bob@example.com"}])
    counts = lambda: (models.User.select().count(), models.UserEmail.select().count(),  # noqa: E731
                      models.Event.select().count())
    before = counts()
    for body in ({"userName": "BOB@example.com"}, {"userName": "robert@example.com", "externalId": "b-1"}):
        sql.clear()
        refused = api.post("/Users", {"schemas": [USER], **body})
        assert refused.status_code == 409 and refused.get_json()["scimType"] == "uniqueness"
        assert bob["id"] in refused.get_json()["detail"]
        assert _kinds(sql) == {"savepoint": 0, "user_reads": 1, "membership_reads": 0, "writes": 1}
        assert counts() == before
    api.ops(f"/Users/{bob['id']}", {"op": "replace", "value": {"active": False}})
    back = api.post("/Users", {"schemas": [USER], "userName": "bob@example.com", "externalId": "b-1"})
    assert back.status_code == 201 and back.get_json()["id"] == bob["id"] and back.get_json()["active"] is True
    assert models.User.select().count() == before[0]


def test_write_statements_deactivate_reads_groups_once_and_answers_them(api, sql) -> None:
    roles.add_mapping(events.CLI, "Admins", "global-admin", CATALOG)
    alice = api.create_user("alice@example.com")
    admins = api.create_group("Admins", [alice["id"]])
    api.get("/Users?count=1")
    sql.clear()
    patched = api.ops(f"/Users/{alice['id']}", {"op": "replace", "value": {"active": False}})
    assert patched.status_code == 200
    counts = _kinds(sql)
    assert counts["savepoint"] == 0 and counts["membership_reads"] == 0  # they come with the user (memberships.column)
    assert counts["user_reads"] == 1  # the user the PATCH applies to; never read back after writing it
    body = patched.get_json()
    assert [g["value"] for g in body["groups"]] == [admins["id"]] and "roles" not in body  # inactive: no roles
    assert body == api.get(f"/Users/{alice['id']}").get_json()
    snapshot = _stored_snapshot("user.deactivated", alice["id"])
    assert snapshot == snapshots.users([alice["id"]])[alice["id"]]
    assert snapshot["groups"] == [{"id": admins["id"], "displayName": "Admins"}] and snapshot["roles"] == []
    assert _stored_snapshot("role.revoked", alice["id"]) == {
        **snapshot, "change": {"role": "global-admin", "reason": "deactivated"}}
    api.ops(f"/Users/{alice['id']}", {"op": "replace", "value": {"active": True}})
    assert _stored_snapshot("role.granted", alice["id"]) == {
        **snapshots.users([alice["id"]])[alice["id"]], "change": {"role": "global-admin", "reason": "reactivated"}}


def test_write_statements_update_answers_current_groups_and_roles(api, sql) -> None:
    roles.add_mapping(events.CLI, "Admins", "global-admin", CATALOG)
    alice = api.create_user("alice@example.com")
    api.create_group("Admins", [alice["id"]])
    patched = api.ops(f"/Users/{alice['id']}", {"op": "replace", "path": "title", "value": "Staff"})
    body = patched.get_json()
    assert [r["value"] for r in body["roles"]] == ["global-admin"] and body["title"] == "Staff"
    assert body == api.get(f"/Users/{alice['id']}").get_json()
    assert _stored_snapshot("user.updated", alice["id"]) == snapshots.users([alice["id"]])[alice["id"]]


def _after_commit(statements: list[str]) -> list[str]:
    """Return what a request ran after its last COMMIT."""
    ends = [i for i, text in enumerate(statements) if text.strip().upper() == "COMMIT"]
    return statements[ends[-1] + 1:] if ends else ["(no COMMIT)"]


def test_write_statements_user_writes_answer_after_the_commit_reading_nothing(api, sql, monkeypatch) -> None:
    """POST, PUT and PATCH /Users render their answer once the write lock is released, from the instance alone."""
    roles.add_mapping(events.CLI, "Admins", "global-admin", CATALOG)
    bob = api.create_user("bob@example.com", externalId="b-1")
    api.create_group("Admins", [bob["id"]])
    api.ops(f"/Users/{bob['id']}", {"op": "replace", "value": {"active": False}})
    depths: list[tuple[str, int]] = []
    real = resources.project
    monkeypatch.setattr(resources, "project", lambda *args: depths.append(
        (flask.request.method, models.database.obj.transaction_depth())) or real(*args))
    answers = []
    for send in (lambda: api.post("/Users", {"schemas": [USER], "userName": "ada@example.com"}),
                 lambda: api.post("/Users", {"schemas": [USER], "userName": "BOB@example.com"}),  # comes back
                 lambda: api.put(f"/Users/{bob['id']}", {"schemas": [USER], "userName": "bob@example.com",
                                                         "title": "Lead"}),
                 lambda: api.ops(f"/Users/{bob['id']}", {"op": "replace", "path": "title", "value": "Staff"})):
        sql.clear()
        answer = send()
        assert answer.status_code in (200, 201), answer.get_json()
        assert _after_commit(sql) == []
        answers.append(answer.get_json())
        assert answers[-1] == api.get(f"/Users/{answers[-1]['id']}").get_json()
    # No transaction open when the writes render: the lock was already released (a GET renders in its snapshot).
    assert [d for d in depths if d[0] != "GET"] == [("POST", 0), ("POST", 0), ("PUT", 0), ("PATCH", 0)]
    returned = answers[1]
    assert returned["id"] == bob["id"] and [r["value"] for r in returned["roles"]] == ["global-admin"]
    assert [g["display"] for g in returned["groups"]] == ["Admins"]


def test_write_statements_nested_write_joins_and_an_error_rolls_back_the_whole(api, sql) -> None:
    with models.database.connection_context():
        sql.clear()
        with pytest.raises(RuntimeError):
            with write_transaction():
                models.SchemaVersion.create(version=999, applied_at="2026-01-01")
                with write_transaction():
                    models.SchemaVersion.create(version=998, applied_at="2026-01-01")
                    raise RuntimeError("boom")
        assert not [s for s in sql if s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE"))]
        assert not models.SchemaVersion.select().where(models.SchemaVersion.version >= 998).exists()
