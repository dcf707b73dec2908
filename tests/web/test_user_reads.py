"""A user is read with its groups and mapped roles in one statement (domain/memberships.column)."""

from __future__ import annotations

import pytest

from skilljar_scim.domain import events, memberships, roles

CATALOG = {"global-admin": "Global", "api-admin": "API", "codes-admin": "Codes"}


@pytest.fixture
def member(api) -> dict:
    """A user in four groups (names that sort differently by case), three of them mapped to roles."""
    api.create_user("aaa@example.com")  # listed before ann by userName: ann is on page 2 of 1
    user = api.create_user("ann@example.com")
    for name in ("beta", "Alpha", "gamma", "Zeta"):
        api.create_group(name, [user["id"]])
    for group, role in (("alpha", "global-admin"), ("alpha", "api-admin"), ("Zeta", "codes-admin"), ("beta", "api-admin")):
        roles.add_mapping(events.CLI, group, role, CATALOG)
    api.get("/Users?count=1")  # the token's last_used is written once; keep it out of the counts
    return user


@pytest.mark.parametrize("read", ["/Users/{id}", '/Users?filter=userName eq "ann@example.com"',
                                  "/Users?sortBy=userName&startIndex=2&count=1"])  # a page past the first
def test_user_reads_render_the_groups_and_roles_the_membership_query_gives(api, member, read) -> None:
    answer = api.get(read.format(id=member["id"])).get_json()
    found = [answer] if "id" in answer else answer["Resources"]
    assert [u["id"] for u in found] == [member["id"]]
    groups, held = memberships.groups_and_roles([member["id"]])
    for user in found:
        assert [(g["value"], g["display"]) for g in user["groups"]] == groups[member["id"]]
        assert [r["value"] for r in user["roles"]] == held[member["id"]] == ["api-admin", "codes-admin", "global-admin"]
    assert [g["display"] for g in found[0]["groups"]] == ["Alpha", "beta", "gamma", "Zeta"]


@pytest.mark.sqlite
def test_user_read_is_one_statement_with_its_groups_and_roles(api, member, sql) -> None:
    sql.clear()
    assert api.get(f"/Users/{member['id']}").status_code == 200
    reads = [s for s in sql if s.lstrip().upper().startswith("SELECT") and '"token"' not in s.split("WHERE")[0]]
    assert len(reads) == 1 and "scim_memberships" in reads[0], sql
