"""Put a value on the clipboard through the terminal (OSC 52), as the dashboard's Copy button does.

OSC 52 travels inside the terminal's own byte stream, so it works over SSH in terminals that
support it (iTerm2, kitty, WezTerm, Windows Terminal, foot, xterm with allowWindowOps, and
tmux with `set -g set-clipboard on`). Nothing can tell whether a terminal honoured it, so the
caller says where the value went and shows it as well.
"""

import base64
import os

TTY = "/dev/tty"


def osc52(value: str, env: dict) -> bytes:
    """Return the escape sequence that sets the clipboard to `value`, wrapped for tmux or screen."""
    sequence = f"\033]52;c;{base64.b64encode(value.encode()).decode()}\a"
    if env.get("TMUX"):
        sequence = "\033Ptmux;" + sequence.replace("\033", "\033\033") + "\033\\"
    elif env.get("TERM", "").startswith("screen"):
        sequence = "\033P" + sequence + "\033\\"
    return sequence.encode()


def copy(value: str, env: dict | None = None) -> str | None:
    """Send `value` to the controlling terminal's clipboard; return why not, or None when sent."""
    env = os.environ if env is None else env
    if env.get("TERM", "dumb") == "dumb":
        return "the terminal does not say it can (TERM is unset or dumb)"
    try:
        fd = os.open(TTY, os.O_WRONLY | os.O_NOCTTY)
    except OSError:
        return "there is no terminal to send it to"
    try:
        os.write(fd, osc52(value, env))
    finally:
        os.close(fd)
    return None
