"""Bursts of concurrent writes against a real `scim serve` (2 workers x 4 threads).

On the SQLite default (and on PostgreSQL when the suite runs there).

No `database is locked` reaches a client, no update is lost, If-Match detects stale
writes, and afterwards every resource the API serves matches what the store holds.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


CLIENTS = 24


def _burst(calls: list) -> list:
    """Run every call at once from CLIENTS threads; return their results in order."""
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        return list(pool.map(lambda call: call(), calls, timeout=120))


def _assert_clean(results: list, allowed: tuple[int, ...] = ()) -> None:
    """Every answer is 2xx or an expected refusal; never 5xx, never a leaked lock error."""
    for status, _, body in results:
        assert 200 <= status < 300 or status in allowed, (status, body)
        assert "locked" not in json.dumps(body).lower(), body


def patch_body(*operations: dict) -> dict:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def _user(name: str, **attributes) -> dict:
    return {"schemas": [USER_SCHEMA], "userName": name, **attributes}


def _create_users(server, token: str, count: int, prefix: str) -> list[dict]:
    results = _burst([lambda i=i: server.request("POST", "/Users", token, _user(f"{prefix}{i}@example.com"))
                      for i in range(count)])
    _assert_clean(results)
    assert all(status == 201 for status, _, _ in results)
    return [body for _, _, body in results]


def _create_group(server, token: str, name: str, members: list[str] = ()) -> dict:
    body = {"schemas": [GROUP_SCHEMA], "displayName": name, "members": [{"value": m} for m in members]}
    status, _, group = server.request("POST", "/Groups", token, body)
    assert status == 201, group
    return group


def _add_member(user_id: str) -> dict:
    return patch_body({"op": "add", "path": "members", "value": [{"value": user_id}]})


def _remove_member(user_id: str) -> dict:
    return patch_body({"op": "remove", "path": f'members[value eq "{user_id}"]'})


@pytest.mark.e2e
def test_concurrency_member_adds_to_one_group_all_land(server) -> None:
    token = server.token()["token"]
    people = _create_users(server, token, 40, "member")
    group = _create_group(server, token, "Burst")
    group_version = int(group["meta"]["version"][3:-1])
    ids = [p["id"] for p in people]
    # Every add twice: duplicates must neither fail nor count twice. The first of each pair gets
    # the default answer (204 + ETag); the second asks for the members, so it answers 200 with them.
    path = f"/Groups/{group['id']}"
    calls = [lambda u=u: server.request("PATCH", path, token, _add_member(u)) for u in ids]
    calls += [lambda u=u: server.request("PATCH", f"{path}?attributes=members", token, _add_member(u)) for u in ids]
    reads = [lambda: server.request("GET", path, token) for _ in range(len(ids))]
    results = _burst([call for pair in zip(calls, reads + reads) for call in pair])
    _assert_clean(results)
    writes = results[0::2]
    for status, headers, body in writes[:len(ids)]:
        assert status == 204 and body is None and "Content-Type" not in headers, (status, headers, body)
    for (status, headers, body), user_id in zip(writes[len(ids):], ids):
        assert status == 200 and headers["ETag"] == body["meta"]["version"], (status, body)
        assert user_id in {m["value"] for m in body.get("members", [])}, "a response misses its own write"
    # Each new member makes one new version, and its write answers with that version's ETag.
    assert {headers["ETag"] for _, headers, _ in writes} == {f'W/"{group_version + n}"' for n in range(1, len(ids) + 1)}
    for status, _, body in results:
        if body is None:
            continue
        # Each add makes one new version: an answer shows the members of exactly its version.
        members = body.get("members", [])
        assert body["meta"]["version"] == f'W/"{group_version + len(members)}"', "an answer mixes two states"
    status, _, final = server.request("GET", f"/Groups/{group['id']}", token)
    assert {m["value"] for m in final["members"]} == set(ids)
    stored = {u for (u,) in server.query("SELECT user_id FROM membership WHERE group_id = ?", group["id"])}
    [(added,)] = server.query("SELECT COUNT(*) FROM event WHERE action = 'membership.added' AND resource_id = ?",
                              group["id"])
    assert stored == set(ids) and added == len(ids)


@pytest.mark.e2e
def test_concurrency_adds_and_removes_on_shared_groups_leave_the_store_consistent(server) -> None:
    token = server.token()["token"]
    people = _create_users(server, token, 24, "mixed")
    ids = [p["id"] for p in people]
    keep, drop = ids[:12], ids[12:]
    a = _create_group(server, token, "Alpha", drop)
    b = _create_group(server, token, "Beta")
    calls = []
    for user_id in keep:
        calls.append(lambda u=user_id: server.request("PATCH", f"/Groups/{a['id']}", token, _add_member(u)))
        calls.append(lambda u=user_id: server.request("PATCH", f"/Groups/{b['id']}", token, _add_member(u)))
    for user_id in drop:
        calls.append(lambda u=user_id: server.request("PATCH", f"/Groups/{a['id']}", token, _remove_member(u)))
    for index, user_id in enumerate(ids):
        title = {"op": "replace", "path": "title", "value": f"Title {index}"}
        calls.append(lambda u=user_id, t=title: server.request("PATCH", f"/Users/{u}", token, patch_body(t)))
        calls.append(lambda u=user_id: server.request("GET", f"/Users/{u}", token))
    calls.append(lambda: server.request("GET", "/Groups", token))
    _assert_clean(_burst(calls))
    _assert_api_matches_store(server, token)
    status, _, alpha = server.request("GET", f"/Groups/{a['id']}", token)
    status, _, beta = server.request("GET", f"/Groups/{b['id']}", token)
    assert {m["value"] for m in alpha["members"]} == set(keep)
    assert {m["value"] for m in beta["members"]} == set(keep)


@pytest.mark.e2e
def test_concurrency_if_match_lets_exactly_one_stale_writer_win(server) -> None:
    token = server.token()["token"]
    (person,) = _create_users(server, token, 1, "etag")
    for round_ in range(3):
        status, headers, current = server.request("GET", f"/Users/{person['id']}", token)
        version = headers["ETag"]
        calls = [
            lambda i=i: server.request(
                "PATCH", f"/Users/{person['id']}", token,
                patch_body({"op": "replace", "path": "title", "value": f"round {round_} writer {i}"}),
                headers={"If-Match": version})
            for i in range(16)
        ]
        results = _burst(calls)
        _assert_clean(results, allowed=(412,))
        winners = [body for status, _, body in results if status == 200]
        assert len(winners) == 1, [status for status, _, _ in results]
        assert sum(status == 412 for status, _, _ in results) == 15
        status, headers, final = server.request("GET", f"/Users/{person['id']}", token)
        assert final["title"] == winners[0]["title"] and headers["ETag"] == winners[0]["meta"]["version"]
        assert headers["ETag"] != version


@pytest.mark.e2e
def test_concurrency_same_username_created_once(server) -> None:
    token = server.token()["token"]
    calls = [lambda: server.request("POST", "/Users", token, _user("twin@example.com")) for _ in range(16)]
    results = _burst(calls)
    _assert_clean(results, allowed=(409,))
    assert sorted(status for status, _, _ in results) == [201] + [409] * 15
    assert server.query("""SELECT COUNT(*) FROM "user" WHERE user_name_key = 'twin@example.com'""") == [(1,)]


@pytest.mark.e2e
def test_concurrency_cli_writes_during_a_burst_do_not_lock(server) -> None:
    token = server.token()["token"]
    people = _create_users(server, token, 16, "cli")
    group = _create_group(server, token, "Ops")
    calls = [lambda u=p["id"]: server.request("PATCH", f"/Groups/{group['id']}", token, _add_member(u)) for p in people]
    calls += [lambda i=i: server.cli("token", "generate", "--name", f"cli {i}", "--expires", "1d") for i in range(4)]
    calls += [lambda: server.cli("mappings", "add", "Ops", "api-admin")]
    results = _burst(calls)
    http, cli = results[:len(people)], results[len(people):]
    _assert_clean(http)
    for done in cli:
        assert done.returncode == 0, done.stderr
    _assert_api_matches_store(server, token)


def _assert_api_matches_store(server, token: str) -> None:
    """GET every user and group; compare with the rows in the database itself."""
    users = {row[0]: row[1:] for row in server.query(
        'SELECT id, user_name, version, attributes FROM "user" WHERE deprovisioned_at IS NULL')}
    groups = {row[0]: row[1:] for row in server.query('SELECT id, display_name, version FROM "group"')}
    members: dict[str, set[str]] = {g: set() for g in groups}
    for group_id, user_id in server.query("SELECT group_id, user_id FROM membership"):
        members[group_id].add(user_id)
    for user_id, (user_name, version, attributes) in users.items():
        status, headers, body = server.request("GET", f"/Users/{user_id}", token)
        assert status == 200 and body["userName"] == user_name
        assert headers["ETag"] == f'W/"{version}"' == body["meta"]["version"]
        assert body.get("title") == json.loads(attributes).get("title")
        held = {g["value"] for g in body.get("groups", [])}
        assert held == {g for g, m in members.items() if user_id in m}
    for group_id, (name, version) in groups.items():
        status, headers, body = server.request("GET", f"/Groups/{group_id}", token)
        assert status == 200 and body["displayName"] == name and body["meta"]["version"] == f'W/"{version}"'
        assert {m["value"] for m in body.get("members", [])} == members[group_id]


@pytest.mark.sqlite
def test_concurrency_write_lock_held_too_long_is_a_clean_503_not_locked(config_file, tmp_path) -> None:
    """Past busy_timeout a writer gets 503 + Retry-After (IdPs retry it), never 500 "database is locked"."""
    import sqlite3

    from typer.testing import CliRunner

    from skilljar_scim.base import config, keyfile
    from skilljar_scim.domain import tokens
    from skilljar_scim.cli.main import app as cli_app
    from skilljar_scim.base.errors import ExitCode
    from skilljar_scim.store import db as store_db
    from skilljar_scim.web.app import create_app

    settings = config.load(config_file, env={}, overrides={"database.busy_timeout_ms": 100})
    keyfile.create(settings.key_path)
    store_db.open_database(settings.database.url, create=True).close()
    store_db.open_database(settings.database.url)
    value = tokens.generate(keyfile.load(settings.key_path), "IdP", None).value
    client = create_app(settings).test_client()
    headers = {"Authorization": f"Bearer {value}", "Content-Type": "application/scim+json"}
    other = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        refused = client.post("/scim/v2/Users", headers=headers, data=json.dumps(_user("late@example.com")))
        assert client.get("/scim/v2/Users", headers=headers).status_code == 200  # readers are never blocked
        cli = CliRunner().invoke(cli_app, ["--config", str(config_file), "--db", settings.database.url,
                                           "token", "generate", "--name", "cli", "--expires", "1d"],
                                 env={"SKILLJAR_SCIM_DATABASE_BUSY_TIMEOUT_MS": "100"})
    finally:
        other.execute("ROLLBACK")
        other.close()
    body = refused.get_json(force=True)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1", body
    assert body["status"] == "503" and "busy" in body["detail"] and "locked" not in json.dumps(body)
    assert cli.exit_code == ExitCode.DATABASE and "busy" in cli.stderr and "locked" not in cli.stderr
    created = client.post("/scim/v2/Users", headers=headers, data=json.dumps(_user("late@example.com")))
    assert created.status_code == 201
