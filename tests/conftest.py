"""Shared fixtures: a fresh settings file, database and key per test, and the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skilljar_scim import config, keyfile
from skilljar_scim.cli.main import app
from skilljar_scim.store import db as store_db


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A settings file pointing at a database and key in the test's own folder."""
    path = tmp_path / "scim.toml"
    path.write_text('[database]\nurl = "sqlite:///scim.db"\n\n[security]\nsecret_key_file = "scim.key"\n')
    return path


@pytest.fixture
def settings(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> config.Settings:
    for name in list(__import__("os").environ):
        if name.startswith(config.ENV_PREFIX):
            monkeypatch.delenv(name)
    return config.load(config_file)


@pytest.fixture
def store(settings: config.Settings):
    """An initialised, open database (with its key file), closed after the test."""
    keyfile.create(settings.key_path)
    database = store_db.open_database(settings.database.url, create=True)
    yield database
    database.close()


@pytest.fixture
def keys(settings: config.Settings, store) -> list[str]:
    return keyfile.load(settings.key_path)


class Cli:
    """Run the real root app with --config, like an admin in a terminal."""

    def __init__(self, config_file: Path):
        self.config_file = config_file
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None):
        return self.runner.invoke(app, ["--config", str(self.config_file), *args], input=input)

    def json(self, *args: str):
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def cli(config_file: Path, settings) -> Cli:
    return Cli(config_file)


@pytest.fixture
def initialised(cli: Cli) -> Cli:
    result = cli("init")
    assert result.exit_code == 0, result.output
    return cli
