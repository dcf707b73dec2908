"""Every CLI command has help text and is documented in README.md."""

from __future__ import annotations

from pathlib import Path

import typer.main

from skilljar_scim.cli.main import app

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _commands(group, prefix=("scim",)):
    for name, command in group.commands.items():
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
