"""`scim users purge`: the person's identifiers leave their own events; no other event changes by a byte."""

from __future__ import annotations

import json

import pytest

from skilljar_scim.store import models

PURGED = "(purged)"
# Positions in an event row as _events() gives it (without the id).
SUMMARY, DATA = (models.Event._meta.sorted_field_names[1:].index(name) for name in ("summary", "data"))


@pytest.fixture
def crowd(api, initialised):
    """People whose names and ids share substrings with the ones purged, all in one mapped group."""
    cli = initialised
    people = {
        "short": api.create_user("formerly-user", externalId="1", emails=[{"value": "u@x.io", "type": "work"}]),
        "quoted": api.create_user('Ann "Q" O\'Neil', externalId='ext"1', displayName='Ann "Q"'),
        "others": [api.create_user(name, externalId=ext) for name, ext in (
            ("username", "11"), ("user1", "21"), ("a-user", "1x"), ('Ann "Q" O\'Neil jr', "q"))],
    }
    everyone = [people["short"]["id"], people["quoted"]["id"]] + [o["id"] for o in people["others"]]
    group = api.create_group("users 1", everyone)
    assert cli("mappings", "add", "users 1", "api-admin").exit_code == 0
    for who in ("short", "quoted"):
        api.ops(f"/Users/{people[who]['id']}", {"op": "replace", "path": "title", "value": "1"})
    api.ops(f"/Users/{people['short']['id']}", {"op": "replace", "path": "userName", "value": "user"})
    people["short"]["userName"] = "user"  # renamed below: both names must go
    return {**people, "group": group, "cli": cli, "api": api}


def _events() -> dict[int, tuple]:
    """Every event row exactly as stored."""
    return {row[0]: row[1:] for row in models.Event.select().order_by(models.Event.id).tuples()}


def _about(row: tuple, user_id: str) -> bool:
    fields = [models.Event._meta.sorted_field_names[1:][i] for i in range(len(row))]
    stored = dict(zip(fields, row))
    return stored["resource_id"] == user_id or user_id in stored["summary"]


def _strings(data) -> set[str]:
    """Every string in parsed JSON, keys included."""
    if isinstance(data, str):
        return {data}
    if isinstance(data, list):
        return set().union(*map(_strings, data)) if data else set()
    if isinstance(data, dict):
        return set(data) | (set().union(*map(_strings, data.values())) if data else set())
    return set()


@pytest.mark.parametrize("who", ["short", "quoted"])
def test_purge_touches_only_the_persons_events_and_replaces_exact_values(crowd, who) -> None:
    api, cli, person = crowd["api"], crowd["cli"], crowd[who]
    assert api.delete(f"/Users/{person['id']}").status_code == 204
    before = _events()
    mine = {i for i, row in before.items() if _about(row, person["id"])}
    assert len(mine) >= 4  # created, membership, role, updated, deprovisioned...
    result = cli("users", "purge", person["id"], "--yes")
    assert result.exit_code == 0, result.output
    after = _events()
    for event_id, row in before.items():
        if event_id not in mine:
            assert after[event_id] == row, f"event {event_id} of someone else changed"
    secrets = {person["id"], person["userName"], person.get("externalId"), person.get("displayName")} - {None}
    secrets |= {"formerly-user", "u@x.io"} if who == "short" else set()
    for event_id in mine:
        summary = after[event_id][SUMMARY]
        assert json.loads(after[event_id][DATA]) == {"state": "purged"}  # the feed snapshot goes whole
        parsed = json.loads(summary)
        assert person["id"] not in summary and after[event_id][4] != person["id"]
        assert not secrets & _strings(parsed), summary
        for secret in (s for s in secrets if len(s) > 6):  # long enough not to occur by chance
            assert secret not in summary and json.dumps(secret)[1:-1] not in summary, (secret, summary)
        assert summary == json.dumps(parsed, sort_keys=True, ensure_ascii=False)
    kept = [json.loads(after[i][SUMMARY]) for i in mine]
    assert any(k.get("userName") == PURGED for k in kept)
    assert any(k.get("group") == "users 1" for k in kept), "a value that only contains the name stays"
    assert any(set(k.get("changed", [])) >= {"title"} for k in kept), "key names and other values stay"
