"""Data is shown as data: never markup, never terminal control, never cut in a pipe (issue 13)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys

import pytest

NASTY = [
    "weird[/x]",
    "Team [/ops]",
    "okta [prod]",
    "[bold]loud[/bold]",
    "rocket 🚀 :smile: [link=http://x]y[/link]",
    "שלום [עולם] مرحبا",
    "long " + "[x]" * 60,
]


@pytest.fixture
def nasty(api, initialised):
    """A user, a group, a mapping and a token named with each NASTY string."""
    made = []
    for index, name in enumerate(NASTY):
        user = api.create_user(f"u{index}{name}@example.com", displayName=name)
        group = api.create_group(f"{name} group", [user["id"]])
        assert initialised("mappings", "add", group["displayName"], "api-admin").exit_code == 0
        made.append({"user": user, "group": group})
    return initialised, made


def _generate(cli, name: str):
    result = cli("token", "generate", "--name", name, "--expires", "30d")
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("name", NASTY)
def test_rendering_token_generate_shows_value_whatever_the_name(initialised, name) -> None:
    result = _generate(initialised, name)
    assert result.stdout.startswith("sjscim_") and result.stdout.count("\n") == 1
    boxed = "".join(result.stderr.replace("│", "").split())  # the notice, unwrapped from its box
    assert "".join(name.split()) in boxed  # names the token as given
    assert initialised.json("token", "show", name)["name"] == name
    listed = initialised("token", "list").stdout
    assert name in listed and initialised("token", "show", name).exit_code == 0


def test_rendering_every_command_prints_names_exactly_in_a_pipe(nasty) -> None:
    cli, made = nasty
    for item, name in zip(made, NASTY):
        user, group = item["user"], item["group"]
        for args, expected in (
            (["users", "show", user["id"]], [user["userName"], name, group["displayName"]]),
            (["users", "list"], [user["userName"], name]),
            (["groups", "show", group["id"]], [group["displayName"], user["userName"]]),
            (["groups", "list"], [group["displayName"]]),
            (["mappings", "list"], [group["displayName"]]),
            (["events", "list", "--limit", "500"], [group["displayName"], user["userName"]]),
        ):
            result = cli(*args)
            assert result.exit_code == 0, (args, result.output)
            for text in expected:
                assert text in result.stdout, (args, text)


def test_rendering_pipe_table_is_tab_separated_never_cut(nasty) -> None:
    cli, made = nasty
    lines = cli("users", "list").stdout.splitlines()
    assert lines[0].split("\t") == ["id", "userName", "name", "email", "status"]
    rows = {line.split("\t")[0]: line.split("\t") for line in lines[1:] if line}
    for item, name in zip(made, NASTY):
        assert rows[item["user"]["id"]][1:3] == [item["user"]["userName"], name]  # whole, unwrapped


def test_rendering_control_characters_are_escaped(api, initialised) -> None:
    api.create_user("ctl@example.com", displayName="evil\x1b]52;c;aGk=\x07\tname\nnext")
    out = initialised("users", "list").stdout
    assert "\x1b" not in out and "\x07" not in out
    assert "evil\\x1b]52;c;aGk=\\x07\\tname\\nnext" in out
    assert len([line for line in out.splitlines() if line]) == 2  # header + one row: the newline stayed escaped
    data = json.loads(initialised("users", "show", "ctl@example.com", "--json").stdout)
    assert data["displayName"] == "evil\x1b]52;c;aGk=\x07\tname\nnext"  # JSON keeps the exact value


def _in_terminal(args: list[str], cwd) -> tuple[int, str]:
    """Run `scim ARGS` with stdout and stderr on a real pseudo-terminal; return (status, output)."""
    main, child = pty.openpty()
    env = {**os.environ, "COLUMNS": "400", "LINES": "50", "TERM": "xterm"}
    process = subprocess.Popen([sys.executable, "-m", "skilljar_scim", *args], stdin=child, stdout=child,
                               stderr=child, cwd=cwd, env=env)
    os.close(child)
    chunks = []
    while True:
        ready, _, _ = select.select([main], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    return process.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")


def test_rendering_terminal_tables_show_names_as_data(nasty, tmp_path) -> None:
    cli, made = nasty
    config = ["--config", str(cli.config_file)]
    for item, name in list(zip(made, NASTY))[:-1]:  # the long one folds across lines at any width
        for args, text in ((["users", "show", item["user"]["id"]], name), (["groups", "show", item["group"]["id"]], name),
                           (["mappings", "list"], name), (["events", "list"], name), (["users", "list"], name)):
            status, out = _in_terminal([*config, *args], tmp_path)
            assert status == 0, (args, out)
            assert text in out and "MarkupError" not in out and "Traceback" not in out, (args, out)
            assert "┃" in out or "│" in out  # a rich table, not the pipe form


@pytest.mark.parametrize("name", ["okta [/prod]", "[bold]x[/bold] 🚀", "long " + "[/y]" * 48])
def test_rendering_terminal_token_generate_never_strands_a_token(initialised, tmp_path, name) -> None:
    status, out = _in_terminal(["--config", str(initialised.config_file), "token", "generate", "--name", name,
                                "--expires", "30d"], tmp_path)
    assert status == 0, out
    assert out.lstrip().startswith("sjscim_") and "will not be shown" in out
    assert initialised.json("token", "show", name)["name"] == name
