"""`scim token generate --scope`, and the scope in `token list` and `token show`."""

from __future__ import annotations

from skilljar_scim.base.errors import ExitCode


def test_token_scope_defaults_to_provision_and_read_is_shown(initialised) -> None:
    cli = initialised
    assert cli.json("token", "generate", "--name", "Okta", "--expires", "30d")["scope"] == "provision"
    made = cli.json("token", "generate", "--name", "Dashboard", "--expires", "30d", "--scope", "read")
    assert made["scope"] == "read"
    assert {t["name"]: t["scope"] for t in cli.json("token", "list")} == {"Okta": "provision", "Dashboard": "read"}
    assert cli.json("token", "show", "Dashboard")["scope"] == "read"
    table = cli("token", "list")
    assert "scope" in table.stdout and "read" in table.stdout and "provision" in table.stdout
    shown = cli("token", "show", made["id"])
    assert "scope" in shown.stdout and "read" in shown.stdout


def test_token_scope_panel_names_where_the_token_goes(initialised) -> None:
    result = initialised("token", "generate", "--name", "Dashboard", "--expires", "30d", "--scope", "read")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("sjscim_") and "Scope: read" in result.stderr and "events API" in result.stderr


def test_token_scope_unknown_is_a_usage_error_and_creates_nothing(initialised) -> None:
    result = initialised("token", "generate", "--name", "X", "--expires", "30d", "--scope", "admin")
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.strip().splitlines() == ["Error: unknown scope 'admin': choose provision or read"]
    assert initialised.json("token", "list") == []
