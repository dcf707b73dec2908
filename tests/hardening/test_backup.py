"""`scim db backup` (SQLite online backup, while serving) and `scim db check`; restoring a copy."""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest

from skilljar_scim.base.errors import ExitCode
from skilljar_scim.store import db as store_db

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _user(name: str) -> dict:
    return {"schemas": [USER_SCHEMA], "userName": name, "title": f"title of {name}"}


def _add(user_id: str) -> dict:
    return {"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": [{"value": user_id}]}]}


def _everything(server, token: str) -> dict:
    """What a server serves: users, groups (with members), mappings and tokens."""
    status, _, users = server.request("GET", "/Users?count=1000&sortBy=userName", token)
    assert status == 200, users
    status, _, groups = server.request("GET", "/Groups?count=1000&sortBy=displayName", token)
    assert status == 200, groups
    mappings = json.loads(server.cli("mappings", "list", "--json").stdout)
    tokens = json.loads(server.cli("token", "list", "--all", "--json").stdout)
    for made in tokens:
        made.pop("last_used_at")  # the check itself uses a token
    return {"users": users["Resources"], "groups": groups["Resources"], "mappings": mappings, "tokens": tokens}


@pytest.mark.e2e
@pytest.mark.sqlite
def test_backup_while_serving_writes_restores_same_users_groups_mappings_tokens(make_server, tmp_path) -> None:
    server = make_server("live")
    token = server.token("before backup")["token"]
    _, _, team = server.request("POST", "/Groups", token, {"schemas": [GROUP_SCHEMA], "displayName": "Team"})
    for index in range(10):
        _, _, user = server.request("POST", "/Users", token, _user(f"early{index}@example.com"))
        assert server.request("PATCH", f"/Groups/{team['id']}", token, _add(user["id"]))[0] == 204
    assert server.cli("mappings", "add", "Team", "api-admin").returncode == 0

    acknowledged: list[str] = []
    failures: list[object] = []
    stop = threading.Event()

    def keep_writing() -> None:  # the server stays busy while the backup runs
        for index in range(300):
            if stop.is_set():
                return
            status, _, user = server.request("POST", "/Users", token, _user(f"during{index}@example.com"))
            answer = server.request("PATCH", f"/Groups/{team['id']}", token, _add(user["id"])) if status == 201 else None
            if answer is None or answer[0] != 204:  # a Group PATCH answers 204 + ETag (RFC 7644 §3.5.2)
                failures.append((status, user, answer))
                return
            acknowledged.append(user["id"])

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        deadline = time.monotonic() + 30
        while len(acknowledged) < 5 and not failures and time.monotonic() < deadline:
            time.sleep(0.02)
        copy = tmp_path / "backups" / "scim-backup.db"
        copy.parent.mkdir()
        done = server.cli("--json", "db", "backup", str(copy))
        acknowledged_before_backup_ended = len(acknowledged)
    finally:
        stop.set()
        writer.join(timeout=60)
    assert not failures and done.returncode == 0, (failures, done.stderr)
    report = json.loads(done.stdout)
    assert report["integrity"] == "ok" and report["counts"]["mappings"] == 1 and report["counts"]["tokens"] == 1
    assert _mode(copy) == 0o600
    with sqlite3.connect(copy) as db:  # one snapshot: every user in the copy that joined Team is a member
        users = db.execute("SELECT COUNT(*) FROM user").fetchone()[0]
        members = db.execute("SELECT COUNT(*) FROM membership").fetchone()[0]
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert users == report["counts"]["users"] >= 10 + 5 and members in (users, users - 1)
    assert report["counts"]["users"] <= 10 + acknowledged_before_backup_ended + 1

    # Restore: the copy becomes the database of a fresh installation with the same key file.
    restored = make_server("restored", start=False)
    shutil.copy2(copy, restored.db_path)
    shutil.copy2(server.key_path, restored.key_path)
    restored.start()
    assert restored.cli("db", "check").returncode == 0
    assert restored.request("GET", "/Users?count=1", token)[0] == 200  # a token made before the backup works
    after, now = _everything(restored, token), _everything(server, token)
    ids = {u["id"] for u in after["users"]}
    assert len(ids) == report["counts"]["users"]
    # The copy holds what the live store held at one moment: the same people, attributes and tokens.
    assert [_stable(u) for u in now["users"] if u["id"] in ids] == [_stable(u) for u in after["users"]]
    assert [(m["group"], m["role"]) for m in after["mappings"]] == [("Team", "api-admin")]
    assert after["tokens"] == now["tokens"]
    members = {m["value"] for m in after["groups"][0]["members"]}
    assert members <= ids and len(ids - members) <= 1  # at most the user created just before the copy
    for user in after["users"]:
        assert [r["value"] for r in user.get("roles", [])] == (["api-admin"] if user["id"] in members else [])


def _stable(user: dict) -> dict:
    """What cannot have changed since the copy: not meta, and not membership, which may have landed later."""
    return {k: v for k, v in user.items() if k not in ("meta", "groups", "roles")}


@pytest.mark.sqlite
def test_backup_refuses_to_overwrite_unless_forced(initialised, tmp_path) -> None:
    target = tmp_path / "copy.db"
    assert initialised("db", "backup", str(target)).exit_code == 0
    again = initialised("db", "backup", str(target))
    assert again.exit_code == ExitCode.CONFLICT and "--force" in again.stderr
    Path(f"{target}-wal").write_bytes(b"stale")  # left by something that once opened the old copy
    forced = initialised("db", "backup", str(target), "--force")
    assert forced.exit_code == 0, forced.output
    assert _mode(target) == 0o600 and not Path(f"{target}-wal").exists()
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []
    with sqlite3.connect(target) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.sqlite
def test_backup_refuses_the_live_database_and_a_missing_folder(initialised, settings, tmp_path) -> None:
    live = initialised("db", "backup", str(settings.sqlite_path), "--force")
    assert live.exit_code == ExitCode.USAGE and "live database" in live.stderr
    missing = initialised("db", "backup", str(tmp_path / "nope" / "copy.db"))
    assert missing.exit_code == ExitCode.USAGE and "does not exist" in missing.stderr


def test_backup_on_postgresql_points_to_pg_dump(initialised, tmp_path) -> None:
    result = initialised("--db", "postgresql://scim@127.0.0.1:1/scim", "db", "backup", str(tmp_path / "x.db"))
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "pg_dump" in result.stderr and not (tmp_path / "x.db").exists()


def test_check_healthy_database_reports_ok(initialised) -> None:
    report = initialised.json("db", "check")
    assert report["ok"] is True and report["problems"] == []
    assert report["schema_version"] == report["expected_schema_version"] == store_db.SCHEMA_VERSION
    human = initialised("db", "check")
    assert human.exit_code == 0 and human.stdout.splitlines()[0] == "result\tok"


@pytest.mark.sqlite
def test_check_detects_corruption(initialised, settings) -> None:
    path = settings.sqlite_path
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=delete")  # fold the WAL in, so the damage is in the file itself
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'user'").fetchone()[0]
    with open(path, "r+b") as raw:
        raw.seek((root - 1) * page_size)
        raw.write(b"\x0d\x00\x00\xff\xff" + b"\xee" * 60)  # a leaf page header that points past the page
    result = initialised("db", "check")
    assert result.exit_code == ExitCode.DATABASE and "integrity" in result.stderr


@pytest.mark.sqlite
def test_check_detects_rows_pointing_at_missing_rows(initialised, settings) -> None:
    with sqlite3.connect(settings.sqlite_path) as db:  # foreign keys are off in a bare connection
        db.execute("INSERT INTO membership (group_id, user_id, created_at) VALUES ('g', 'u', '2026-01-01')")
    result = initialised("--json", "db", "check")
    assert result.exit_code == ExitCode.DATABASE
    assert json.loads(result.stdout)["foreign_key_violations"] == 2 and "membership" in result.stderr


@pytest.mark.parametrize("change, expected", [("older", "scim init"), ("newer", "upgrade scim")])
def test_check_detects_schema_version_mismatch_without_migrating(initialised, settings, change, expected) -> None:
    from skilljar_scim.store import models

    database = store_db.open_database(settings.database.url)
    if change == "older":
        models.SchemaVersion.delete().where(models.SchemaVersion.version == store_db.SCHEMA_VERSION).execute()
    else:
        models.SchemaVersion.create(version=store_db.SCHEMA_VERSION + 1, applied_at=models.SchemaVersion.get().applied_at)
    database.close()
    result = initialised("db", "check")
    assert result.exit_code == ExitCode.DATABASE and expected in result.stderr
    database = store_db.open_database(settings.database.url, migrate_schema=False)
    try:
        assert store_db.schema_version(database) == store_db.SCHEMA_VERSION + (1 if change == "newer" else -1)
    finally:
        database.close()


@pytest.mark.sqlite  # on PostgreSQL there is no file to be missing
def test_check_missing_database_says_init(cli, settings) -> None:
    result = cli("db", "check")
    assert result.exit_code == ExitCode.NOT_INITIALISED and "scim init" in result.stderr
