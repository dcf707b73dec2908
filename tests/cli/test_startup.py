"""Start-up cost: a command imports only its own group, and nothing of the server (issue 6)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from skilljar_scim.cli.main import GROUPS, invoked_group


@pytest.mark.parametrize("argv, group", [
    (["token", "list"], "token"),
    (["--config", "scim.toml", "users", "list"], "users"),
    (["-c", "scim.toml", "--json", "db", "check"], "db"),
    (["--db", "sqlite:///x.db", "mappings", "plan"], "mappings"),
    (["--config=scim.toml", "events", "list"], "events"),
    (["-c", "users"], None),  # "users" is the value of -c: no group is invoked
    (["init"], None),
    (["serve", "--port", "9000"], None),
    (["--help"], None),
    (["tokn", "list"], None),  # a typo: every group is loaded so the error can suggest one
    ([], None),
])
def test_startup_invoked_group(argv, group):
    assert invoked_group(argv) == group


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
    others = {module for name, module in GROUPS.items() if name != "token"}
    assert not modules & others
    assert not {m for m in modules if m == "flask" or m.startswith(("flask.", "gunicorn", "skilljar_scim.web"))}


def test_startup_root_help_lists_every_group(tmp_path):
    done = subprocess.run([sys.executable, "-m", "skilljar_scim", "--help"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 0
    for name in GROUPS:
        assert f" {name} " in done.stdout
