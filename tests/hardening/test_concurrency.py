"""Bursts of concurrent writes against a real `scim serve` (2 workers x 4 threads) on SQLite.

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

pytestmark = [pytest.mark.e2e, pytest.mark.sqlite]

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


def test_concurrency_member_adds_to_one_group_all_land(server) -> None:
    token = server.token()["token"]
    people = _create_users(server, token, 40, "member")
    group = _create_group(server, token, "Burst")
    group_version = int(group["meta"]["version"][3:-1])
    ids = [p["id"] for p in people]
    # Every add twice: duplicates must neither fail nor count twice.
    calls = [lambda u=u: server.request("PATCH", f"/Groups/{group['id']}", token, _add_member(u)) for u in ids * 2]
    results = _burst(calls)
    _assert_clean(results)
    for (status, _, body), user_id in zip(results, ids * 2):
        members = {m["value"] for m in body.get("members", [])}
        assert user_id in members, "a response misses its own write"
        # Each add makes one new version: a response shows the members of exactly its version.
        assert body["meta"]["version"] == f'W/"{group_version + len(members)}"', "a response mixes two states"
    status, _, final = server.request("GET", f"/Groups/{group['id']}", token)
    assert {m["value"] for m in final["members"]} == set(ids)
    with server.sqlite() as db:
        stored = {u for (u,) in db.execute("SELECT user_id FROM membership WHERE group_id = ?", (group["id"],))}
        added = db.execute("SELECT COUNT(*) FROM event WHERE action = 'membership.added' AND resource_id = ?",
                           (group["id"],)).fetchone()[0]
    assert stored == set(ids) and added == len(ids)


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


def test_concurrency_same_username_created_once(server) -> None:
    token = server.token()["token"]
    calls = [lambda: server.request("POST", "/Users", token, _user("twin@example.com")) for _ in range(16)]
    results = _burst(calls)
    _assert_clean(results, allowed=(409,))
    assert sorted(status for status, _, _ in results) == [201] + [409] * 15
    with server.sqlite() as db:
        assert db.execute("SELECT COUNT(*) FROM user WHERE user_name_key = 'twin@example.com'").fetchone()[0] == 1


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
    """GET every user and group; compare with the rows in the SQLite file."""
    with server.sqlite() as db:
        users = {row[0]: row[1:] for row in db.execute(
            "SELECT id, user_name, version, attributes FROM user WHERE deprovisioned_at IS NULL")}
        groups = {row[0]: row[1:] for row in db.execute("SELECT id, display_name, version FROM \"group\"")}
        members: dict[str, set[str]] = {g: set() for g in groups}
        for group_id, user_id in db.execute("SELECT group_id, user_id FROM membership"):
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
