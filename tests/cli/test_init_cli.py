"""`scim init`: creates settings, database and key; idempotent; --force guarded."""

from __future__ import annotations

import os
import stat

import pytest

from skilljar_scim.base.errors import ExitCode


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_init_creates_owner_only_key(initialised, settings) -> None:
    assert mode(settings.key_path) == 0o600


@pytest.mark.sqlite
def test_init_creates_owner_only_database(initialised, settings) -> None:
    assert mode(settings.sqlite_path) == 0o600


def test_init_creates_settings_file_when_missing(cli, config_file) -> None:
    config_file.unlink()
    result = cli("init")
    assert result.exit_code == 0, result.output
    assert config_file.exists() and "Created settings file" in result.stderr
    assert (config_file.parent / "scim.key").exists() and (config_file.parent / "scim.db").exists()


def test_init_again_changes_nothing_and_says_so(initialised, settings) -> None:
    key_before = settings.key_path.read_bytes()
    result = initialised("init")
    assert result.exit_code == 0
    assert "nothing changed" in result.stderr
    assert settings.key_path.read_bytes() == key_before


def test_init_force_answer_no_keeps_key(initialised, settings) -> None:
    key_before = settings.key_path.read_bytes()
    result = initialised("init", "--force", input="n\n")
    assert result.exit_code == ExitCode.ABORTED
    assert settings.key_path.read_bytes() == key_before


def test_init_force_yes_replaces_key_and_old_tokens_stop_working(initialised, settings) -> None:
    key_before = settings.key_path.read_bytes()
    token = initialised.json("token", "generate", "--name", "x", "--expires", "1d")
    result = initialised("init", "--force", "--yes")
    assert result.exit_code == 0, result.output
    assert settings.key_path.read_bytes() != key_before
    assert mode(settings.key_path) == 0o600
    from skilljar_scim.base import keyfile
    from skilljar_scim.domain import tokens
    from skilljar_scim.base.errors import Unauthorized
    from skilljar_scim.store import db

    database = db.open_database(settings.database.url)
    try:
        try:
            tokens.authenticate(keyfile.load(settings.key_path), token["token"])
            raise AssertionError("old token still accepted")
        except Unauthorized:
            pass
    finally:
        database.close()


def test_init_refuses_key_readable_by_others(initialised, settings) -> None:
    os.chmod(settings.key_path, 0o644)
    result = initialised("token", "generate", "--name", "x", "--expires", "1d")
    assert result.exit_code == ExitCode.CONFIG
    assert "chmod 600" in result.stderr
    assert stat.S_IMODE(os.stat(settings.key_path).st_mode) == 0o644


def test_init_bad_settings_file_is_one_line_error(cli, config_file) -> None:
    config_file.write_text("[server]\nprot = 1\n")
    result = cli("init")
    assert result.exit_code == ExitCode.CONFIG
    assert result.stderr.count("\n") == 1 and "server.prot" in result.stderr and str(config_file) in result.stderr


def test_init_creates_an_owner_only_settings_file(cli, config_file) -> None:
    """It may come to hold a PostgreSQL password."""
    config_file.unlink()
    assert cli("init").exit_code == 0
    assert mode(config_file) == 0o600


def _live_token_then_lose_the_key(cli, settings) -> dict:
    token = cli.json("token", "generate", "--name", "Okta", "--expires", "1d")
    settings.key_path.unlink()
    return token


@pytest.mark.parametrize("command", [("init",), ("serve",)])
def test_init_refuses_to_replace_a_missing_key_while_tokens_live(initialised, settings, monkeypatch, command) -> None:
    from skilljar_scim.web import server

    monkeypatch.setattr(server, "serve", lambda _settings: pytest.fail("served with a new key"))
    _live_token_then_lose_the_key(initialised, settings)
    result = initialised(*command)
    assert result.exit_code == ExitCode.CONFIG, result.output
    said = result.stderr.strip()
    assert said.startswith("Error: ") and said.count("\n") == 0, said
    assert f"secret key file {settings.key_path} is missing" in said and "1 live token" in said
    assert "restore" in said and "scim init --force" in said
    assert not settings.key_path.exists()


def test_init_force_replaces_a_missing_key_and_says_the_tokens_died(initialised, settings) -> None:
    _live_token_then_lose_the_key(initialised, settings)
    result = initialised("init", "--force", "--yes")
    assert result.exit_code == 0, result.output
    assert mode(settings.key_path) == 0o600
    assert "Created secret key file" in result.stderr
    assert "1 live token(s) signed with the old key no longer work" in result.stderr
    assert initialised.json("token", "list")[0]["status"] == "unverifiable"


def test_init_recreates_a_missing_key_when_no_token_lives(initialised, settings) -> None:
    token = initialised.json("token", "generate", "--name", "Okta", "--expires", "1d")
    assert initialised("token", "revoke", token["id"], "--yes").exit_code == 0
    settings.key_path.unlink()
    result = initialised("init")
    assert result.exit_code == 0, result.output
    assert settings.key_path.exists() and "Created secret key file" in result.stderr


@pytest.mark.parametrize("command", [("init",), ("serve",)])
def test_init_warns_about_live_tokens_a_replaced_key_file_cannot_verify(initialised, settings, monkeypatch,
                                                                        command) -> None:
    from skilljar_scim.base import keyfile
    from skilljar_scim.web import server

    monkeypatch.setattr(server, "serve", lambda _settings: None)
    initialised.json("token", "generate", "--name", "Okta", "--expires", "1d")
    keyfile.create(settings.key_path)  # replaced by hand, not through `scim init --force`
    result = initialised(*command)
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if line.startswith("Warning: ")]
    assert len(warned) == 1 and "1 live token(s) were signed with a key that is not in" in warned[0]
    initialised("token", "revoke", "Okta", "--yes")
    assert "Warning" not in initialised(*command).stderr  # a revoked token is no concern


def _endpoint_secrets(settings) -> list[str]:
    """The secrets that sign for the one webhook endpoint, opened with the key file as it is now."""
    from datetime import datetime, timezone

    from skilljar_scim.base import keyfile
    from skilljar_scim.domain import webhooks
    from skilljar_scim.store import db, models

    database = db.open_database(settings.database.url)
    try:
        endpoint = models.WebhookEndpoint.get()
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        return webhooks.signing_secrets(keyfile.load(settings.key_path), endpoint, now)
    finally:
        database.close()


def test_init_force_reseals_webhook_secrets_under_the_new_key(initialised, settings) -> None:
    """Replacing the key must not silently break every webhook endpoint's signing (its secret is sealed with it)."""
    added = initialised.json("webhooks", "add", "https://example.com/hook", "--json")
    rotated = initialised.json("webhooks", "rotate-secret", added["id"], "--overlap", "24h", "--json")
    key_before = settings.key_path.read_bytes()
    result = initialised("init", "--force", "--yes")
    assert result.exit_code == 0, result.output
    assert settings.key_path.read_bytes() != key_before
    assert _endpoint_secrets(settings) == [rotated["secret"], added["secret"]]
    assert "webhook" not in result.stderr


def test_init_force_after_the_key_file_is_lost_names_the_endpoints_to_rotate(initialised, settings) -> None:
    added = initialised.json("webhooks", "add", "https://example.com/hook", "--json")
    settings.key_path.unlink()
    result = initialised("init", "--force", "--yes")
    assert result.exit_code == 0, result.output
    warning = [line for line in result.stderr.splitlines() if "webhook" in line]
    assert len(warning) == 1 and added["id"] in warning[0] and "rotate-secret" in warning[0]
    rotated = initialised.json("webhooks", "rotate-secret", added["id"], "--overlap", "0", "--json")
    assert _endpoint_secrets(settings) == [rotated["secret"]]
