"""Errors are one line on stderr with the documented exit code: never a traceback, a box or a blank `Error:`."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import skilljar_scim
from skilljar_scim.base import config
from skilljar_scim.base.errors import ConfigError, ExitCode
from skilljar_scim.cli.main import app


def one_line_error(result, code: int) -> str:
    """Assert exit `code` and exactly one `Error:` line on stderr (nothing on stdout); return it."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.strip() != "Error:" and "╭" not in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
    return result.stderr


@pytest.mark.parametrize("args", [["token"], ["users"], ["mappings"], ["db"], ["webhooks"], []])
def test_errors_group_alone_prints_its_help_and_exits_2(initialised, args) -> None:
    result = CliRunner().invoke(app, ["--config", str(initialised.config_file), *args])
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("Usage: scim") and "Commands:" in result.stderr
    assert "Error" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize("args, text", [
    (["--bogus"], "No such option: --bogus"),
    (["--config"], "Option '--config' requires an argument"),
    (["-c"], "requires an argument"),
    (["tokn", "list"], "No such command 'tokn'. Did you mean 'token'?"),
    (["token", "list", "--bogus"], "No such option: --bogus"),
    (["users", "list", "--limit", "-1"], "-1 is not in the range 0<=x"),
    (["serve", "--port", "99999"], "99999 is not in the range 1<=x<=65535"),
    (["serve", "--port", "0"], "0 is not in the range 1<=x<=65535"),
])
def test_errors_usage_mistakes_are_one_line(initialised, args, text) -> None:
    result = CliRunner().invoke(app, args)
    assert text in one_line_error(result, ExitCode.USAGE)


def test_errors_version(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"scim (skilljar-scim) {skilljar_scim.__version__}\n"


@pytest.mark.parametrize("where", ["file", "environment"])
@pytest.mark.parametrize("port", [0, 65536, 70000])
def test_errors_port_out_of_range_in_settings(initialised, monkeypatch, where, port) -> None:
    if where == "file":
        initialised.config_file.write_text(initialised.config_file.read_text() + f"\n[server]\nport = {port}\n")
    else:
        monkeypatch.setenv("SKILLJAR_SCIM_SERVER_PORT", str(port))
    result = initialised("serve", "--no-init")
    assert f"'server.port' must be 1-65535, got {port}" in one_line_error(result, ExitCode.CONFIG)


def test_errors_port_range_applies_to_every_source(tmp_path) -> None:
    empty = tmp_path / "scim.toml"
    empty.write_text("")
    assert config.load(empty, env={"SKILLJAR_SCIM_SERVER_PORT": "65535"}).server.port == 65535
    assert config.load(empty, env={}, overrides={"server.port": 1}).server.port == 1
    with pytest.raises(ConfigError, match="command line: 'server.port' must be 1-65535, got 65536"):
        config.load(empty, env={}, overrides={"server.port": 65536})


@pytest.mark.parametrize("name, hint", [
    ("SKILLJAR_SCIM_SERVER_PROT", "did you mean SKILLJAR_SCIM_SERVER_PORT?"),
    ("SKILLJAR_SCIM_DATABSE_URL", "did you mean SKILLJAR_SCIM_DATABASE_URL?"),
    ("SKILLJAR_SCIM_NONSENSE", "settings are SKILLJAR_SCIM_<SECTION>_<KEY>"),
])
def test_errors_misspelt_environment_variable_is_named(initialised, monkeypatch, name, hint) -> None:
    monkeypatch.setenv(name, "1")
    message = one_line_error(initialised("token", "list"), ExitCode.CONFIG)
    assert name in message and hint in message


def test_errors_documented_non_setting_variables_are_accepted(initialised, monkeypatch) -> None:
    monkeypatch.setenv("SKILLJAR_SCIM_CONFIG", str(initialised.config_file))
    monkeypatch.setenv("SKILLJAR_SCIM_TEST_DATABASE_URL", os.environ.get("SKILLJAR_SCIM_TEST_DATABASE_URL", "unused"))
    assert initialised("token", "list").exit_code == 0


def test_errors_init_through_a_file_is_one_line(cli, tmp_path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    result = CliRunner().invoke(app, ["--config", str(blocker / "scim.toml"), "init"])
    message = one_line_error(result, ExitCode.CONFIG)
    assert f"cannot write {blocker / 'scim.toml'}: {blocker} is not a folder" in message


def _read_only(folder: Path) -> None:
    """Make `folder` unwritable for this process: mode 555, and immutable when running as root."""
    folder.chmod(0o555)
    if os.geteuid() == 0:  # root ignores the mode
        subprocess.run(["chattr", "+i", str(folder)], check=True)


def test_errors_init_in_a_read_only_folder_is_one_line(tmp_path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    _read_only(folder)
    try:
        done = subprocess.run([sys.executable, "-m", "skilljar_scim", "init"], cwd=folder, capture_output=True,
                              text=True, timeout=60, env={k: v for k, v in os.environ.items()
                                                          if not k.startswith("SKILLJAR_SCIM_")})
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)
    assert done.returncode == ExitCode.CONFIG, done.stderr
    assert done.stderr.startswith(f"Error: cannot write {folder / 'scim.toml'}: ") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr and "unexpected" not in done.stderr


@pytest.mark.parametrize("command", [["token", "list"], ["status"], ["status", "--check"], ["db", "check"], ["init"]])
def test_errors_postgres_without_its_driver_says_how_to_install_it(tmp_path, command) -> None:
    script = ("import sys; sys.modules['psycopg2'] = None\n"
              f"sys.argv = ['scim', '--db', 'postgresql://scim@127.0.0.1:9/scim', *{command!r}]\n"
              "from skilljar_scim.cli import main; main.run()\n")
    (tmp_path / "scim.key").write_text("k" * 64 + "\n")
    (tmp_path / "scim.key").chmod(0o600)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if not k.startswith("SKILLJAR_SCIM_")})
    assert done.returncode == ExitCode.CONFIG, done.stderr
    assert 'pip install "skilljar-scim[postgres]"' in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.sqlite
def test_errors_empty_database_file_is_refused_never_rebuilt(cli, settings) -> None:
    settings.sqlite_path.write_bytes(b"")
    message = one_line_error(cli("init"), ExitCode.DATABASE)
    assert "is an empty file, not a skilljar-scim database" in message
    assert settings.sqlite_path.stat().st_size == 0  # left as it was
    assert "empty file" in one_line_error(cli("token", "list"), ExitCode.DATABASE)


@pytest.mark.sqlite
def test_errors_non_sqlite_database_file_is_refused(cli, settings) -> None:
    settings.sqlite_path.write_text("name,email\ncarol,carol@example.com\n")
    assert "is not a SQLite database" in one_line_error(cli("init"), ExitCode.DATABASE)
    assert settings.sqlite_path.read_text().startswith("name,email")


@pytest.mark.sqlite
def test_errors_another_applications_sqlite_database_is_refused(cli, settings) -> None:
    with sqlite3.connect(settings.sqlite_path) as other:
        other.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    message = one_line_error(cli("init"), ExitCode.DATABASE)
    assert "is not a skilljar-scim database (it holds other tables: invoices)" in message
    with sqlite3.connect(settings.sqlite_path) as other:
        assert [t for (t,) in other.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["invoices"]


@pytest.mark.sqlite
def test_errors_a_store_we_create_is_owner_only(initialised, settings) -> None:
    assert stat.S_IMODE(settings.sqlite_path.stat().st_mode) == 0o600


def test_errors_broken_pipe_ends_quietly(api, initialised, tmp_path) -> None:
    for index in range(1200):  # more than a pipe holds (64 KiB), so writing outlives the reader
        api.create_user(f"user{index:04}@example.com", displayName="x" * 40)
    command = [sys.executable, "-m", "skilljar_scim", "--config", str(initialised.config_file), "users", "list", "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    assert process.stdout.readline() == b"[\n"
    process.stdout.close()  # what `| head -1` does
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 141 and stderr == b"", stderr
