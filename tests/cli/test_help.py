"""Every CLI command has help text and is documented in README.md."""

from __future__ import annotations

import re
from pathlib import Path

import typer
import typer.main

from skilljar_scim.cli.main import app

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _commands(group, prefix=("scim",)):
    """Yield (path, command) for every command, loading the lazy groups through list/get_command."""
    context = typer.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        path = (*prefix, name)
        yield path, command
        if hasattr(command, "commands"):
            yield from _commands(command, path)


def test_help_every_command_has_help_text() -> None:
    for path, command in _commands(typer.main.get_command(app)):
        assert (command.help or "").strip(), f"{' '.join(path)} has no help text"


def test_help_every_command_appears_in_readme() -> None:
    for path, _ in _commands(typer.main.get_command(app)):
        assert f"`{' '.join(path)}" in README, f"README.md does not mention `{' '.join(path)}`"


def test_help_runs_without_configuration(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0 and "token" in result.stdout


def test_help_usage_errors_are_one_line(initialised) -> None:
    for args in (["token", "generate", "--name", "x"], ["mappings", "plan", "frob", "g", "r"], ["users", "list", "--limit", "x"]):
        result = initialised(*args)
        assert result.exit_code == 2
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
        assert "--help" in result.stderr


def test_help_lists_every_command() -> None:
    names = {" ".join(path) for path, _ in _commands(typer.main.get_command(app))}
    assert {"scim init", "scim serve", "scim token generate", "scim users purge", "scim db check"} <= names


def test_help_every_command_has_an_example_and_flags_read_as_flags(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    monkeypatch.chdir(tmp_path)
    for path, command in _commands(typer.main.get_command(app)):
        if hasattr(command, "commands"):
            continue
        result = CliRunner().invoke(app, [*path[1:], "--help"])
        assert result.exit_code == 0, result.output
        assert "Example: scim " in result.stdout, f"{' '.join(path)} --help has no example"
        assert "<bool>" not in result.stdout and "╭" not in result.stdout, result.stdout


def test_help_serve_shows_its_defaults() -> None:
    from typer.testing import CliRunner

    out = " ".join(CliRunner().invoke(app, ["serve", "--help"]).stdout.split())
    assert "127.0.0.1" in out and "8080" in out and "[default: init]" in out


def test_help_readme_links_only_to_files_that_exist() -> None:
    root = Path(__file__).resolve().parents[2]
    links = re.findall(r"\]\(([^)#\s]+)", README)
    local = [link for link in links if "://" not in link and not link.startswith("mailto:")]
    assert local, "README should link to the IdP guides"
    assert [link for link in local if not (root / link).exists()] == []
    assert "DESIGN notes" not in README
