"""Render for people (rich, at a terminal), pipes (tab-separated lines) and scripts (JSON).

This module is the only place that writes data: every value passes through `shown()`, and
rich (cli/terminal.py) only ever receives `Text` objects on a console with markup and emoji
codes off, so a name such as `okta [/prod]` or `:smile:` is printed as it is and can never
make rendering fail. Control characters in data are shown escaped (`\\x1b`), so a value
cannot move the cursor, retitle the terminal or write to the clipboard.

JSON convention (README "JSON output"): `--json` prints exactly one JSON document on stdout:
a listing is an array of objects, one per line; anything else is one object.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Iterable, Iterator, Sequence

import typer

from skilljar_scim.base import clock
from skilljar_scim.base.errors import Aborted

# C0 controls, DEL and C1 controls: shown as escapes, never sent to a terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
JSON_CHUNK = 500  # listing items per write: one write per item cost more than the listing itself


def for_people() -> bool:
    """Say whether stdout is a terminal (rich tables) rather than a pipe or file (plain lines)."""
    return sys.stdout.isatty()


def when(moment: datetime | None, empty: str = "never") -> str:
    """Format a stored UTC time for people."""
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else empty


def size(count: int | None) -> str:
    """Format a byte count for people (1.4 MB)."""
    if count is None:
        return "-"
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:,} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    return str(count)


class Attention:
    """A value that needs a person's attention: highlighted at a terminal, shown as it is elsewhere.

    Pipes and JSON carry the value alone (no marker a script would have to strip).
    """

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


def shown(value: Any) -> str:
    """Return the one-line text people see for a value; control characters are escaped."""
    if isinstance(value, Attention):
        return shown(value.value)
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(shown(item) for item in value) or "-"
    return _CONTROL.sub(_escape, str(value))


def _escape(match: re.Match) -> str:
    char = match.group()
    return _NAMED.get(char, f"\\x{ord(char):02x}")


def _terminal():
    """Load the rich renderer (cli/terminal.py) on first use: a pipe never pays for it."""
    return importlib.import_module("skilljar_scim.cli.terminal")


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print rows: a rich table at a terminal, else a header line and tab-separated lines.

    Written to a pipe or file a cell is never wrapped or cut, so `| grep` and `| cut -f2` work.
    """
    if for_people():
        marked_rows = ([(shown(value), isinstance(value, Attention)) for value in row] for row in rows)
        _terminal().table(shown(title), [shown(c) for c in columns], marked_rows)
    else:
        _plain_lines([list(columns), *([shown(value) for value in row] for row in rows)])


def details(title: str, pairs: Iterable[tuple[str, Any]]) -> None:
    """Print field/value pairs: a two-column rich table, or `field<TAB>value` lines."""
    if for_people():
        table(title, ("field", "value"), pairs)
    else:
        _plain_lines([[shown(key), shown(value)] for key, value in pairs])


def _plain_lines(rows: Iterable[Sequence[str]]) -> None:
    """Write tab-separated lines; a blank line after, so several tables stay apart."""
    typer.echo("".join("\t".join(row) + "\n" for row in rows))


def lines(texts: Iterable[Any]) -> None:
    """Print one value per line on stdout, as shown() writes it (nothing at all for none)."""
    for text in texts:
        typer.echo(shown(text))


def panel(lines: Sequence[Any], title: str) -> None:
    """Print a notice on stderr (diagnostics stay off stdout): boxed for a terminal, plain lines for a log."""
    if not sys.stderr.isatty():
        typer.echo("\n".join([shown(title) + ":", *(shown(line) for line in lines)]), err=True)
        return
    _terminal().panel([shown(line) for line in lines], shown(title))


@contextmanager
def working(message: str, streaming: bool = False) -> Iterator[None]:
    """Show a spinner with `message` on stderr while the block runs, only if stderr is a terminal.

    Never in a pipe or log. A block that writes to stdout as it goes (`streaming`) gets one
    only when stdout is not that terminal, so the two never interleave.
    """
    if not sys.stderr.isatty() or (streaming and for_people()):
        yield
        return
    with _terminal().status(shown(message) + " ..."):
        yield


def info(message: str) -> None:
    """Print a diagnostic line on stderr (stdout stays clean for data)."""
    typer.echo(_CONTROL.sub(_escape, message), err=True)


def quoted(value: Any) -> str:
    """Quote a name inside a message: 'okta [prod]', control characters escaped."""
    return "'" + shown(value) + "'"


def confirm(question: str, yes: bool) -> None:
    """Ask `question` unless `yes`; raise Aborted on no (or when there is nobody to ask)."""
    if yes:
        return
    if not typer.confirm(question, default=False, err=True):
        raise Aborted("aborted: nothing was changed")


def emit_json(data: dict) -> None:
    """Print one JSON object on stdout (a show, generate, revoke or report command)."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default))


def emit_json_list(items: Iterable[dict]) -> None:
    """Print a listing as one JSON array, an object per line, streamed (never held in memory)."""
    encode = json.JSONEncoder(ensure_ascii=False, default=_json_default).encode
    chunk, count = ["["], 0
    for count, item in enumerate(items, 1):
        chunk.append(("," if count > 1 else "") + "\n" + encode(item))
        if len(chunk) >= JSON_CHUNK:
            typer.echo("".join(chunk), nl=False)
            chunk = []
    chunk.append("\n]" if count else "]")
    typer.echo("".join(chunk))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return clock.iso(value)
    raise TypeError(f"cannot encode {type(value).__name__}")
