"""Every `--json` shape is the one README's "JSON output" table documents, and every such command is there."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer.main

from skilljar_scim.cli.main import app

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _documented() -> dict[str, tuple[str, list[str]]]:
    """Parse README's JSON table: command -> ("array" | "object", [keys])."""
    section = README.split("### JSON output", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| `scim "):
            command, prints, keys = (cell.strip() for cell in line.strip().strip("|").split("|"))
            rows[command.strip("`")] = (prints, re.findall(r"`([^`]+)`", keys))
    return rows


DOCUMENTED = _documented()

# How each documented command is run on the seeded store (see `seeded`).
RUNS = {
    "scim token generate": ["token", "generate", "--name", "shape", "--expires", "30d"],
    "scim token list": ["token", "list", "--all"],
    "scim token show": ["token", "show", "Test IdP"],
    "scim token revoke": ["token", "revoke", "doomed", "--yes"],
    "scim users list": ["users", "list"],
    "scim users show": ["users", "show", "alice@example.com"],
    "scim groups list": ["groups", "list"],
    "scim groups show": ["groups", "show", "Engineering"],
    "scim roles list": ["roles", "list"],
    "scim mappings list": ["mappings", "list"],
    "scim mappings add": ["mappings", "add", "Engineering", "codes-admin"],
    "scim mappings remove": ["mappings", "remove", "Engineering", "api-admin"],
    "scim mappings plan": ["mappings", "plan", "remove", "Engineering", "api-admin"],
    "scim mappings import": ["mappings", "import", "{folder}/mappings.json", "--replace", "--dry-run"],
    "scim mappings export": ["mappings", "export"],
    "scim mappings rebind": ["mappings", "rebind", "Engineering", "--dry-run"],
    "scim events list": ["events", "list"],
    "scim events tail": ["events", "tail"],
    "scim db backup": ["db", "backup", "{folder}/copy.db"],
    "scim db check": ["db", "check"],
    "scim status": ["status"],
    "scim webhooks add": ["webhooks", "add", "http://127.0.0.1:9/other"],
    "scim webhooks list": ["webhooks", "list"],
    "scim webhooks show": ["webhooks", "show", "{endpoint}"],
    "scim webhooks enable": ["webhooks", "enable", "{endpoint}"],
    "scim webhooks test": ["webhooks", "test", "{endpoint}"],
    "scim webhooks rotate-secret": ["webhooks", "rotate-secret", "{endpoint}", "--overlap", "1h"],
    "scim webhooks deliveries": ["webhooks", "deliveries", "{endpoint}"],
    "scim webhooks resend": ["webhooks", "resend", "{event}"],
    "scim webhooks deliver": ["webhooks", "deliver", "--once"],
}


@pytest.fixture
def seeded(api, initialised, tmp_path):
    """Two users in Engineering mapped to api-admin, a token to revoke, a mapping file."""
    alice = api.create_user("alice@example.com", displayName="Alice")
    bob = api.create_user("bob@example.com")
    api.create_group("Engineering", [alice["id"], bob["id"]])
    assert initialised("mappings", "add", "Engineering", "api-admin").exit_code == 0
    assert initialised("token", "generate", "--name", "doomed", "--expires", "1d").exit_code == 0
    (tmp_path / "mappings.json").write_text(json.dumps({"mappings": {"Support": ["codes-admin"]}}))
    endpoint = initialised.json("webhooks", "add", "http://127.0.0.1:9/hook")["id"]
    event = initialised.json("webhooks", "test", endpoint)["event_id"]
    initialised.places = {"folder": tmp_path, "endpoint": endpoint, "event": event}
    return initialised


def _keys(item: dict, documented: list[str]) -> tuple[set[str], set[str]]:
    """Return (actual, expected) key paths; an empty list stands for its documented sub-keys."""
    actual = set()
    for key, value in item.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            actual |= {f"{key}[].{sub}" for v in value for sub in v}
        else:
            actual.add(key)
    expected = {k.split("[]", 1)[0] if "[]" in k and item.get(k.split("[]", 1)[0]) == [] else k for k in documented}
    return actual, expected


@pytest.mark.parametrize("command", [
    pytest.param(c, marks=pytest.mark.sqlite) if c == "scim db backup" else c for c in sorted(DOCUMENTED)])
def test_json_output_matches_readme_table(seeded, tmp_path, command) -> None:
    prints, documented = DOCUMENTED[command]
    args = [a.format(**seeded.places) for a in RUNS[command]]
    result = seeded(*args, "--json")
    assert result.exit_code == 0, result.output
    if prints == "lines":  # a stream: one object per line
        data = [json.loads(line) for line in result.stdout.splitlines()]
        assert all(isinstance(item, dict) for item in data), f"{command} should print one JSON object per line"
    else:
        data = json.loads(result.stdout)
    items = data if prints in ("array", "lines") else [data]
    assert isinstance(data, list if prints in ("array", "lines") else dict), f"{command} should print a JSON {prints}"
    assert items, f"{command}: seed something so the keys can be checked"
    for item in items:
        actual, expected = _keys(item, documented)
        assert actual == expected, f"{command}: README documents {sorted(expected)}, prints {sorted(actual)}"


def test_json_output_every_json_command_is_documented() -> None:
    """A command that takes --json must have a row in the README table (and a run here)."""
    root = typer.main.get_command(app)
    context = typer.Context(root)
    found = set()
    for name in root.list_commands(context):
        command = root.get_command(context, name)
        subs = getattr(command, "commands", {name: command})
        for sub_name, sub in subs.items():
            path = f"scim {name}" if sub is command else f"scim {name} {sub_name}"
            if any("--json" in param.opts for param in sub.params):
                found.add(path)
    assert found == set(DOCUMENTED), f"undocumented: {found - set(DOCUMENTED)}; stale: {set(DOCUMENTED) - found}"
    assert set(RUNS) == set(DOCUMENTED)


def test_json_output_root_flag_equals_command_flag(seeded) -> None:
    before = seeded.json("token", "list")
    after = json.loads(seeded("--json", "token", "list").stdout)
    assert before == after


def test_json_output_listing_is_one_object_per_line(seeded) -> None:
    lines = seeded("users", "list", "--json").stdout.splitlines()
    assert lines[0] == "[" and lines[-1] == "]"
    assert [json.loads(line.rstrip(","))["userName"] for line in lines[1:-1]] == ["alice@example.com", "bob@example.com"]


def test_json_output_empty_listing_is_empty_array(initialised) -> None:
    assert initialised("users", "list", "--json").stdout == "[]\n"
