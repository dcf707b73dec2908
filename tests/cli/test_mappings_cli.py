"""Role sync from the CLI: mappings, previews, import/export, and why a user has a role."""

from __future__ import annotations

import json

import pytest

from skilljar_scim.base.errors import ExitCode


@pytest.fixture
def team(api, initialised):
    """Two users in Engineering, one in Support, pushed over SCIM."""
    alice = api.create_user("alice@example.com")
    bob = api.create_user("bob@example.com")
    carol = api.create_user("carol@example.com")
    eng = api.create_group("Engineering", [alice["id"], bob["id"]])
    support = api.create_group("Support", [carol["id"]])
    return {"alice": alice, "bob": bob, "carol": carol, "eng": eng, "support": support, "cli": initialised, "api": api}


def _roles(cli, user: str) -> list[str]:
    return cli.json("users", "show", user)["roles"]


def test_mappings_add_grants_role_to_members_with_provenance(team) -> None:
    cli = team["cli"]
    result = cli.json("mappings", "add", "engineering", "api-admin")
    assert result["added"] == [{"group": "engineering", "role": "api-admin"}]
    assert {c["userName"] for c in result["changes"]} == {"alice@example.com", "bob@example.com"}
    cli.json("mappings", "add", "Support", "codes-admin")  # a second mapping: its id must not be the one shown
    mapping_ids = {(m["group"], m["role"]): m["id"] for m in cli.json("mappings", "list")}
    assert len(set(mapping_ids.values())) == 2
    shown = cli.json("users", "show", "alice@example.com")
    assert shown["roles"] == ["api-admin"]
    assert shown["grants"] == [{"role": "api-admin", "group": "Engineering", "group_id": team["eng"]["id"],
                                "mapping_id": mapping_ids[("engineering", "api-admin")]}]
    assert _roles(cli, "carol@example.com") == ["codes-admin"]


def test_mappings_list_shows_the_pinned_group_and_rebind_moves_it(team) -> None:
    cli, api = team["cli"], team["api"]
    cli("mappings", "add", "Engineering", "api-admin")
    row = cli.json("mappings", "list")[0]
    assert (row["group_id"], row["pinned_group"], row["status"], row["conflict_group_id"]) == \
        (team["eng"]["id"], "Engineering", "pinned", None)
    api.delete(f"/Groups/{team['eng']['id']}")
    newer = api.create_group("engineering", [team["carol"]["id"]])
    row = cli.json("mappings", "list")[0]
    assert (row["status"], row["conflict_group_id"], row["member_count"]) == ("conflict", newer["id"], 0)
    table = cli("mappings", "list").stdout
    assert "conflict" in table and "rebind" in table
    assert _roles(cli, "carol@example.com") == []
    planned = cli.json("mappings", "rebind", "Engineering", "--dry-run")
    assert planned["dry_run"] and planned["rebound"] == [{"group": "Engineering", "role": "api-admin"}]
    assert _roles(cli, "carol@example.com") == []
    done = cli.json("mappings", "rebind", "Engineering")
    assert [(c["userName"], c["change"]) for c in done["changes"]] == [("carol@example.com", "gain")]
    assert _roles(cli, "carol@example.com") == ["api-admin"]
    assert cli.json("mappings", "list")[0]["status"] == "pinned"
    assert "nothing changed" in cli("mappings", "rebind", "Engineering").stderr
    missing = cli("mappings", "rebind", "Nobody")
    assert missing.exit_code == ExitCode.NOT_FOUND and missing.stderr.startswith("Error: ")


def test_mappings_add_twice_is_noop_exit_zero(team) -> None:
    cli = team["cli"]
    cli("mappings", "add", "Engineering", "api-admin")
    again = cli("mappings", "add", "ENGINEERING", "api-admin")
    assert again.exit_code == 0 and "already exists" in again.stderr
    assert len(cli.json("mappings", "list")) == 1


def test_mappings_remove_absent_is_noop_exit_zero(team) -> None:
    result = team["cli"]("mappings", "remove", "Nobody", "api-admin")
    assert result.exit_code == 0 and "nothing changed" in result.stderr


def test_mappings_unknown_role_lists_valid_ones(team) -> None:
    result = team["cli"]("mappings", "add", "Engineering", "wizard")
    assert result.exit_code == ExitCode.USAGE
    assert "unknown role 'wizard'" in result.stderr and "global-admin" in result.stderr
    assert team["cli"].json("mappings", "list") == []


def test_mappings_before_group_exists_applies_when_pushed(team) -> None:
    cli, api = team["cli"], team["api"]
    cli("mappings", "add", "Analysts", "analytics-admin")
    assert cli.json("mappings", "list")[0]["group_id"] is None
    api.create_group("analysts", [team["carol"]["id"]])
    assert _roles(cli, "carol@example.com") == ["analytics-admin"]


def test_mappings_plan_matches_apply(team) -> None:
    cli = team["cli"]
    planned = cli.json("mappings", "plan", "add", "Engineering", "codes-admin")
    assert cli.json("mappings", "list") == []  # a plan changes nothing
    applied = cli.json("mappings", "add", "Engineering", "codes-admin")
    assert planned["changes"] == applied["changes"]
    planned = cli.json("mappings", "plan", "remove", "Engineering", "codes-admin")
    applied = cli.json("mappings", "remove", "Engineering", "codes-admin")
    assert planned["changes"] == applied["changes"] and {c["change"] for c in applied["changes"]} == {"lose"}


def test_mappings_remove_keeps_role_granted_by_another_group(team) -> None:
    cli, api = team["cli"], team["api"]
    api.ops(f"/Groups/{team['support']['id']}", {"op": "add", "path": "members", "value": [{"value": team["alice"]["id"]}]})
    cli("mappings", "add", "Engineering", "api-admin")
    cli("mappings", "add", "Support", "api-admin")
    result = cli.json("mappings", "remove", "Engineering", "api-admin")
    assert [c["userName"] for c in result["changes"]] == ["bob@example.com"]
    assert _roles(cli, "alice@example.com") == ["api-admin"]


def test_mappings_export_import_round_trip(team, tmp_path) -> None:
    cli = team["cli"]
    cli("mappings", "add", "Engineering", "api-admin")
    cli("mappings", "add", "Support", "codes-admin")
    for fmt in ("toml", "json"):
        exported = cli("mappings", "export", "--format", fmt)
        assert exported.exit_code == 0
        path = tmp_path / f"m.{fmt}"
        path.write_text(exported.stdout)
        cli("mappings", "remove", "Engineering", "api-admin")
        result = cli.json("mappings", "import", str(path))
        assert result["added"] == [{"group": "Engineering", "role": "api-admin"}]
        assert {(m["group"], m["role"]) for m in cli.json("mappings", "list")} == {
            ("Engineering", "api-admin"), ("Support", "codes-admin")}


def test_mappings_import_replace_and_dry_run(team, tmp_path) -> None:
    cli = team["cli"]
    cli("mappings", "add", "Support", "codes-admin")
    path = tmp_path / "m.toml"
    path.write_text('[mappings]\n"Engineering" = ["api-admin"]\n')
    preview = cli.json("mappings", "import", str(path), "--replace", "--dry-run")
    assert preview["added"] == [{"group": "Engineering", "role": "api-admin"}]
    assert preview["removed"] == [{"group": "Support", "role": "codes-admin"}]
    assert [(m["group"], m["role"]) for m in cli.json("mappings", "list")] == [("Support", "codes-admin")]
    applied = cli.json("mappings", "import", str(path), "--replace")
    assert applied["changes"] == preview["changes"]
    assert [(m["group"], m["role"]) for m in cli.json("mappings", "list")] == [("Engineering", "api-admin")]


@pytest.mark.parametrize("content", [
    '[mappings]\n"Engineering" = ["api-admin"]\n"Support" = ["wizard"]\n',
    '[mappings]\n"Engineering" = "api-admin"\n',
    '[mappings\n',
    'nothing = 1\n',
])
def test_mappings_import_is_all_or_nothing(team, tmp_path, content) -> None:
    path = tmp_path / "m.toml"
    path.write_text(content)
    result = team["cli"]("mappings", "import", str(path))
    assert result.exit_code == ExitCode.USAGE and result.stderr.startswith("Error:")
    assert team["cli"].json("mappings", "list") == []


def test_roles_list_shows_catalog(initialised) -> None:
    rows = initialised.json("roles", "list")
    names = {r["role"] for r in rows}
    assert {"global-admin", "course-management-limited", "analytics-limited"} <= names
    assert all(r["description"] for r in rows)


def test_users_list_filters(team) -> None:
    cli, api = team["cli"], team["api"]
    cli("mappings", "add", "Engineering", "api-admin")
    api.ops(f"/Users/{team['bob']['id']}", {"op": "replace", "value": {"active": False}})
    api.delete(f"/Users/{team['carol']['id']}")
    names = lambda *args: [u["userName"] for u in cli.json("users", "list", *args)]  # noqa: E731
    assert names() == ["alice@example.com", "bob@example.com", "carol@example.com"]
    assert names("--active") == ["alice@example.com"]
    assert names("--inactive") == ["bob@example.com"]
    assert names("--deprovisioned") == ["carol@example.com"]
    assert names("--role", "api-admin") == ["alice@example.com"]  # bob is inactive: no roles
    assert names("--group", "Engineering") == ["alice@example.com", "bob@example.com"]
    assert names("--search", "CAROL") == ["carol@example.com"]
    assert names("--limit", "1") == ["alice@example.com"]


def test_users_list_json_keys_are_stable(team) -> None:
    rows = team["cli"].json("users", "list")
    assert all(set(r) == {"id", "userName", "displayName", "email", "externalId", "status", "created_at", "updated_at"}
               for r in rows)


def test_users_show_unknown_is_not_found(initialised) -> None:
    result = initialised("users", "show", "nobody")
    assert result.exit_code == ExitCode.NOT_FOUND


def test_groups_list_and_show(team) -> None:
    cli = team["cli"]
    cli("mappings", "add", "Engineering", "api-admin")
    listed = {g["displayName"]: g for g in cli.json("groups", "list")}
    assert listed["Engineering"]["member_count"] == 2 and listed["Engineering"]["roles"] == ["api-admin"]
    shown = cli.json("groups", "show", "engineering", "--page-size", "1", "--page", "2")
    assert shown["member_count"] == 2 and [m["userName"] for m in shown["members"]] == ["bob@example.com"]
    table = cli("groups", "show", team["eng"]["id"]).stdout
    assert "alice@example.com" in table and "api-admin" in table


def test_users_purge_refuses_active_and_removes_deprovisioned(team) -> None:
    cli, api = team["cli"], team["api"]
    refused = cli("users", "purge", "alice@example.com", "--yes")
    assert refused.exit_code == ExitCode.CONFLICT
    api.delete(f"/Users/{team['carol']['id']}")
    aborted = cli("users", "purge", "carol@example.com", input="n\n")
    assert aborted.exit_code == ExitCode.ABORTED
    assert cli("users", "purge", "carol@example.com", "--yes").exit_code == 0
    assert cli("users", "show", "carol@example.com").exit_code == ExitCode.NOT_FOUND
    events = cli.json("events", "list", "--limit", "500")
    purged = [e for e in events if e["action"] == "user.purged"]
    assert len(purged) == 1 and purged[0]["resource_id"] == team["carol"]["id"]  # what consumers erase by
    others = json.dumps([e for e in events if e["action"] != "user.purged"])
    assert "carol@example.com" not in json.dumps(events) and team["carol"]["id"] not in others


def test_events_list_filters(team) -> None:
    cli = team["cli"]
    cli("mappings", "add", "Engineering", "api-admin")
    created = cli.json("events", "list", "--action", "user.created")
    assert len(created) == 3 and all(e["actor"] == "token:Test IdP" for e in created)
    alice = cli.json("events", "list", "--user", "alice@example.com")
    assert {"user.created", "membership.added", "role.granted"} <= {e["action"] for e in alice}
    by_group = cli.json("events", "list", "--group", "Engineering")
    assert {e["action"] for e in by_group} >= {"group.created", "membership.added"}
    assert cli.json("events", "list", "--token", "Test IdP", "--limit", "2").__len__() == 2
    assert cli.json("events", "list", "--since", "2999-01-01") == []
    assert cli("events", "list", "--since", "soon").exit_code == ExitCode.USAGE
