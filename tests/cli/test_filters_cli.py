"""Filters never fail silently; events read like sentences; a role gone from the catalog is flagged (issue 13)."""

from __future__ import annotations

import json
import os
import pty
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from skilljar_scim.base import clock
from skilljar_scim.base.errors import ExitCode
from skilljar_scim.domain import events


@pytest.fixture
def team(api, initialised):
    """alice and bob in Engineering (mapped to api-admin), carol alone."""
    alice = api.create_user("alice@example.com")
    bob = api.create_user("bob@example.com")
    api.create_user("carol@example.com")
    group = api.create_group("Engineering", [bob["id"], alice["id"]])
    assert initialised("mappings", "add", "Engineering", "api-admin").exit_code == 0
    return {"cli": initialised, "api": api, "alice": alice, "bob": bob, "group": group}


@pytest.mark.parametrize("args, text", [
    (["events", "list", "--action", "user.create"], "unknown action 'user.create': choose one of user.created"),
    (["users", "list", "--role", "nosuch"], "unknown role 'nosuch'; valid: analytics-admin"),
    (["users", "list", "--group", "Engineerin"], "did you mean 'Engineering'?"),
    (["users", "list", "--group", "nosuch"], "no group with id or displayName 'nosuch'; see `scim groups list`"),
    (["events", "list", "--group", "nosuch"], "no group with id or displayName 'nosuch'"),
    (["events", "list", "--user", "nobody@example.com"], "no user with id or userName 'nobody@example.com'"),
    (["events", "list", "--since", "yesterday"], "--since must be a duration (30m, 1h, 7d, 2w) or an ISO date"),
])
def test_filters_unknown_values_are_usage_errors_naming_the_valid_ones(team, args, text) -> None:
    result = team["cli"](*args)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert result.stderr.startswith("Error: ") and text in result.stderr and result.stderr.count("\n") == 1


def test_filters_known_values_still_filter(team) -> None:
    cli = team["cli"]
    assert [u["userName"] for u in cli.json("users", "list", "--role", "api-admin")] == ["alice@example.com", "bob@example.com"]
    assert [e["action"] for e in cli.json("events", "list", "--action", "mapping.added")] == ["mapping.added"]


@pytest.mark.parametrize("since, expected", [("1h", 3600), ("30m", 1800), ("7d", 7 * 86400), ("2w", 14 * 86400)])
def test_filters_since_takes_durations(since, expected) -> None:
    now = clock.utcnow()
    assert (now - clock.parse_since(since, now)).total_seconds() == expected
    assert clock.parse_since("2026-01-02", now) == clock.parse_iso("2026-01-02")


def test_filters_since_duration_selects_recent_events(team) -> None:
    cli = team["cli"]
    assert len(cli.json("events", "list", "--since", "1h", "--limit", "500")) == len(cli.json("events", "list", "--limit", "500"))
    future = cli.json("events", "list", "--since", "2999-01-01")
    assert future == []


def test_filters_events_read_as_names_not_reprs_or_ids(team) -> None:
    cli, alice = team["cli"], team["alice"]
    team["api"].delete(f"/Users/{alice['id']}")  # user.deprovisioned: {"groups": [...], "userName": ...}
    team["api"].create_user("alice@example.com")  # user.reactivated: {"returning": true, ...}
    out = cli("events", "list", "--limit", "500").stdout
    assert "['" not in out and "True" not in out and "{" not in out
    assert "groups: Engineering" in out and "returning: yes" in out
    membership = [line for line in out.splitlines() if "\tmembership.added\t" in line]
    assert membership and all(alice["id"] not in line and team["bob"]["id"] not in line for line in membership)
    assert any("Group Engineering" in line and "user: alice@example.com" in line for line in membership)
    assert any(f"User alice@example.com\t" in line for line in out.splitlines())


@pytest.fixture
def shrunk(team):
    """Engineering -> api-admin mapped, then api-admin removed from [roles.catalog]."""
    config_file = team["cli"].config_file
    catalog = {"global-admin": "Everything."}
    config_file.write_text(config_file.read_text() + "\n[roles.catalog]\n"
                           + "".join(f'"{k}" = "{v}"\n' for k, v in catalog.items()))
    return team


def test_filters_role_removed_from_catalog_is_flagged_everywhere(shrunk) -> None:
    cli = shrunk["cli"]
    [mapping] = cli.json("mappings", "list")
    assert mapping["role"] == "api-admin" and mapping["in_catalog"] is False
    assert "not in [roles.catalog]: still granted" in cli("mappings", "list").stdout
    roles = {r["role"]: r for r in cli.json("roles", "list")}
    assert roles["api-admin"]["in_catalog"] is False and roles["global-admin"]["in_catalog"] is True
    assert "mapped, not in [roles.catalog]" in cli("roles", "list").stdout
    # Still granted, as the note says, and still a valid --role filter.
    assert cli.json("users", "show", "alice@example.com")["roles"] == ["api-admin"]
    assert len(cli.json("users", "list", "--role", "api-admin")) == 2
    assert cli("mappings", "add", "Engineering", "api-admin").exit_code == ExitCode.USAGE  # no new ones


@pytest.mark.e2e
@pytest.mark.sqlite
def test_filters_serve_warns_at_start_up_about_uncatalogued_roles(make_server) -> None:
    server = make_server(start=False, workers=1, threads=2)
    assert server.cli("init").returncode == 0
    assert server.cli("mappings", "add", "Engineering", "global-admin").returncode == 0
    with sqlite3.connect(server.db_path) as db:  # as if [roles.catalog] had lost the role since
        db.execute("UPDATE role_mapping SET role = 'old-admin'")
    server.start()
    server.stop()
    log = server.log.read_text()
    assert "Warning: mapping 'Engineering' -> 'old-admin': the role is not in [roles.catalog] but is still granted" in log


def test_filters_plan_counts_first_rows_sorted_and_limited(team) -> None:
    cli, api = team["cli"], team["api"]
    zed = api.create_user("zed@example.com")
    api.patch(f"/Groups/{team['group']['id']}", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
              "Operations": [{"op": "add", "path": "members", "value": [{"value": zed["id"]}]}]})
    result = cli("mappings", "plan", "add", "Engineering", "codes-admin", "--limit", "2")
    assert result.exit_code == 0, result.output
    notes = result.stderr.splitlines()
    assert notes[:2] == ["Would add mapping 'Engineering' -> codes-admin.", "Would grant 3 role(s) and revoke 0."]
    rows = [line.split("\t") for line in result.stdout.splitlines()[1:] if line]
    assert [r[0] for r in rows] == ["alice@example.com", "bob@example.com"]
    assert "Showing 2 of 3 role changes" in result.stderr
    data = cli.json("mappings", "plan", "add", "Engineering", "codes-admin", "--limit", "1")
    assert data["dry_run"] is True and data["gains"] == 3 and data["losses"] == 0 and len(data["changes"]) == 1
    assert cli.json("mappings", "list")[0]["role"] == "api-admin" and len(cli.json("mappings", "list")) == 1


def test_filters_export_with_json_prints_json_and_import_says_dry_run(team, tmp_path) -> None:
    cli = team["cli"]
    exported = cli("--json", "mappings", "export")
    assert json.loads(exported.stdout) == {"mappings": {"Engineering": ["api-admin"]}}
    assert cli("mappings", "export", "--format", "toml", "--json").exit_code == ExitCode.USAGE
    (tmp_path / "m.json").write_text(json.dumps({"mappings": {"Engineering": ["codes-admin"]}}))
    report = cli.json("mappings", "import", str(tmp_path / "m.json"), "--replace", "--dry-run")
    assert report["dry_run"] is True and report["added"] == [{"group": "Engineering", "role": "codes-admin"}]
    assert cli.json("mappings", "import", str(tmp_path / "m.json"))["dry_run"] is False


def _run_with_terminal_stderr(args: list[str], cwd) -> tuple[int, str, str]:
    """Run `scim ARGS` with stdout a pipe and stderr a pseudo-terminal; return (status, stdout, stderr)."""
    main, child = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "skilljar_scim", *args], stdout=subprocess.PIPE, stderr=child,
                               cwd=cwd, env={**os.environ, "COLUMNS": "120"})
    os.close(child)
    out = process.stdout.read()
    status = process.wait(timeout=60)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    return status, out.decode(), b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.parametrize("args, message", [
    (["mappings", "plan", "add", "Engineering", "codes-admin"], "Computing role changes"),
    (["users", "list", "--json"], "Listing users"),
    (["db", "check"], "Checking the database"),
])
def test_filters_progress_only_on_a_terminal_stderr(team, tmp_path, args, message) -> None:
    config = ["--config", str(team["cli"].config_file)]
    if args[0] == "db" and os.environ.get("SKILLJAR_SCIM_TEST_DATABASE_URL"):
        args = ["mappings", "plan", "remove", "Engineering", "api-admin"]
        message = "Computing role changes"
    status, out, err = _run_with_terminal_stderr([*config, *args], tmp_path)
    assert status == 0, err
    assert message in err and message not in out
    piped = subprocess.run([sys.executable, "-m", "skilljar_scim", *config, *args], capture_output=True, text=True,
                           cwd=tmp_path, timeout=60)
    assert piped.returncode == 0 and message not in piped.stderr and message not in piped.stdout


def test_filters_events_record_only_known_actions() -> None:
    """Every action the package records is one `--action` accepts (events.ACTIONS)."""
    package = Path(events.__file__).resolve().parents[1]
    recorded = set()
    for path in package.rglob("*.py"):
        recorded |= set(re.findall(r'record(?:_many)?\([^"\n]*"([a-z_]+\.[a-z_]+)"', path.read_text()))
    assert recorded and recorded <= set(events.ACTIONS), recorded - set(events.ACTIONS)
