"""Start-up cost: a command imports only its own module, nothing of the server, and no pydantic."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer.main

from skilljar_scim.cli.group import PlainArgument, PlainOption
from skilljar_scim.cli.main import COMMANDS, SUMMARIES, app

PACKAGE = Path(__file__).resolve().parents[2] / "skilljar_scim"


def _modules_after(argv: list[str], cwd) -> set[str]:
    """Run the `scim` entry point in a fresh interpreter; return the modules it imported."""
    script = (
        "import json, sys\n"
        f"sys.argv = ['scim', *{argv!r}]\n"
        "from skilljar_scim.cli import main\n"
        "try:\n    main.run()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, timeout=60)
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_startup_token_list_imports_only_its_group_and_no_server(initialised, tmp_path):
    modules = _modules_after(["--config", str(initialised.config_file), "token", "list"], tmp_path)
    assert "skilljar_scim.cli.tokens" in modules
    others = {module for name, module in COMMANDS.items() if name != "token"}
    assert not modules & others
    assert not {m for m in modules if m == "flask" or m.startswith(("flask.", "gunicorn", "skilljar_scim.web"))}
    assert "pydantic" not in modules  # typer would import it to coerce --config; plain values skip it


def test_startup_root_help_imports_no_command_module(tmp_path):
    assert not _modules_after(["--help"], tmp_path) & set(COMMANDS.values())


def test_startup_declared_summaries_are_each_commands_own_first_line():
    """`scim --help` shows what the loaded commands would show: the summaries cannot drift."""
    root = typer.main.get_command(app)
    context = typer.Context(root)
    assert set(SUMMARIES) == set(COMMANDS)
    for name, summary in SUMMARIES.items():
        assert click.Command(name, help=summary).get_short_help_str(500) == \
            root.get_command(context, name).get_short_help_str(500), name


@pytest.mark.parametrize("argv", [["tokn", "list"], ["token", "--help"], ["--version"]])
def test_startup_group_help_and_typos_never_import_the_server(argv, tmp_path):
    modules = _modules_after(argv, tmp_path)
    assert not {m for m in modules if m == "flask" or m.startswith(("gunicorn", "skilljar_scim.web"))}


def test_startup_root_help_lists_every_command(tmp_path):
    done = subprocess.run([sys.executable, "-m", "skilljar_scim", "--help"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 0
    for name in COMMANDS:
        assert f"  {name} " in done.stdout


def test_startup_every_parameter_is_plain_or_typers_own():
    """The lazy group gives every str/int/Path parameter the pydantic-free coercion."""
    root = typer.main.get_command(app)
    context = typer.Context(root)
    for name in root.list_commands(context):
        command = root.get_command(context, name)
        for sub in [command, *getattr(command, "commands", {}).values()]:
            for param in sub.params:
                assert isinstance(param, (PlainOption, PlainArgument)), (name, sub.name, param.name)


def test_startup_no_function_level_imports_in_cli():
    """Command modules import their domain modules at the top; only the lazy group imports on demand."""
    for path in (PACKAGE / "cli").glob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.startswith((" ", "\t")) and line.strip().startswith(("import ", "from ")) and "import" in line:
                assert line.strip().startswith(("from __future__",)), f"{path.name}:{number}: {line.strip()}"
