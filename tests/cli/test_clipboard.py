"""`scim token generate --copy`: the value goes to the terminal's clipboard through OSC 52."""

from __future__ import annotations

import base64
import os
import pty
import re
import sys

import pytest

from skilljar_scim.cli import clipboard

OSC52 = re.compile(rb"\x1b\]52;c;([A-Za-z0-9+/=]+)\x07")


@pytest.mark.parametrize("env, prefix, suffix", [
    ({"TERM": "xterm-256color"}, b"\x1b]52;c;", b"\x07"),
    ({"TERM": "screen", "TMUX": "/tmp/tmux-0/default,1,0"}, b"\x1bPtmux;\x1b\x1b]52;c;", b"\x07\x1b\\"),
    ({"TERM": "screen.xterm-256color"}, b"\x1bP\x1b]52;c;", b"\x07\x1b\\"),
])
def test_clipboard_osc52_sequence_carries_the_value(env, prefix, suffix):
    sequence = clipboard.osc52("sjscim_abc.def", env)
    assert sequence.startswith(prefix) and sequence.endswith(suffix)
    encoded = sequence[len(prefix):-len(suffix)].split(b";")[-1]
    assert base64.b64decode(encoded) == b"sjscim_abc.def"


@pytest.mark.parametrize("env", [{}, {"TERM": "dumb"}])
def test_clipboard_dumb_terminal_says_why_not(env):
    assert "TERM" in clipboard.copy("x", env)


def test_clipboard_without_terminal_says_why_not(monkeypatch):
    monkeypatch.setattr(clipboard, "TTY", "/nonexistent/tty")
    assert clipboard.copy("x", {"TERM": "xterm"}) == "there is no terminal to send it to"


def test_token_generate_copy_without_terminal_still_shows_value(initialised):
    result = initialised("token", "generate", "--name", "Okta", "--expires", "30d", "--copy")
    assert result.exit_code == 0, result.output
    assert re.search(r"^sjscim_\S+$", result.stdout, re.M)
    assert "could not copy" in result.stderr.lower()


def _run_in_terminal(args: list[str], cwd) -> bytes:
    """Run `python -m skilljar_scim ARGS` with a pseudo-terminal as its controlling terminal."""
    pid, master = pty.fork()
    if pid == 0:  # the child: a new session whose controlling terminal is the pty
        os.chdir(cwd)
        os.environ["TERM"] = "xterm-256color"
        os.environ.pop("TMUX", None)
        os.execv(sys.executable, [sys.executable, "-m", "skilljar_scim", *args])
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.waitpid(pid, 0)
    os.close(master)
    return seen


def test_token_generate_copy_in_a_terminal_sends_the_value(initialised, config_file):
    seen = _run_in_terminal(["--config", str(config_file), "token", "generate", "--name", "Okta",
                             "--expires", "30d", "--copy"], config_file.parent)
    [copied] = OSC52.findall(seen)
    value = base64.b64decode(copied).decode()
    assert value.startswith("sjscim_") and value.encode() in seen.replace(copied, b"")
    assert b"clipboard" in seen
