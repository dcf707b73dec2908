"""Settings: precedence, the sample file, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from skilljar_scim.base import config
from skilljar_scim.base.errors import ConfigError, ExitCode

SAMPLE_CONFIG = Path(__file__).resolve().parents[1] / "sample_config.toml"


def test_config_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    path = tmp_path / "scim.toml"
    path.write_text("[server]\nport = 9000\nhost = \"0.0.0.0\"\nthreads = 3\n")
    env = {"SKILLJAR_SCIM_SERVER_HOST": "10.0.0.1", "SKILLJAR_SCIM_SERVER_THREADS": "5"}
    settings = config.load(path, env=env, overrides={"server.threads": 7})
    assert settings.server.port == 9000  # file beats default
    assert settings.server.host == "10.0.0.1"  # env beats file
    assert settings.server.threads == 7  # flag beats env
    assert settings.server.base_path == "/scim/v2"  # default stays


def test_config_defaults_without_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = config.load(None, env={})
    assert settings.config_file is None
    assert settings.database.url == f"sqlite:///{tmp_path / 'scim.db'}"


def test_config_file_from_env_variable(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text("[server]\nport = 1234\n")
    assert config.load(None, env={"SKILLJAR_SCIM_CONFIG": str(path)}).server.port == 1234


def test_config_relative_paths_resolve_against_file_folder(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "scim.toml").write_text('[database]\nurl = "sqlite:///data/s.db"\n[security]\nsecret_key_file = "k"\n')
    settings = config.load(folder / "scim.toml", env={})
    assert settings.sqlite_path == folder / "data" / "s.db"
    assert settings.key_path == folder / "k"


def test_config_sample_file_loads_as_is() -> None:
    settings = config.load(SAMPLE_CONFIG, env={})
    assert settings.config_file == SAMPLE_CONFIG
    assert settings.server.base_path == "/scim/v2"


def test_config_sample_file_documents_every_key() -> None:
    text = SAMPLE_CONFIG.read_text()
    lines = text.splitlines()
    for section, factory in config.SECTIONS.items():
        assert f"[{section}]" in lines
        for name in factory.__dataclass_fields__:
            starts = (f"{name} =", f"[{section}.{name}]")
            index = next(i for i, line in enumerate(lines) if line.startswith(starts))
            assert lines[index - 1].startswith("#"), f"{section}.{name} has no comment"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[server]\nprot = 1\n", "unknown setting 'server.prot'"),
        ("[serverz]\nport = 1\n", "unknown section [serverz]"),
        ("[server]\nport = \"high\"\n", "'server.port' must be an integer"),
        ("[server]\nhost = 5\n", "'server.host' must be a string"),
        ("[server\nport = 1\n", "cannot read settings"),
        ("server = 3\n", "[server] must be a table"),
        ("[server]\nport = -1\n", "must not be negative"),
        ("[database]\nprepared_statements = \"no\"\n", "'database.prepared_statements' must be true or false"),
        ("[database]\nprepared_statements = 0\n", "'database.prepared_statements' must be true or false"),
        ("[server]\ngroup_patch_response = \"bogus\"\n",
         "'server.group_patch_response' must be one of no-content, resource, got 'bogus'"),
    ],
)
def test_config_bad_file_is_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        config.load(path, env={})
    assert message in caught.value.detail
    assert str(path) in caught.value.detail
    assert caught.value.exit_code == ExitCode.CONFIG


def test_config_sample_catalog_is_the_default() -> None:
    assert config.load(SAMPLE_CONFIG, env={}).roles.catalog == config.DASHBOARD_ROLES


def test_config_roles_catalog_from_file_and_env(tmp_path: Path) -> None:
    path = tmp_path / "scim.toml"
    path.write_text('[roles.catalog]\n"support-admin" = "Support desk"\n')
    assert config.load(path, env={}).roles.catalog == {"support-admin": "Support desk"}
    env = {"SKILLJAR_SCIM_ROLES_CATALOG": '{"x": "y"}'}
    assert config.load(path, env=env).roles.catalog == {"x": "y"}
    with pytest.raises(ConfigError, match="roles.catalog"):
        config.load(path, env={"SKILLJAR_SCIM_ROLES_CATALOG": "[1]"})


def test_config_group_patch_response_defaults_to_no_content_and_accepts_resource(tmp_path: Path) -> None:
    assert config.load(None, env={}).server.group_patch_response == "no-content"
    assert config.load(SAMPLE_CONFIG, env={}).server.group_patch_response == "no-content"
    path = tmp_path / "scim.toml"
    path.write_text('[server]\ngroup_patch_response = "resource"\n')
    assert config.load(path, env={}).server.group_patch_response == "resource"
    env = {"SKILLJAR_SCIM_SERVER_GROUP_PATCH_RESPONSE": "no-content"}
    assert config.load(path, env=env).server.group_patch_response == "no-content"


@pytest.mark.parametrize("word, expected", [("false", False), ("OFF", False), ("0", False), ("no", False),
                                            ("true", True), ("1", True), ("on", True), ("Yes", True)])
def test_config_prepared_statements_defaults_on_and_takes_a_boolean_from_file_and_env(tmp_path: Path, word, expected) -> None:
    assert config.load(None, env={}).database.prepared_statements is True
    path = tmp_path / "scim.toml"
    path.write_text("[database]\nprepared_statements = false\n")
    assert config.load(path, env={}).database.prepared_statements is False
    env = {"SKILLJAR_SCIM_DATABASE_PREPARED_STATEMENTS": word}
    assert config.load(path, env=env).database.prepared_statements is expected
    with pytest.raises(ConfigError, match="must be true or false"):
        config.load(path, env={"SKILLJAR_SCIM_DATABASE_PREPARED_STATEMENTS": "maybe"})


def test_config_group_patch_response_bad_env_value_is_clear_error() -> None:
    with pytest.raises(ConfigError, match="must be one of no-content, resource"):
        config.load(None, env={"SKILLJAR_SCIM_SERVER_GROUP_PATCH_RESPONSE": "bogus"})


def test_config_bad_env_value_is_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SERVER_PORT|server.port"):
        config.load(None, env={"SKILLJAR_SCIM_SERVER_PORT": "eighty"})


def test_config_missing_explicit_file_is_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "nope.toml", env={})


def test_config_cli_db_flag_overrides_file(initialised, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    result = initialised("--db", f"sqlite:///{other}", "init")
    assert result.exit_code == 0, result.output
    assert other.exists()


@pytest.mark.parametrize(("url", "mode", "warned"), [
    ("postgresql://scim:pa55word@db.example/scim", 0o644, True),
    ("postgresql://scim:pa55word@db.example/scim", 0o640, True),
    ("postgresql://scim:pa55word@db.example/scim", 0o604, True),
    ("postgresql://scim:pa55word@db.example/scim", 0o600, False),
    ("postgresql://scim@db.example/scim", 0o644, False),
    ("postgresql://scim@db.example/scim?sslmode=require&password=pa55word", 0o644, True),
    ("postgresql://scim@db.example/scim?sslpassword=pa55word&sslkey=%2Fk.pem", 0o644, True),
    ("postgresql://scim@db.example/scim?sslmode=require", 0o644, False),
    ("sqlite:///scim.db", 0o644, False),
])
def test_config_warns_when_a_file_with_a_password_is_readable_by_others(tmp_path, capsys, url, mode, warned) -> None:
    path = tmp_path / "scim.toml"
    path.write_text(f'[database]\nurl = "{url}"\n')
    path.chmod(mode)
    assert config.load(path, env={}).database.url.endswith(url.removeprefix("sqlite:///"))
    said = capsys.readouterr().err
    if not warned:
        assert said == ""
        return
    assert said.count("\n") == 1 and said.startswith(f"Warning: settings file {path} holds a database password")
    assert f"chmod 600 {path}" in said and "pa55word" not in said
