"""`scim token ...` through the real root app, like an admin in a terminal."""

from __future__ import annotations

import json

import pytest

from skilljar_scim.base.errors import ExitCode

TOKEN_KEYS = {"id", "name", "scope", "created_at", "expires_at", "last_used_at", "revoked_at", "status",
              "refused_requests", "key_id"}


def _generate(cli, name: str = "Okta Production", expires: str = "90d") -> dict:
    return cli.json("token", "generate", "--name", name, "--expires", expires)


def test_token_generate_shows_value_once_in_panel(initialised) -> None:
    result = initialised("token", "generate", "--name", "Okta Production", "--expires", "90d")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("sjscim_") and result.stdout.count("\n") == 1  # only the value on stdout
    assert "will not be shown" in result.stderr and "sjscim_" not in result.stderr
    listing = initialised("token", "list")
    assert "sjscim_" not in listing.stdout and "Okta" in listing.stdout


def test_token_generate_notice_is_plain_lines_when_stderr_is_not_a_terminal(initialised) -> None:
    """A script or a log file capturing stderr gets the notice as lines, not a drawn box."""
    result = initialised("token", "generate", "--name", "Okta Production", "--expires", "90d")
    lines = result.stderr.splitlines()
    assert lines[0] == "New SCIM bearer token:" and not any(c in result.stderr for c in "╭╰│─")
    assert any(line.startswith("Name: Okta Production") for line in lines)


def test_token_generate_json_has_exactly_documented_keys(initialised) -> None:
    data = _generate(initialised)
    assert set(data) == {"id", "name", "scope", "token", "created_at", "expires_at"}
    assert data["token"].startswith("sjscim_") and data["name"] == "Okta Production"
    assert data["expires_at"].endswith("Z")


def test_token_generate_never_expires(initialised) -> None:
    assert _generate(initialised, expires="never")["expires_at"] is None


@pytest.mark.parametrize(
    "args",
    [["--name", "x"], ["--expires", "30d"], ["--name", "x", "--expires", "soon"], ["--name", " ", "--expires", "1d"]],
)
def test_token_generate_bad_input_is_usage_error(initialised, args) -> None:
    result = initialised("token", "generate", *args)
    assert result.exit_code == ExitCode.USAGE
    assert "Traceback" not in result.output
    assert initialised.json("token", "list") == []


def test_token_generate_before_init_says_run_init(cli) -> None:
    result = cli("token", "generate", "--name", "x", "--expires", "1d")
    assert result.exit_code == ExitCode.NOT_INITIALISED
    assert result.stderr.startswith("Error: ") and "scim init" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_token_list_json_and_all(initialised) -> None:
    first = _generate(initialised, "A")
    _generate(initialised, "B")
    assert initialised("token", "revoke", first["id"], "--yes").exit_code == 0
    live = initialised.json("token", "list")
    assert [t["name"] for t in live] == ["B"]
    every = initialised.json("token", "list", "--all")
    assert {t["name"]: t["status"] for t in every} == {"A": "revoked", "B": "active"}
    assert all(set(t) == TOKEN_KEYS for t in every)


def test_token_list_table_shows_columns(initialised) -> None:
    _generate(initialised)
    out = initialised("token", "list").stdout
    for column in ("id", "name", "scope", "provision", "expires", "last used", "status", "active"):
        assert column in out


def test_token_show_by_id_and_name_never_shows_value(initialised) -> None:
    data = _generate(initialised)
    by_name = initialised.json("token", "show", "okta production")
    by_id = initialised.json("token", "show", data["id"])
    assert by_name == by_id and set(by_id) == TOKEN_KEYS
    table = initialised("token", "show", data["id"]).stdout
    assert data["token"] not in table and "Okta Production" in table


def test_token_revoke_answer_no_revokes_nothing(initialised) -> None:
    data = _generate(initialised)
    result = initialised("token", "revoke", data["id"], input="n\n")
    assert result.exit_code == ExitCode.ABORTED
    assert "Okta Production" in result.stderr
    assert initialised.json("token", "show", data["id"])["status"] == "active"


def test_token_revoke_without_input_aborts(initialised) -> None:
    data = _generate(initialised)
    result = initialised("token", "revoke", data["id"], input="")
    assert result.exit_code == ExitCode.ABORTED
    assert initialised.json("token", "show", data["id"])["status"] == "active"


def test_token_revoke_answer_yes_revokes(initialised) -> None:
    data = _generate(initialised)
    result = initialised("token", "revoke", "Okta Production", input="y\n")
    assert result.exit_code == 0, result.output
    assert initialised.json("token", "show", data["id"])["status"] == "revoked"


def test_token_revoke_twice_is_conflict_exit(initialised) -> None:
    data = _generate(initialised)
    assert initialised("token", "revoke", data["id"], "--yes").exit_code == 0
    again = initialised("token", "revoke", data["id"], "--yes")
    assert again.exit_code == ExitCode.CONFLICT
    assert "already revoked" in again.stderr and len(again.stderr.strip().splitlines()) == 1


def test_token_revoke_unknown_is_not_found_exit(initialised) -> None:
    result = initialised("token", "revoke", "nope", "--yes")
    assert result.exit_code == ExitCode.NOT_FOUND
    assert result.stderr.strip() == "Error: no token with id or name 'nope'"


def test_token_revoked_cli_token_is_refused_by_authenticate(initialised, settings) -> None:
    from skilljar_scim.base import keyfile
    from skilljar_scim.domain import tokens
    from skilljar_scim.base.errors import Unauthorized
    from skilljar_scim.store import db

    data = _generate(initialised)
    initialised("token", "revoke", data["id"], "--yes")
    database = db.open_database(settings.database.url)
    try:
        with pytest.raises(Unauthorized, match="revoked"):
            tokens.authenticate(keyfile.load(settings.key_path), data["token"])
    finally:
        database.close()


@pytest.mark.parametrize("name", ["0123456789ab", "ABCDEF012345", " deadbeef0042 "])
def test_token_generate_refuses_a_name_that_looks_like_an_id(initialised, name) -> None:
    result = initialised("token", "generate", "--name", name, "--expires", "1d")
    assert result.exit_code == ExitCode.USAGE and "look like a token id" in result.stderr
    assert initialised.json("token", "list") == []


def test_token_generate_refuses_another_tokens_id_as_name(initialised) -> None:
    other = _generate(initialised, "Okta")
    result = initialised("token", "generate", "--name", other["id"], "--expires", "1d")
    assert result.exit_code == ExitCode.USAGE
    assert [t["name"] for t in initialised.json("token", "list")] == ["Okta"]


def test_token_generate_duplicate_names_the_stored_token(initialised) -> None:
    first = _generate(initialised, "Okta  Production")
    result = initialised("token", "generate", "--name", "OKTA production", "--expires", "1d")
    assert result.exit_code == ExitCode.CONFLICT
    assert "'Okta Production'" in result.stderr and first["id"] in result.stderr


def test_token_generate_help_says_what_a_date_means(initialised) -> None:
    help_text = " ".join(initialised("token", "generate", "--help").stdout.split())
    assert "a date means 00:00 UTC as that day begins" in help_text
    made = _generate(initialised, "dated", expires="2099-12-03")
    assert made["expires_at"] == "2099-12-03T00:00:00Z"


# --- which key signed a token -----------------------------------------------------------------------


def test_token_list_and_show_mark_tokens_the_current_keys_cannot_verify(initialised, settings) -> None:
    from skilljar_scim.base import keyfile

    old = _generate(initialised, "Signed by the old key")
    old_id = keyfile.key_id(keyfile.load(settings.key_path)[-1])
    assert initialised.json("token", "show", old["id"])["key_id"] == old_id
    keyfile.create(settings.key_path)  # the key file was replaced by someone else (not `scim init`)
    new = _generate(initialised, "Signed by the new key")
    listed = {row["name"]: row for row in initialised.json("token", "list")}
    assert listed["Signed by the old key"]["status"] == "unverifiable"
    assert listed["Signed by the new key"]["status"] == "active"
    assert listed["Signed by the old key"]["key_id"] == old_id != listed["Signed by the new key"]["key_id"]
    assert initialised.json("token", "show", new["id"])["status"] == "active"
    shown = initialised("token", "show", old["id"])
    assert shown.exit_code == 0 and "unverifiable" in shown.stdout and old_id in shown.stdout
    assert "unverifi" in initialised("token", "list").stdout  # the table may fold the word


def test_token_list_without_a_key_file_marks_every_token_unverifiable(initialised, settings) -> None:
    _generate(initialised, "A")
    _generate(initialised, "B")
    settings.key_path.unlink()
    result = initialised("token", "list", "--json")
    assert result.exit_code == 0, result.output
    assert [row["status"] for row in json.loads(result.stdout)] == ["unverifiable", "unverifiable"]
    assert result.stderr.strip() == f"Warning: no secret key file at {settings.key_path}: no token can be verified."
