"""A membership change costs the same whatever the group's size (DESIGN: SCIM; RFC 7644 §3.5.2).

Cost is counted as SQL statements, seen through sqlite3's trace callback on every
connection the app opens; a group of 10 and a group of 1000 must issue the same ones.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest

from skilljar_scim.base import clock
from skilljar_scim.store import models

# Statements are counted with sqlite3 trace callbacks; the design holds on PostgreSQL too.
pytestmark = pytest.mark.sqlite

SIZES = (10, 1000)


def make_users(count: int, prefix: str) -> list[str]:
    """Store `count` active users straight in the store (fast setup; the API is under test)."""
    now = clock.utcnow()
    rows = [{"id": str(uuid.uuid4()), "user_name": f"{prefix}{i}@example.com", "user_name_key": f"{prefix}{i}@example.com",
             "attributes": json.dumps({"userName": f"{prefix}{i}@example.com", "active": True}),
             "created_at": now, "updated_at": now} for i in range(count)]
    with models.database.connection_context(), models.database.atomic():
        for start in range(0, count, 200):
            models.User.insert_many(rows[start:start + 200]).execute()
    return [r["id"] for r in rows]


@pytest.fixture
def groups_by_size(api) -> dict[int, dict]:
    """For each size: a group with that many members, and one user who is not a member."""
    made = {}
    for size in SIZES:
        members = make_users(size, f"g{size}-")
        group = api.create_group(f"Size {size}", members)
        made[size] = {"id": group["id"], "member": members[size // 2], "outsider": make_users(1, f"out{size}-")[0]}
    api.get("/Users?count=1")  # the token's last_used is written once; keep it out of the counts
    return made


def cost(sql: list[str], send) -> list[str]:
    """Return the statements one request issues (parameters blanked, so sizes compare)."""
    sql.clear()
    response = send()
    assert response.status_code in (200, 204), response.get_json()
    return [_shape(s) for s in sql]


def _shape(statement: str) -> str:
    return re.sub(r"'[^']*'|\b\d+(\.\d+)?\b|\"s[0-9a-f]{32}\"", "?", statement)


def whole_list_reads(statements: list[str]) -> list[str]:
    """Statements that read memberships by group alone: the member list."""
    return [s for s in statements if '"membership"' in s and s.lstrip().upper().startswith("SELECT")
            and '"user_id"' not in s.split("WHERE", 1)[-1]]


CHANGES = {
    "add-one": lambda g: {"op": "add", "path": "members", "value": [{"value": g["outsider"]}]},
    "remove-one-okta": lambda g: {"op": "remove", "path": f'members[value eq "{g["member"]}"]'},
    "remove-one-entra": lambda g: {"op": "remove", "path": "members", "value": [{"value": g["member"]}]},
    "add-existing": lambda g: {"op": "add", "path": "members", "value": [{"value": g["member"]}]},
    "okta-rename": lambda g: {"op": "replace", "value": {"id": g["id"], "displayName": f"Renamed {g['id']}"}},
    "add-without-path": lambda g: {"op": "add", "value": {"members": [{"value": g["outsider"]}]}},
}


@pytest.mark.parametrize("answer", ["", "?excludedAttributes=members"], ids=["204-default", "200-without-members"])
@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_group_scale_member_change_costs_the_same_at_any_size(api, groups_by_size, sql, change, answer) -> None:
    costs = {}
    for size, group in groups_by_size.items():
        path = f"/Groups/{group['id']}{answer}"
        costs[size] = cost(sql, lambda: api.ops(path, CHANGES[change](group)))
        assert whole_list_reads(costs[size]) == [], costs[size]
    assert costs[10] == costs[1000]
    assert len(costs[10]) <= 20


@pytest.mark.parametrize("op", ["add", "remove"])
def test_group_scale_changing_more_members_at_once_costs_no_more_statements(api, groups_by_size, sql, op) -> None:
    group = groups_by_size[1000]
    ids = make_users(4, "batch-")
    if op == "remove":
        api.ops(f"/Groups/{group['id']}", {"op": "add", "path": "members", "value": [{"value": i} for i in ids]})
    send = lambda chosen: api.ops(f"/Groups/{group['id']}?excludedAttributes=members",  # noqa: E731
                                  {"op": op, "path": "members", "value": [{"value": i} for i in chosen]})
    assert len(cost(sql, lambda: send(ids[:1]))) == len(cost(sql, lambda: send(ids[1:])))


@pytest.mark.parametrize("size", SIZES)
def test_group_scale_member_change_keeps_the_other_members(api, groups_by_size, size) -> None:
    group = groups_by_size[size]
    response = api.ops(f"/Groups/{group['id']}", CHANGES["add-one"](group), CHANGES["remove-one-okta"](group))
    assert response.status_code == 204 and response.get_data() == b""  # no member list, whatever the size
    after = api.get(f"/Groups/{group['id']}")
    assert after.status_code == 200 and after.headers["ETag"] == response.headers["ETag"]
    members = {m["value"] for m in after.get_json()["members"]}
    assert len(members) == size and group["outsider"] in members and group["member"] not in members


def test_group_scale_get_without_members_costs_the_same_at_any_size(api, groups_by_size, sql) -> None:
    costs = {}
    for size, group in groups_by_size.items():
        costs[size] = cost(sql, lambda: api.get(f'/Groups?filter=id eq "{group["id"]}"&excludedAttributes=members'))
        assert not any('"membership"' in s for s in costs[size])
    assert costs[10] == costs[1000]
    listed = cost(sql, lambda: api.get("/Groups?excludedAttributes=members"))
    assert not any('"membership"' in s for s in listed)


def test_group_scale_get_one_without_members_costs_the_same_at_any_size(api, groups_by_size, sql) -> None:
    costs = {size: cost(sql, lambda: api.get(f"/Groups/{g['id']}?excludedAttributes=members"))
             for size, g in groups_by_size.items()}
    assert costs[10] == costs[1000]
    assert not any('"membership"' in s for s in costs[10])


def test_group_scale_entra_membership_check_costs_the_same_at_any_size(api, groups_by_size, sql) -> None:
    costs = {}
    for size, group in groups_by_size.items():
        url = f'/Groups?filter=id eq "{group["id"]}" and members[value eq "{group["member"]}"]&excludedAttributes=members'
        costs[size] = cost(sql, lambda: api.get(url))
        assert api.get(url).get_json()["totalResults"] == 1
        assert whole_list_reads(costs[size]) == []
    assert costs[10] == costs[1000]
