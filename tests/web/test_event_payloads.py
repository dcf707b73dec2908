"""The feed payload every consumer shares (events API, webhooks): the resource as each change left it."""

from __future__ import annotations

import json
import random

from skilljar_scim.domain import events, roles, users
from skilljar_scim.store import models

CATALOG = {"global-admin": "All", "codes-admin": "Codes"}
PASSWORD = "Sup3r-Secret-Pa55word!"


def _feed(types: tuple[str, ...] | None = None) -> list[dict]:
    query = models.Event.select().order_by(models.Event.id)
    items = [events.feed_item(e) for e in query]
    return [i for i in items if types is None or i["type"] in types]


def _one(kind: str) -> dict:
    found = [i for i in _feed() if i["type"] == kind]
    assert len(found) == 1, [i["type"] for i in _feed()]
    return found[0]


def test_feed_item_has_stable_json_ready_shape(api) -> None:
    alice = api.create_user("alice@example.com", externalId="ext-a", name={"givenName": "Alice", "familyName": "Ng"},
                            emails=[{"value": "alice@example.com", "primary": True}])
    item = _one("user.created")
    assert set(item) == {"id", "type", "created_at", "data"}
    assert item["id"].startswith("evt_") and item["created_at"].endswith("Z")
    assert json.loads(json.dumps(item)) == item
    assert item["data"] == {
        "id": alice["id"], "userName": "alice@example.com", "externalId": "ext-a", "displayName": "Alice Ng",
        "name": {"givenName": "Alice", "familyName": "Ng"}, "emails": [{"value": "alice@example.com", "primary": True}],
        "active": True, "state": "active", "roles": [], "groups": [],
    }


def test_feed_item_ids_sort_as_strings_in_recording_order(api) -> None:
    for n in range(12):  # past 9 and 0xf: a plain decimal or short hex id would sort wrongly as text
        api.create_user(f"user{n}@example.com")
    ids = [i["id"] for i in _feed()]  # the api fixture's token.created, then 12 users
    assert len(ids) == 13 and ids == sorted(ids) and len(set(ids)) == 13


def test_feed_item_role_events_carry_full_roles_and_the_change(api) -> None:
    roles.add_mapping(events.CLI, "Admins", "global-admin", CATALOG)
    roles.add_mapping(events.CLI, "Codes", "codes-admin", CATALOG)
    alice = api.create_user("alice@example.com")
    codes = api.create_group("Codes", [alice["id"]])
    admins = api.create_group("Admins", [alice["id"]])
    granted = [i for i in _feed() if i["type"] == "role.granted"]
    assert [g["data"]["change"] for g in granted] == [{"role": "codes-admin", "reason": "membership"},
                                                      {"role": "global-admin", "reason": "membership"}]
    assert granted[-1]["data"]["roles"] == ["codes-admin", "global-admin"]
    assert {g["id"] for g in granted[-1]["data"]["groups"]} == {codes["id"], admins["id"]}
    added = [i for i in _feed() if i["type"] == "membership.added"]
    assert added[-1]["data"]["change"] == {"group": {"id": admins["id"], "displayName": "Admins"}}
    assert added[-1]["data"]["roles"] == ["codes-admin", "global-admin"]


def test_feed_item_snapshot_is_captured_when_recorded_not_when_read(api) -> None:
    roles.add_mapping(events.CLI, "Admins", "global-admin", CATALOG)
    alice = api.create_user("alice@example.com")
    api.create_group("Admins", [alice["id"]])
    api.ops(f"/Users/{alice['id']}", {"op": "replace", "path": "active", "value": False})
    assert _one("role.granted")["data"]["roles"] == ["global-admin"]  # as it was then, not now
    assert _one("role.granted")["data"]["state"] == "active"
    off = _one("user.deactivated")["data"]
    assert (off["active"], off["state"], off["roles"]) == (False, "inactive", [])
    assert _one("role.revoked")["data"]["change"] == {"role": "global-admin", "reason": "deactivated"}


def test_feed_item_deprovisioned_and_deleted_states(api) -> None:
    alice = api.create_user("alice@example.com")
    group = api.create_group("Team", [alice["id"]])
    assert _one("group.created")["data"] == {"id": group["id"], "displayName": "Team", "externalId": None,
                                             "state": "active"}
    api.patch(f"/Groups/{group['id']}", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                         "Operations": [{"op": "replace", "path": "displayName", "value": "Crew"}]})
    assert _one("group.updated")["data"] == {"id": group["id"], "displayName": "Crew", "externalId": None,
                                             "state": "active"}
    assert api.delete(f"/Users/{alice['id']}").status_code == 204
    gone = _one("user.deprovisioned")["data"]
    assert (gone["active"], gone["state"], gone["groups"], gone["roles"]) == (False, "deprovisioned", [], [])
    assert api.delete(f"/Groups/{group['id']}").status_code == 204
    assert _one("group.deleted")["data"] == {"id": group["id"], "displayName": "Crew", "externalId": None,
                                             "state": "deleted"}


def test_feed_item_never_holds_a_secret(api, keys) -> None:
    from skilljar_scim.domain import tokens

    api.create_user("alice@example.com", password=PASSWORD)
    made = tokens.generate(keys, "Dashboard", None, scope="read")
    stored = [models.User.get().password_hash, made.value, made.token.secret_hash, made.value.rpartition(".")[2]]
    text = json.dumps(_feed(events.ACTIONS))
    assert models.User.get().password_hash  # the password was stored (hashed): the check below means something
    assert not [s for s in [PASSWORD, *stored] if s in text]
    assert _feed(("token.created",))[-1]["data"] == {"id": made.token.id, "name": "Dashboard", "scope": "read", "revoked": False}


def test_feed_item_purge_leaves_only_the_id_consumers_erase_by(api, keys) -> None:
    alice = api.create_user("alice@example.com", externalId="ext-alice", emails=[{"value": "alice@example.com"}])
    api.create_group("Team", [alice["id"]])
    api.delete(f"/Users/{alice['id']}")
    users.purge(events.CLI, models.User.get_by_id(alice["id"]))
    feed = _feed()
    assert "alice" not in json.dumps(feed)
    assert _one("user.created")["data"] == {"state": "purged"}
    assert feed[-1]["type"] == "user.purged" and feed[-1]["data"] == {"id": alice["id"], "state": "purged"}
    assert alice["id"] not in json.dumps(feed[:-1])  # the purge event alone names the id, so a consumer can erase it


def _apply(state: dict, applied: dict, item: dict) -> None:
    """A consumer: keep, per user, the snapshot of the newest event id applied (README, events API)."""
    if item["type"].partition(".")[0] not in ("user", "membership", "role"):
        return  # group.* and mapping.* events carry a group or a mapping, not a user
    user = item["data"]
    if item["id"] > applied.get(user["id"], ""):
        applied[user["id"]] = item["id"]
        state[user["id"]] = {k: user[k] for k in ("state", "active", "roles")}


def test_feed_item_applied_twice_and_out_of_order_ends_in_current_state(api) -> None:
    roles.add_mapping(events.CLI, "Admins", "global-admin", CATALOG)
    people = [api.create_user(f"p{n}@example.com")["id"] for n in range(4)]
    admins = api.create_group("Admins", people[:3])
    api.ops(f"/Users/{people[0]}", {"op": "replace", "path": "active", "value": False})
    api.group_ops(f"/Groups/{admins['id']}", {"op": "remove", "path": f'members[value eq "{people[1]}"]'})
    api.group_ops(f"/Groups/{admins['id']}", {"op": "add", "path": "members", "value": [{"value": people[3]}]})
    api.ops(f"/Users/{people[0]}", {"op": "replace", "path": "active", "value": True})
    api.delete(f"/Users/{people[2]}")
    items = _feed(events.DEFAULT_FEED_TYPES)
    shuffled = items * 2
    random.Random(7).shuffle(shuffled)
    state: dict = {}
    _apply_all(state, shuffled)
    expected = {"state": "active", "active": True, "roles": ["global-admin"]}
    assert state[people[0]] == state[people[3]] == expected
    assert state[people[1]] == {"state": "active", "active": True, "roles": []}
    assert state[people[2]] == {"state": "deprovisioned", "active": False, "roles": []}


def _apply_all(state: dict, items: list[dict]) -> None:
    applied: dict = {}
    for item in items:
        _apply(state, applied, item)
